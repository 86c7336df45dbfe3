"""Hyper-parameter settings to fan out with ``task.map``.

Both functions run at trace time in a workflow body and return plain ``list[dict]`` values,
ready for ``train.map(params=ml.grid(...))``. Values are plain Python scalars (never numpy
scalars), so every setting hashes, serialises and prints the same everywhere.

Called while a workflow is traced (when it is defined), both also note the settings they return
under the workflow's name: :class:`~flowkit.ml.MLflowTracker` reads them
(:func:`traced_settings`) to log each trial's parameters with its metrics.

``random_search`` policy: deterministic for a seed (one numpy ``Generator``). A space value is
either a list/tuple of choices, a distribution from :func:`uniform`, :func:`loguniform` or
:func:`randint`, or any object with scipy's ``rvs(random_state=...)``. When every value is a
list of choices, settings are drawn *without replacement* from the grid (so no setting is
trained twice) and at most the grid's size are returned.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from flowkit.ml.errors import ParameterError
from flowkit.promise import current_builder

log = logging.getLogger(__name__)
_TRACED_LOCK = threading.Lock()
# workflow name -> (weakref to the Builder of its latest trace, the settings made in it)
_TRACED: dict[str, tuple[weakref.ref[Any], list[list[dict[str, Any]]]]] = {}


def _note_traced(settings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Remember ``settings`` if a workflow body is being traced; returns them."""
    builder = current_builder()
    if builder is None or builder.prefix:  # not tracing, or a dynamic body (run time)
        return settings
    with _TRACED_LOCK:
        owner, lists = _TRACED.get(builder.workflow, (None, []))
        if owner is None or owner() is not builder:  # traced again: forget the older trace
            lists = []
            _TRACED[builder.workflow] = (weakref.ref(builder), lists)
        lists.append([dict(s) for s in settings])
    return settings


def traced_settings(workflow: str) -> list[list[dict[str, Any]]]:
    """The settings :func:`grid` / :func:`random_search` returned while ``workflow`` was last
    traced (workflows are traced once, when defined)."""
    with _TRACED_LOCK:
        return [list(x) for x in _TRACED.get(workflow, (None, []))[1]]


def _plain(value: Any) -> Any:
    """numpy scalars → Python scalars; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def grid(**param_lists: Iterable[Any]) -> list[dict[str, Any]]:
    """The cross product of the given value lists, in order (last name varies fastest).

    Example::

        ml.grid(depth=[2, 4], lr=[0.1, 0.01])
        # [{'depth': 2, 'lr': 0.1}, {'depth': 2, 'lr': 0.01}, {'depth': 4, 'lr': 0.1}, ...]
    """
    return _note_traced(_grid(**param_lists))


def _grid(**param_lists: Iterable[Any]) -> list[dict[str, Any]]:
    lists: dict[str, list[Any]] = {}
    for name, values in param_lists.items():
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
            raise ParameterError(
                f"grid: {name}= must be a list of values, got {type(values).__name__}; "
                f"write {name}=[{values!r}] for a single value"
            )
        lists[name] = list(values)  # tuples, ranges, numpy arrays too
        if not lists[name]:
            raise ParameterError(f"grid: {name}= is an empty list; give at least one value")
    return [
        {n: _plain(v) for n, v in zip(lists, combo, strict=True)}
        for combo in itertools.product(*lists.values())
    ]


@dataclass(frozen=True)
class Distribution:
    """A continuous or integer range to sample from; build with uniform/loguniform/randint."""

    kind: str
    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> Any:
        if self.kind == "uniform":
            return float(rng.uniform(self.low, self.high))
        if self.kind == "loguniform":
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return int(rng.integers(int(self.low), int(self.high), endpoint=True))


def uniform(low: float, high: float) -> Distribution:
    """Floats uniform in [low, high)."""
    if not low < high:
        raise ParameterError(f"uniform({low}, {high}): low must be below high")
    return Distribution("uniform", float(low), float(high))


def loguniform(low: float, high: float) -> Distribution:
    """Floats whose logarithm is uniform in [log(low), log(high)), e.g. learning rates."""
    if not 0 < low < high:
        raise ParameterError(f"loguniform({low}, {high}): need 0 < low < high")
    return Distribution("loguniform", float(low), float(high))


def randint(low: int, high: int) -> Distribution:
    """Integers uniform in [low, high], both ends included."""
    if not low <= high:
        raise ParameterError(f"randint({low}, {high}): low must not be above high")
    return Distribution("randint", low, high)


def _is_choices(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _draw(name: str, spec: Any, rng: np.random.Generator) -> Any:
    if _is_choices(spec):
        return _plain(spec[int(rng.integers(len(spec)))])
    if isinstance(spec, Distribution):
        return spec.sample(rng)
    if hasattr(spec, "rvs"):  # scipy.stats frozen distributions
        return _plain(spec.rvs(random_state=rng))
    raise ParameterError(
        f"random_search: space[{name!r}] is {spec!r}; use a list of choices, ml.uniform(), "
        "ml.loguniform(), ml.randint() or a scipy.stats distribution"
    )


def random_search(space: Mapping[str, Any], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` settings sampled from ``space``, deterministically for ``seed``.

    Example::

        settings = ml.random_search(
            {"n_estimators": ml.randint(10, 200), "max_depth": [3, 5, None],
             "learning_rate": ml.loguniform(1e-3, 0.3)},
            n=60, seed=0,
        )
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ParameterError(f"random_search: n must be a positive integer, got {n!r}")
    if not space:
        raise ParameterError("random_search: the space is empty; give at least one parameter")
    for name, spec in space.items():
        if _is_choices(spec) and len(spec) == 0:
            raise ParameterError(f"random_search: space[{name!r}] is an empty list of choices")
    return _note_traced(_sample(space, n, seed))


def _sample(space: Mapping[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    if all(_is_choices(spec) for spec in space.values()):
        full = _grid(**{k: list(v) for k, v in space.items()})
        if n >= len(full):
            if n > len(full):
                log.warning(
                    "random_search: the space has only %d distinct settings; returning all of "
                    "them instead of %d",
                    len(full),
                    n,
                )
            return [full[i] for i in rng.permutation(len(full))]
        return [full[i] for i in rng.choice(len(full), size=n, replace=False)]
    return [{name: _draw(name, spec, rng) for name, spec in space.items()} for _ in range(n)]


__all__ = [
    "Distribution",
    "grid",
    "loguniform",
    "randint",
    "random_search",
    "traced_settings",
    "uniform",
]

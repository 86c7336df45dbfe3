"""Tolerant fan-out: ``task.map(..., min_success=0.9)``.

A map with ``min_success`` gives ``None`` for an item that still fails after its retries
(its output type is ``list[T | None]``, checked at decoration), and fails the run only when
fewer than ``min_success`` of its items can succeed: as soon as that is certain, not at the
end. ``needed`` is exact for the decimal the user wrote (``0.7`` of 10 items is 7, not the
7.000000000000001 floating point gives): the ratio is read as the shortest decimal that
prints it. A map of 0 items succeeds.

The failed items are in the run record twice: each item's task record (status ``failed``,
its error and attempts), and the run header's ``tolerated`` entry per map node (the failed
indices, the number of items, the ratio), which ``flowkit runs show`` prints.

Caching: a failed item is never cached (only a succeeded call is recorded), so a re-run
retries exactly the failed items; a consumer of the list is keyed by the list's value,
``None`` s included, so it is a cache hit only for the very list a fresh run gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from numbers import Real
from typing import Any, Optional

from flowkit import typecheck
from flowkit.errors import GraphError, TaskFailedError

#: The keyword of ``task.map`` (a task with a parameter of that name cannot use it).
KEYWORD = "min_success"


def check_min_success(task: str, where: str, value: Any) -> float:
    """``min_success`` as a float in (0, 1], or a :class:`GraphError` saying what is wrong."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < float(value) <= 1:
        raise GraphError(
            f"task `{task}`.map at {where}: min_success={value!r}; use a number in (0, 1], the "
            "share of items that must succeed (e.g. 0.9)"
        )
    return float(value)


def needed(min_success: float, n: int) -> int:
    """How many of ``n`` items must succeed: ceil(min_success x n), exact for the decimal."""
    return math.ceil(Fraction(repr(min_success)) * n)


def output_type(return_type: Any) -> Any:
    """The static type of a tolerant map's output: ``list[R | None]``."""
    return typecheck.list_of(Optional[return_type])  # noqa: UP045 (any type, not a class)


def mismatch_hint(node_task: str, min_success: float) -> str:
    """What a type error on an edge from a tolerant map adds: where the ``None`` s come from."""
    return (
        f" (`{node_task}`.map(min_success={min_success:g}) gives None for each item that "
        "failed: type the parameter list[T | None], or drop the Nones in a task in between)"
    )


@dataclass(slots=True)
class MapTolerance:
    """One tolerant map node while it runs: its size, what it needs, what failed so far."""

    node: str
    min_success: float
    items: int
    failed: list[int] = field(default_factory=list)

    @property
    def allowed(self) -> int:
        """How many items may fail."""
        return self.items - needed(self.min_success, self.items)

    def tolerate(self, index: int) -> bool:
        """Item ``index`` failed for good: True while the map can still reach its ratio."""
        self.failed.append(index)
        return len(self.failed) <= self.allowed

    def record(self) -> dict[str, Any]:
        """The run header's entry for this node."""
        return {
            "items": self.items,
            "min_success": self.min_success,
            "failed": sorted(self.failed),
        }

    def message(self) -> str:
        """Why the run fails: too many items failed."""
        shown = ", ".join(f"{self.node}[{i}]" for i in sorted(self.failed)[:10])
        more = f" and {len(self.failed) - 10} more" if len(self.failed) > 10 else ""
        return (
            f"map `{self.node}`: {len(self.failed)} of {self.items} items failed, so fewer than "
            f"min_success={self.min_success:g} ({needed(self.min_success, self.items)} items) "
            f"can succeed; failed: {shown}{more}"
        )


def map_now(task: str, min_success: float, calls: list[Callable[[], Any]]) -> list[Any]:
    """A tolerant map called outside a workflow (plain Python, no retries): None for an item
    that raises; :class:`TaskFailedError` (from the first error) once too many have."""
    tol = MapTolerance(task, min_success, len(calls))
    out: list[Any] = []
    first: BaseException | None = None
    for i, call in enumerate(calls):
        try:
            out.append(call())
        except Exception as e:
            first = first or e
            out.append(None)
            if not tol.tolerate(i):
                raise TaskFailedError(tol.message(), task=task, node=f"{task}[{i}]") from first
    return out


__all__ = [
    "KEYWORD",
    "MapTolerance",
    "check_min_success",
    "map_now",
    "mismatch_hint",
    "needed",
    "output_type",
]

"""Field paths: reading ``cfg.lr`` or ``report.per_class["a"]`` out of a value at run time.

A promise's field access (:mod:`flowkit.fields`) adds no task to the graph: it becomes a
:class:`~flowkit.graph.FieldOf` binding whose path is a tuple of :class:`Step`. Whoever
materialises the value applies the path with :func:`resolve` — the driver when it fetches a
value, a worker when it rebuilds a call's argument (:class:`~flowkit.arguments.FieldOfArgs`).
This module sits at the bottom of the layers (it imports only the errors) so that both can.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from flowkit.errors import GraphError


class FieldPathError(GraphError):
    """A field path met a value without that field or key (a ``dict[str, T]`` key absent at
    run time); never retried, since another attempt reads the same value."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a field path: ``attr`` (``getattr``) or ``key`` (``value[name]``, a dict key
    or a tuple position)."""

    kind: Literal["attr", "key"]
    name: str | int

    def __str__(self) -> str:
        return f".{self.name}" if self.kind == "attr" else f"[{self.name!r}]"


Path = tuple[Step, ...]


def describe(path: Path) -> str:
    """The path as Python writes it: ``.per_class['a']``."""
    return "".join(str(s) for s in path)


def resolve(value: Any, path: Path) -> Any:
    """``value`` followed along ``path``; a :class:`FieldPathError` naming the step that failed
    and what was there instead."""
    for i, step in enumerate(path):
        try:
            value = getattr(value, step.name) if step.kind == "attr" else value[step.name]  # type: ignore[arg-type]
        except (AttributeError, KeyError, IndexError, TypeError):
            raise FieldPathError(_missing(value, path, i)) from None
    return value


def _missing(value: Any, path: Path, i: int) -> str:
    step = path[i]
    where = describe(path[: i + 1])
    if isinstance(value, Mapping):
        keys = ", ".join(repr(k) for k in list(value)[:20])
        return (
            f"field path `{where}`: key {step.name!r} is not in the dict (keys: {keys or 'none'}); "
            "check the key, or read it with .get() inside a task"
        )
    return (
        f"field path `{where}`: a {type(value).__name__} value has no "
        f"{'field' if step.kind == 'attr' else 'item'} {step.name!r}"
    )


__all__ = ["FieldPathError", "Path", "Step", "describe", "resolve"]

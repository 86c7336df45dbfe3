"""Argument templates: how a call's keyword arguments are rebuilt on the worker.

The engine sends a call's inputs to a backend as one flat list (so the backend can resolve
the value handles in it, such as Ray ``ObjectRef`` arguments) plus, per parameter, a
template that says how to rebuild the argument from that list:

* :class:`FromInput` — flat input ``position``; ``index`` picks a tuple element (None: whole);
* :class:`Constant` — a value known in the driver (a literal, a workflow input);
* :class:`ListOfArgs` / :class:`DictOfArgs` — a list, tuple or dict built from templates;
* :class:`FieldOfArgs` — a field of a rebuilt value (``cfg.lr`` in a workflow body).

Templates are small frozen values built once per call in the driver and pickled with the
call; ``build(flat)`` is the only thing the worker does with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

from flowkit.fieldpath import Path, resolve


@dataclass(frozen=True, slots=True)
class FromInput:
    """Flat input ``position`` (element ``index`` of it, when not None)."""

    position: int
    index: int | None = None

    def build(self, flat: Sequence[Any]) -> Any:
        value = flat[self.position]
        return value if self.index is None else value[self.index]


@dataclass(frozen=True, slots=True)
class Constant:
    """A value carried in the template itself."""

    value: Any

    def build(self, flat: Sequence[Any]) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class ListOfArgs:
    """A list (a tuple when ``as_tuple``) of rebuilt items."""

    items: tuple[Template, ...]
    as_tuple: bool = False

    def build(self, flat: Sequence[Any]) -> Any:
        items = [t.build(flat) for t in self.items]
        return tuple(items) if self.as_tuple else items


@dataclass(frozen=True, slots=True)
class DictOfArgs:
    """A dict of rebuilt values by string key."""

    items: tuple[tuple[str, Template], ...]

    def build(self, flat: Sequence[Any]) -> Any:
        return {k: t.build(flat) for k, t in self.items}


@dataclass(frozen=True, slots=True)
class FieldOfArgs:
    """Field ``path`` of a rebuilt value (read on the worker, where the value is)."""

    base: Template
    path: Path

    def build(self, flat: Sequence[Any]) -> Any:
        return resolve(self.base.build(flat), self.path)


# Templates are immutable, so the common one, a whole flat input, is made once per position.
_WHOLE_INPUTS = tuple(FromInput(i) for i in range(256))


def whole_input(position: int) -> FromInput:
    """``FromInput(position)`` (shared: most arguments are whole inputs at small positions)."""
    return _WHOLE_INPUTS[position] if position < 256 else FromInput(position)


Template = Union[FromInput, Constant, ListOfArgs, DictOfArgs, FieldOfArgs]  # noqa: UP007 (runtime alias, 3.10)

#: One template per parameter, in parameter order: what a call's keyword arguments are
#: (``{name: t.build(flat) for name, t in templates}``, in :func:`flowkit.runner.run_call`).
Templates = tuple[tuple[str, Template], ...]


__all__ = [
    "Constant",
    "DictOfArgs",
    "FieldOfArgs",
    "FromInput",
    "ListOfArgs",
    "Template",
    "Templates",
    "whole_input",
]

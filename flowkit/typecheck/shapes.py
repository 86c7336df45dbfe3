"""Shapes of types the tracer needs: list element types for ``task.map``, and multi-outputs.

And the two value-level helpers that go with them: the length mapped lists share
(:func:`common_length`) and a multi-output tuple rebuilt as its NamedTuple
(:func:`rebuild_namedtuple`).
"""

from __future__ import annotations

import collections.abc as cabc
import typing
from collections.abc import Iterable
from typing import Any, Literal

from flowkit.typecheck.assignable import is_assignable
from flowkit.typecheck.normalize import (
    is_namedtuple,
    namedtuple_fields,
    strip_annotated,
    tuple_shape,
)

_LIST_ORIGINS: tuple[Any, ...] = (list, cabc.Sequence, cabc.MutableSequence)


def element_type(tp: Any) -> Any | None:
    """``T`` for ``list[T]``, ``List[T]``, ``Sequence[T]`` (``Any`` when bare); else ``None``.

    ``Annotated`` is looked through. Used by ``task.map``: an argument of type ``list[P]``
    bound to a parameter of type ``P`` is mapped over.
    """
    tp = strip_annotated(tp)
    if tp in _LIST_ORIGINS:
        return Any
    origin = typing.get_origin(tp)
    if origin in _LIST_ORIGINS:
        args = typing.get_args(tp)
        return args[0] if args else Any
    return None


def is_list_type(tp: Any) -> bool:
    """Whether *tp* is ``list[T]`` / ``List[T]`` / ``Sequence[T]`` (or bare), i.e. mappable."""
    return element_type(tp) is not None


def list_of(tp: Any) -> Any:
    """``list[tp]``: the type of a ``task.map`` result whose task returns *tp*."""
    return list[tp]


MapBinding = Literal["mapped", "whole", "mismatch"]


def map_binding(arg_type: Any, param_type: Any) -> MapBinding:
    """How ``task.map`` binds an argument of static type *arg_type* to a parameter.

    ``"mapped"`` when *arg_type* is a list whose element type is assignable to the parameter
    (this wins when both readings type-check, e.g. a parameter typed ``Any``; ``fk.unmapped``
    forces whole-passing), ``"whole"`` when the argument itself is assignable, else
    ``"mismatch"``.
    """
    elem = element_type(arg_type)
    if elem is not None and is_assignable(elem, param_type):
        return "mapped"
    if is_assignable(arg_type, param_type):
        return "whole"
    return "mismatch"


def output_types(tp: Any) -> tuple[list[tuple[str, Any]], bool]:
    """Split a return type into named outputs; the flag says whether it is a multi-output.

    ``tuple[A, B]`` -> ``[("0", A), ("1", B)], True``; a NamedTuple class -> its field names and
    types, ``True``; anything else (``tuple[T, ...]``, bare ``tuple``, ``tuple[()]``, unions,
    ``None``) -> ``[("0", tp)], False``. ``Annotated`` around the whole type is looked through.
    """
    inner = strip_annotated(tp)
    if is_namedtuple(inner):
        return [(name, t) for name, t in namedtuple_fields(inner)], True
    if typing.get_origin(inner) is tuple:
        shape = tuple_shape(inner)
        if shape is not None and shape[0] == "fixed" and shape[1]:
            return [(str(i), t) for i, t in enumerate(shape[1])], True
    return [("0", tp)], False


def common_length(lengths: Iterable[int]) -> int | None:
    """The length every mapped list shares (0 when there are none); None when they differ.

    >>> common_length([3, 3]), common_length([]), common_length([2, 3])
    (3, 0, None)
    """
    found = set(lengths)
    if len(found) > 1:
        return None
    return found.pop() if found else 0


def rebuild_namedtuple(tp: Any, value: Any) -> Any:
    """*value* as an instance of *tp* when *tp* is a NamedTuple class and *value* a plain
    tuple (what a task returned, or a cache hit loaded), so fields work downstream; else
    *value* unchanged."""
    if type(value) is tuple and hasattr(tp, "_make"):
        return tp._make(value)
    return value

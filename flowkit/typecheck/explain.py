"""Why one type is not assignable to another, with the likely fix, for edge-mismatch messages."""

from __future__ import annotations

import collections.abc as cabc
import typing
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from flowkit.typecheck.assignable import is_assignable
from flowkit.typecheck.names import type_repr
from flowkit.typecheck.normalize import NoneType, is_newtype, is_union, norm, tuple_shape
from flowkit.typecheck.shapes import element_type


def explain_mismatch(src: Any, dst: Any) -> str:
    """Why *src* is not assignable to *dst*, with the likely fix; ``""`` when it is assignable.

    One sentence for a :class:`~flowkit.errors.TypeMismatchError` message, e.g. "the value may
    be None, which `int` does not accept; declare the parameter as `int | None` ...".
    """
    if is_assignable(src, dst):
        return ""
    mismatch = _Mismatch(
        norm(src, keep_newtype=True), norm(dst, keep_newtype=True), type_repr(src), type_repr(dst)
    )
    for explain in _EXPLAINERS:  # the most specific explanation first
        found = explain(mismatch)
        if found is not None:
            return found
    if mismatch.d is NoneType:
        return f"the parameter only accepts None, not `{mismatch.s_txt}`"
    return f"`{mismatch.s_txt}` is not assignable to `{mismatch.d_txt}`"


class _Mismatch(NamedTuple):
    s: Any  # the source type, normalised (NewTypes kept)
    d: Any  # the target type, normalised (NewTypes kept)
    s_txt: str  # the source type as written
    d_txt: str  # the target type as written


def _union_member(m: _Mismatch) -> str | None:
    """A member of a union source that the target refuses (None, most often)."""
    if not is_union(m.s):
        return None
    bad = [t for t in typing.get_args(m.s) if not is_assignable(t, m.d)]
    good = [t for t in typing.get_args(m.s) if is_assignable(t, m.d)]
    if bad == [NoneType] and good:
        return (
            f"the value may be None, which `{m.d_txt}` does not accept; declare the parameter "
            f"as `{m.d_txt} | None`, or make the producer return `{type_repr(_union(good))}`"
        )
    return f"the value may be `{type_repr(bad[0])}`, which `{m.d_txt}` does not accept"


def _newtype_target(m: _Mismatch) -> str | None:
    """A NewType target given a value of its supertype."""
    if not (is_newtype(m.d) and is_assignable(m.s, m.d.__supertype__)):
        return None
    supertype = type_repr(m.d.__supertype__)
    return (
        f"`{m.d_txt}` is a NewType of `{supertype}` and accepts only a `{m.d_txt}`; make the "
        f"producer return `{m.d_txt}` (wrap its value: `{m.d_txt}(x)`), or annotate the "
        f"parameter `{supertype}`"
    )


def _list_versus_element(m: _Mismatch) -> str | None:
    """A list given where one element is taken (``.map``), or the other way round."""
    elem = element_type(m.s)
    if elem is not None and is_assignable(elem, m.d):
        return (
            f"the value is a list of `{type_repr(elem)}` but the parameter takes one "
            f"`{m.d_txt}`; use `.map(...)` to call the task once per element"
        )
    d_elem = element_type(m.d)
    if d_elem is not None and is_assignable(m.s, d_elem):
        return f"the parameter takes a `{m.d_txt}`, not a single `{m.s_txt}`"
    return None


def _tuple_lengths(m: _Mismatch) -> str | None:
    """A tuple of outputs not unpacked, or tuples of different lengths."""
    s_shape, d_shape = tuple_shape(m.s), tuple_shape(m.d)
    if s_shape is None:
        return None
    n = len(s_shape[1])
    if d_shape is None:
        if s_shape[0] != "fixed" or n <= 1:
            return None
        names = ", ".join(f"out{i}" for i in range(n))
        return (
            f"the value is a tuple of {n} outputs (`{m.s_txt}`); unpack it first, "
            f"e.g. `{names} = producer(...)`, and pass one of them"
        )
    if d_shape[0] != "fixed":
        return None
    if s_shape[0] == "var":
        return f"`{m.s_txt}` has no fixed length but the parameter takes exactly `{m.d_txt}`"
    if n != len(d_shape[1]):
        return (
            f"the value has {n} elements but the parameter takes "
            f"{len(d_shape[1])} (`{m.s_txt}` vs `{m.d_txt}`)"
        )
    return None


def _container_parameter(m: _Mismatch) -> str | None:
    """Same kind of container: the first parameter that differs."""
    s_args, d_args = typing.get_args(m.s), typing.get_args(m.d)
    origin = typing.get_origin(m.s)
    if origin is None or origin is not typing.get_origin(m.d) or origin is Literal:
        return None
    if len(s_args) != len(d_args):
        return None
    if len(d_args) == 2 and _is_mapping(origin) and _keys_differ(s_args[0], d_args[0]):
        return (
            f"`{m.s_txt}` is not assignable to `{m.d_txt}`: mapping keys must match exactly "
            f"(they are invariant, as in mypy), and `{type_repr(s_args[0])}` is not "
            f"`{type_repr(d_args[0])}`"
        )
    for a, b in zip(s_args, d_args, strict=True):
        if a is not Ellipsis and not is_assignable(a, b):
            return (
                f"`{m.s_txt}` is not assignable to `{m.d_txt}`: `{type_repr(a)}` is not "
                f"assignable to `{type_repr(b)}`"
            )
    return None


def _keys_differ(s_key: Any, d_key: Any) -> bool:
    """Keys assignable one way only: what invariant mapping keys refuse."""
    return is_assignable(s_key, d_key) and not is_assignable(d_key, s_key)


_EXPLAINERS: tuple[Callable[[_Mismatch], str | None], ...] = (
    _union_member,
    _newtype_target,
    _list_versus_element,
    _tuple_lengths,
    _container_parameter,
)


def _is_mapping(origin: Any) -> bool:
    return isinstance(origin, type) and issubclass(origin, cabc.Mapping)


def _union(members: list[Any]) -> Any:
    return members[0] if len(members) == 1 else typing.Union[tuple(members)]  # noqa: UP007

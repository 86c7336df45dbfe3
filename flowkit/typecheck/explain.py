"""Why one type is not assignable to another, with the likely fix, for edge-mismatch messages."""

from __future__ import annotations

import collections.abc as cabc
import typing
from typing import Any, Literal

from flowkit.typecheck.assignable import is_assignable
from flowkit.typecheck.names import type_repr
from flowkit.typecheck.normalize import NoneType, _is_newtype, _is_union, _norm, _tuple_shape
from flowkit.typecheck.shapes import element_type


def explain_mismatch(src: Any, dst: Any) -> str:
    """Why *src* is not assignable to *dst*, with the likely fix; ``""`` when it is assignable.

    One sentence for a :class:`~flowkit.errors.TypeMismatchError` message, e.g. "the value may
    be None, which `int` does not accept; declare the parameter as `int | None` ...".
    """
    if is_assignable(src, dst):
        return ""
    s, d = _norm(src, keep_newtype=True), _norm(dst, keep_newtype=True)
    s_txt, d_txt = type_repr(src), type_repr(dst)

    if _is_union(s):
        bad = [m for m in typing.get_args(s) if not is_assignable(m, d)]
        good = [m for m in typing.get_args(s) if is_assignable(m, d)]
        if bad == [NoneType] and good:
            return (
                f"the value may be None, which `{d_txt}` does not accept; declare the parameter "
                f"as `{d_txt} | None`, or make the producer return `{type_repr(_union(good))}`"
            )
        return f"the value may be `{type_repr(bad[0])}`, which `{d_txt}` does not accept"

    if _is_newtype(d) and is_assignable(s, d.__supertype__):
        return (
            f"`{d_txt}` is a NewType of `{type_repr(d.__supertype__)}` and accepts only a "
            f"`{d_txt}`; make the producer return `{d_txt}` (wrap its value: `{d_txt}(x)`), or "
            f"annotate the parameter `{type_repr(d.__supertype__)}`"
        )

    elem = element_type(s)
    if elem is not None and is_assignable(elem, d):
        return (
            f"the value is a list of `{type_repr(elem)}` but the parameter takes one "
            f"`{d_txt}`; use `.map(...)` to call the task once per element"
        )
    d_elem = element_type(d)
    if d_elem is not None and is_assignable(s, d_elem):
        return f"the parameter takes a `{d_txt}`, not a single `{s_txt}`"

    s_shape = _tuple_shape(s)
    d_shape = _tuple_shape(d)
    if s_shape is not None and s_shape[0] == "fixed" and len(s_shape[1]) > 1 and d_shape is None:
        n = len(s_shape[1])
        names = ", ".join(f"out{i}" for i in range(n))
        return (
            f"the value is a tuple of {n} outputs (`{s_txt}`); unpack it first, "
            f"e.g. `{names} = producer(...)`, and pass one of them"
        )
    if s_shape is not None and d_shape is not None and d_shape[0] == "fixed":
        if s_shape[0] == "var":
            return f"`{s_txt}` has no fixed length but the parameter takes exactly `{d_txt}`"
        if len(s_shape[1]) != len(d_shape[1]):
            return (
                f"the value has {len(s_shape[1])} elements but the parameter takes "
                f"{len(d_shape[1])} (`{s_txt}` vs `{d_txt}`)"
            )

    # Same kind of container: point at the first parameter that differs.
    s_args, d_args = typing.get_args(s), typing.get_args(d)
    s_origin, d_origin = typing.get_origin(s), typing.get_origin(d)
    if (
        s_origin is not None
        and s_origin is d_origin
        and s_origin is not Literal
        and len(s_args) == len(d_args)
    ):
        if len(d_args) == 2 and _is_mapping(d_origin) and is_assignable(s_args[0], d_args[0]):
            if not is_assignable(d_args[0], s_args[0]):
                return (
                    f"`{s_txt}` is not assignable to `{d_txt}`: mapping keys must match exactly "
                    f"(they are invariant, as in mypy), and `{type_repr(s_args[0])}` is not "
                    f"`{type_repr(d_args[0])}`"
                )
        for a, b in zip(s_args, d_args, strict=True):
            if a is not Ellipsis and not is_assignable(a, b):
                return (
                    f"`{s_txt}` is not assignable to `{d_txt}`: `{type_repr(a)}` is not "
                    f"assignable to `{type_repr(b)}`"
                )
    if d is NoneType:
        return f"the parameter only accepts None, not `{s_txt}`"
    return f"`{s_txt}` is not assignable to `{d_txt}`"


def _is_mapping(origin: Any) -> bool:
    return isinstance(origin, type) and issubclass(origin, cabc.Mapping)


def _union(members: list[Any]) -> Any:
    return members[0] if len(members) == 1 else typing.Union[tuple(members)]  # noqa: UP007

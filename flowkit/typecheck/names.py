"""Readable names of types, for messages: ``list[int]``, ``int | None``, ``Table``."""

from __future__ import annotations

import collections.abc as cabc
import typing
from typing import Any, Literal

from flowkit.typecheck.normalize import NoneType, is_newtype, is_union


def type_repr(tp: Any) -> str:
    """A short, readable name for messages: ``list[int]``, ``int | None``, ``Table``."""
    named = _plain_repr(tp)
    if named is not None:
        return named
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return type_repr(tp.__origin__)
    if is_union(tp):
        args = typing.get_args(tp)
        # None goes last, as people write it: `int | None`.
        ordered = [a for a in args if a is not NoneType] + [a for a in args if a is NoneType]
        return " | ".join(type_repr(a) for a in ordered)
    if origin is Literal:
        return "Literal[" + ", ".join(repr(a) for a in typing.get_args(tp)) + "]"
    if origin is not None:
        return _generic_repr(tp, origin)
    if isinstance(tp, type):
        return _class_name(tp)
    return _typing_name(tp)


def _plain_repr(tp: Any) -> str | None:
    """The name of a type that needs no parameters shown (None, Any, a TypeVar...), or None."""
    if tp is None or tp is NoneType:
        return "None"
    if tp is Any:
        return "Any"
    if tp is Ellipsis:
        return "..."
    if isinstance(tp, str):
        return tp
    if isinstance(tp, typing.ForwardRef):
        return tp.__forward_arg__
    if isinstance(tp, typing.TypeVar):
        return tp.__name__
    if is_newtype(tp):
        return str(getattr(tp, "__name__", tp))
    return None


def _generic_repr(tp: Any, origin: Any) -> str:
    """``list[int]``, ``Callable[[int], str]``, ``tuple[()]``..."""
    args = typing.get_args(tp)
    head = _class_name(origin) if isinstance(origin, type) else _typing_name(origin)
    if origin is tuple and getattr(tp, "__args__", None) in ((), ((),)):
        return "tuple[()]"  # not a bare `typing.Tuple`, which has no `__args__`
    if isinstance(origin, type) and issubclass(origin, cabc.Callable) and len(args) == 2:  # type: ignore[arg-type]
        params, ret = args
        if isinstance(params, (list, tuple)):
            p = "[" + ", ".join(type_repr(a) for a in params) + "]"
        else:
            p = type_repr(params)  # `...` or a ParamSpec
        return f"Callable[{p}, {type_repr(ret)}]"
    if not args:
        return head
    return head + "[" + ", ".join(_arg_repr(a) for a in args) + "]"


def _arg_repr(a: Any) -> str:
    if isinstance(a, list):  # Callable parameter lists, ParamSpec-style
        return "[" + ", ".join(type_repr(x) for x in a) + "]"
    return type_repr(a)


def _class_name(cls: type) -> str:
    if cls.__module__ == "builtins":
        return cls.__name__
    qual = cls.__qualname__
    return cls.__name__ if "<locals>" in qual else qual


def _typing_name(obj: Any) -> str:
    text = repr(obj)
    for prefix in ("typing_extensions.", "typing.", "collections.abc."):
        text = text.replace(prefix, "")
    return text

"""Normalising annotations before they are compared or checked.

Policy: wrappers that do not change the set of admitted values are looked through —
``Annotated`` (metadata ignored), the qualifiers ``Final``, ``ClassVar``, ``Required``,
``NotRequired`` and ``ReadOnly``, ``NewType`` (as its supertype, unless the caller keeps it),
``TypeVar`` (as its bound, the union of its constraints, or ``Any``), ``LiteralString`` (as
``str``) and ``type X = ...`` aliases. ``None`` and ``Literal[None]`` are ``NoneType``. The helpers
here are shared by every other module of the package.
"""

from __future__ import annotations

import types
import typing
from functools import lru_cache
from typing import Any

from flowkit.errors import GraphError

NoneType: type[None] = type(None)

_NEVER: tuple[Any, ...] = tuple(
    x for x in (getattr(typing, "NoReturn", None), getattr(typing, "Never", None)) if x is not None
)
# Qualifiers that wrap a type without changing what values it admits.
_WRAPPERS: tuple[Any, ...] = tuple(
    x
    for x in (
        getattr(typing, "Final", None),
        getattr(typing, "ClassVar", None),
        getattr(typing, "Required", None),
        getattr(typing, "NotRequired", None),
        getattr(typing, "ReadOnly", None),
    )
    if x is not None
)
_LITERAL_STRING: Any = getattr(typing, "LiteralString", None)


def strip_annotated(tp: Any) -> Any:
    """``Annotated[T, ...]`` -> ``T`` (repeatedly); other types unchanged."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = tp.__origin__
    return tp


def annotated_metadata(tp: Any) -> tuple[Any, ...]:
    """The metadata of ``Annotated[T, *metadata]``; ``()`` for any other type."""
    if typing.get_origin(tp) is typing.Annotated:
        return tuple(tp.__metadata__)
    return ()


def _is_newtype(tp: Any) -> bool:
    return hasattr(tp, "__supertype__") and callable(tp)


def _norm(tp: Any, *, keep_newtype: bool = False) -> Any:
    """Remove wrappers that do not change the set of admitted values.

    ``keep_newtype`` stops at a ``NewType`` (static assignability tells it from its supertype).
    """
    while True:
        if tp is None:
            return NoneType
        origin = typing.get_origin(tp)
        if origin is typing.Literal and tp.__args__ == (None,):
            return NoneType  # PEP 586: Literal[None] is None
        if origin is typing.Annotated:
            tp = tp.__origin__
        elif origin is not None and origin in _WRAPPERS:
            args = typing.get_args(tp)
            tp = args[0] if args else Any
        elif tp in _WRAPPERS:
            return Any
        elif _is_newtype(tp):
            if keep_newtype:
                return tp
            tp = tp.__supertype__
        elif isinstance(tp, typing.TypeVar):
            if tp.__bound__ is not None:
                tp = tp.__bound__
            elif tp.__constraints__:
                return typing.Union[tp.__constraints__]  # noqa: UP007 - runtime construction
            else:
                return Any
        elif _LITERAL_STRING is not None and tp is _LITERAL_STRING:
            return str
        elif type(tp).__name__ == "TypeAliasType" and hasattr(tp, "__value__"):
            tp = tp.__value__  # `type X = ...` (Python 3.12+)
        else:
            return tp


def _is_union(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin is typing.Union or origin is types.UnionType


def _is_namedtuple(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


def _is_typeddict(tp: Any) -> bool:
    # typing.is_typeddict misses typing_extensions.TypedDict on some versions; look at the shape.
    return typing.is_typeddict(tp) or (
        isinstance(tp, type)
        and issubclass(tp, dict)
        and hasattr(tp, "__required_keys__")
        and hasattr(tp, "__total__")
    )


@lru_cache(maxsize=512)
def namedtuple_fields(cls: type) -> tuple[tuple[str, Any], ...]:
    """The ``(name, type)`` fields of a NamedTuple class (``Any`` for untyped namedtuples)."""
    fields: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except NameError as exc:
        raise GraphError(
            f"NamedTuple `{cls.__qualname__}`: cannot resolve the type "
            f"`{getattr(exc, 'name', exc)}` of one of its fields; import or define it at "
            f"module level"
        ) from exc
    except Exception:
        hints = {}
    return tuple((f, hints.get(f, Any)) for f in fields)


def _tuple_shape(tp: Any) -> tuple[str, list[Any]] | None:
    """("fixed", [A, B]) for ``tuple[A, B]``, ("var", [T]) for ``tuple[T, ...]``, or None.

    A bare ``tuple`` / ``typing.Tuple`` is ``tuple[Any, ...]``; ``tuple[()]`` is ("fixed", []).
    """
    if _is_namedtuple(tp):
        return ("fixed", [t for _, t in namedtuple_fields(tp)])
    if tp is tuple:
        return ("var", [Any])
    if typing.get_origin(tp) is not tuple:
        return None
    args = getattr(tp, "__args__", None)
    if args is None:
        return ("var", [Any])  # bare `typing.Tuple`: no `__args__` at all, unlike `tuple[()]`
    if args == () or args == ((),):
        return ("fixed", [])
    if len(args) == 2 and args[1] is Ellipsis:
        return ("var", [args[0]])
    return ("fixed", list(args))

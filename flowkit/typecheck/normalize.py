"""Normalising annotations before they are compared or checked.

Policy: wrappers that do not change the set of admitted values are looked through —
``Annotated`` (metadata ignored), the qualifiers ``Final``, ``ClassVar``, ``Required``,
``NotRequired`` and ``ReadOnly``, ``NewType`` (as its supertype, unless the caller keeps it),
``TypeVar`` (as its bound, the union of its constraints, or ``Any``), ``LiteralString`` (as
``str``) and ``type X = ...`` aliases. ``None`` and ``Literal[None]`` are ``NoneType``. The helpers
here (:func:`norm`, :func:`is_union`, :func:`tuple_shape`, ...) are shared by every other
module of the package; only those listed in ``flowkit.typecheck`` are public outside it.
"""

from __future__ import annotations

import types
import typing
from functools import lru_cache
from typing import Any

from flowkit.errors import GraphError

NoneType: type[None] = type(None)

NEVER: tuple[Any, ...] = tuple(
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


def is_newtype(tp: Any) -> bool:
    """Whether *tp* is a ``NewType``."""
    return hasattr(tp, "__supertype__") and callable(tp)


def norm(tp: Any, *, keep_newtype: bool = False) -> Any:
    """Remove wrappers that do not change the set of admitted values.

    ``keep_newtype`` stops at a ``NewType`` (static assignability tells it from its supertype).
    """
    if type(tp) is type and not hasattr(tp, "__supertype__"):
        return tp  # a plain class, the usual case: nothing to unwrap
    final = False
    while not final:
        tp, final = _unwrap_once(tp, keep_newtype)
    return tp


def _unwrap_once(tp: Any, keep_newtype: bool) -> tuple[Any, bool]:
    """(*tp* with one wrapper removed, whether the result is final)."""
    if tp is None:
        return NoneType, True
    origin = typing.get_origin(tp)
    if origin is not None:
        return _unwrap_form(tp, origin)
    if tp in _WRAPPERS:
        return Any, True  # a bare `Final`: its type is inferred, so anything
    if is_newtype(tp):
        return (tp, True) if keep_newtype else (tp.__supertype__, False)
    if isinstance(tp, typing.TypeVar):
        return _typevar_type(tp)
    if _LITERAL_STRING is not None and tp is _LITERAL_STRING:
        return str, True
    if type(tp).__name__ == "TypeAliasType" and hasattr(tp, "__value__"):
        return tp.__value__, False  # `type X = ...` (Python 3.12+)
    return tp, True


def _unwrap_form(tp: Any, origin: Any) -> tuple[Any, bool]:
    """One step of :func:`_unwrap_once` for a subscripted form (``Annotated[T, ...]``...)."""
    if origin is typing.Literal and tp.__args__ == (None,):
        return NoneType, True  # PEP 586: Literal[None] is None
    if origin is typing.Annotated:
        return tp.__origin__, False
    if origin in _WRAPPERS:
        args = typing.get_args(tp)
        return (args[0] if args else Any), False
    return tp, True


def _typevar_type(tp: typing.TypeVar) -> tuple[Any, bool]:
    """A TypeVar as its bound, the union of its constraints, or ``Any``."""
    if tp.__bound__ is not None:
        return tp.__bound__, False
    if tp.__constraints__:
        return typing.Union[tp.__constraints__], True  # noqa: UP007 - runtime construction
    return Any, True


def is_union(tp: Any) -> bool:
    """Whether *tp* is a union (``Union[A, B]`` or ``A | B``)."""
    origin = typing.get_origin(tp)
    return origin is typing.Union or origin is types.UnionType


def is_namedtuple(tp: Any) -> bool:
    """Whether *tp* is a NamedTuple class (or a ``collections.namedtuple``)."""
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


def is_typeddict(tp: Any) -> bool:
    """Whether *tp* is a TypedDict class."""
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


def tuple_shape(tp: Any) -> tuple[str, list[Any]] | None:
    """("fixed", [A, B]) for ``tuple[A, B]``, ("var", [T]) for ``tuple[T, ...]``, or None.

    A bare ``tuple`` / ``typing.Tuple`` is ``tuple[Any, ...]``; ``tuple[()]`` is ("fixed", []).
    """
    if is_namedtuple(tp):
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

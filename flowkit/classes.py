"""Which classes a stored JSON value may name: the bytes never choose the code that runs.

A JSON value names the class of a dataclass, NamedTuple or Enum by reference
(``module:qualname``, :func:`flowkit.naming.class_ref`). The decoder never imports or calls a
name taken from the bytes: it builds a class only if the reading process already trusts it,

1. because the reader *expects* it: the type hint the reader wants (a task's return or
   parameter type) names it anywhere inside (``list[Cfg] | None``, a dataclass field type...),
   matched by reference or, failing that, by ``__qualname__``;
2. because the user registered it: :func:`allow_class` (a class decorator) or
   :func:`allow_annotation` (every class a type hint names; ``@fk.task`` calls it on its
   annotations);
3. because this process encoded a value of it (code the process runs anyway).

Anything else is refused with :class:`UntrustedClassError`. Pure functions over the registry;
imports only the bottom layers.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Iterator
from typing import Any, TypeVar

from flowkit import naming
from flowkit.errors import SerializationError

T = TypeVar("T", bound=type)

# class_ref -> class: the user registry and the classes this process has encoded
_trusted: dict[str, type] = {}
# hint -> {ref or qualname: class} (None marks a qualname two classes share)
_hint_cache: dict[Any, dict[str, type | None]] = {}


class UntrustedClassError(SerializationError):
    """A stored value names a class the reading process does not trust (it is not built)."""


def kind_of(cls: Any) -> str | None:
    """``"$dc"``, ``"$nt"`` or ``"$enum"`` for a dataclass, NamedTuple or Enum class, else None."""
    if not isinstance(cls, type):
        return None
    if issubclass(cls, enum.Enum):
        return "$enum"
    if dataclasses.is_dataclass(cls):
        return "$dc"
    if issubclass(cls, tuple) and isinstance(getattr(cls, "_fields", None), tuple):
        return "$nt"
    return None


def remember(cls: type) -> None:
    """Trust ``cls`` from now on (a class this process encodes or the user allows)."""
    _trusted[naming.class_ref(cls)] = cls


def allow_class(cls: T) -> T:
    """Let stored JSON values name ``cls`` (a dataclass, NamedTuple or Enum class).

    Usable as a class decorator. Needed only for classes that no task annotation names (for
    example a subclass stored where its base is annotated).
    """
    if kind_of(cls) is None:
        raise TypeError(
            f"allow_class({cls!r}): only dataclass, NamedTuple and Enum classes are stored by "
            "reference; other values are pickled and need no registration"
        )
    remember(cls)
    return cls


def allow_annotation(hint: Any) -> None:
    """Trust every dataclass, NamedTuple and Enum class named anywhere inside ``hint``.

    Never raises: a hint it cannot read (a string, a TypeVar) names nothing.
    """
    for cls in classes_named_by(hint):
        remember(cls)


def classes_named_by(hint: Any) -> Iterator[type]:
    """Every dataclass/NamedTuple/Enum class ``hint`` names, through generic arguments,
    unions, ``Annotated``, ``NewType``, ``Literal`` members and the field types of the
    classes themselves (each class once)."""
    seen: set[int] = set()
    stack = [hint]
    while stack:
        h = stack.pop()
        if id(h) in seen:
            continue
        seen.add(id(h))
        stack.extend(_parts(h))
        if kind_of(h) is not None and "<locals>" not in h.__qualname__:
            yield h


def _parts(h: Any) -> list[Any]:
    """The hints directly inside ``h``."""
    if isinstance(h, (list, tuple)):  # Callable's parameter list
        return list(h)
    origin = typing.get_origin(h)
    if origin is typing.Annotated:
        return [typing.get_args(h)[0]]  # the metadata are arbitrary objects, not types
    if origin is typing.Literal:
        return [type(a) for a in typing.get_args(h) if isinstance(a, enum.Enum)]
    if origin is not None:  # list[Cfg], Cfg | None, a generic dataclass Box[Cfg]...
        return [origin, *(a for a in typing.get_args(h) if a is not Ellipsis)]
    supertype = getattr(h, "__supertype__", None)  # NewType
    if supertype is not None:
        return [supertype]
    if kind_of(h) in ("$dc", "$nt"):
        return _field_hints(h)
    return []


def _field_hints(cls: type) -> list[Any]:
    try:
        return list(typing.get_type_hints(cls, include_extras=True).values())
    except Exception:  # an annotation that does not evaluate: use what can be read
        return [a for a in getattr(cls, "__annotations__", {}).values() if not isinstance(a, str)]


def _hint_classes(hint: Any) -> dict[str, type | None]:
    try:
        found = _hint_cache.get(hint)
    except TypeError:  # an unhashable hint (Annotated with a list): not cached
        return _index(hint)
    if found is None:
        found = _hint_cache[hint] = _index(hint)
    return found


def _index(hint: Any) -> dict[str, type | None]:
    by_ref: dict[str, type | None] = {}
    by_qualname: dict[str, type | None] = {}
    for cls in classes_named_by(hint):
        by_ref[naming.class_ref(cls)] = cls
        q = cls.__qualname__
        by_qualname[q] = cls if by_qualname.get(q, cls) is cls else None
    return {**{f":{q}": c for q, c in by_qualname.items()}, **by_ref}


def resolve(ref: str, tag: str, expected: Any) -> type:
    """The trusted class a stored ``ref`` stands for, checked to be of ``tag``'s kind."""
    cls: type | None = None
    if expected is not Any:
        named = _hint_classes(expected)
        cls = named.get(ref)
        if cls is None and ":" in ref:
            cls = named.get(ref[ref.index(":") :])
    if cls is None:
        cls = _trusted.get(ref)
    if cls is None:
        raise UntrustedClassError(
            f"the stored value names class {ref!r}, which this process does not trust, so it "
            "is not built (stored bytes never choose code to run). If it is your class, "
            "annotate the task's return (or parameter) type with it, or register it with "
            "fk.allow_class(Cls)"
        )
    if kind_of(cls) != tag:
        raise UntrustedClassError(
            f"the stored value names {ref!r} as a {_KINDS[tag]}, but {cls!r} is not one"
        )
    return cls


_KINDS = {"$dc": "dataclass", "$nt": "NamedTuple", "$enum": "Enum"}


__all__ = [
    "UntrustedClassError",
    "allow_annotation",
    "allow_class",
    "classes_named_by",
    "kind_of",
    "remember",
    "resolve",
]

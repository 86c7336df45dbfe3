"""The static side of field access on promises: which fields a type has, and their types.

``cfg.lr`` on a promise of a dataclass gives a promise of the field's annotated type, with no
task in between: the graph only records the path (:mod:`flowkit.fieldpath` reads it at run
time). Supported, because their fields are known at decoration:

* attribute access on dataclasses and NamedTuples (``cfg.lr``, ``split.train``);
* item access on TypedDicts (a key written in the body), ``dict[K, V]`` / ``Mapping[K, V]``
  (any key of type ``K``: a missing key fails at run time, naming the keys there were),
  tuples (a position) and ``list[T]`` (an index);
* either on ``Any`` (gradual: the result is ``Any``).

Everything else is a :class:`~flowkit.errors.GraphError` at decoration: an unknown field lists
the fields; a method (``p.mean()``) says to call it in a task, since a promise has no value
yet; an ``Optional`` value says to handle ``None`` first (in a task), because the field of
``None`` does not exist and a type checker would refuse it too.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from typing import Any

from flowkit import typecheck
from flowkit.errors import GraphError
from flowkit.fieldpath import Step


class FieldError(GraphError, AttributeError):
    """An attribute a promise's type does not have as a field. Also an ``AttributeError``, so
    ``hasattr(promise, name)`` and ``getattr(promise, name, default)`` (libraries probing an
    object, runtime-checkable protocols) answer instead of raising."""


_DICTS: tuple[Any, ...] = (dict, typing.Dict, typing.Mapping, typing.MutableMapping)  # noqa: UP006
_DICT_ORIGINS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)
_SEQUENCES = (list, collections.abc.Sequence)
_MISSING = object()


def _plain(tp: Any) -> Any:
    tp = typecheck.strip_annotated(tp)
    while hasattr(tp, "__supertype__"):  # NewType: its fields are its supertype's
        tp = tp.__supertype__
    return tp


def _is_optional(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return type(None) in typing.get_args(tp)
    return False


def type_name(tp: Any) -> str:
    return typecheck.type_repr(tp)


def _hints(cls: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an unresolvable forward reference: the field is Any
        return dict(getattr(cls, "__annotations__", {}))


def attribute_fields(tp: Any) -> dict[str, Any] | None:
    """Field name -> type of a dataclass or NamedTuple type; None for any other type."""
    cls = typing.get_origin(tp) or tp
    if isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return dict(typecheck.namedtuple_fields(cls))
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        hints = _hints(cls)
        return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}
    return None


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def _unusable(what: str, tp: Any, action: str) -> GraphError:
    return GraphError(
        f"{what} ({type_name(tp)}): cannot {action}. Field access on a promise works for "
        "dataclasses, NamedTuples (p.field), TypedDicts, dicts, tuples and lists (p['key'], "
        "p[0]); for anything else, read the value in a task that takes it as a parameter (or in "
        "an @fk.dynamic task, whose body runs with real values)"
    )


def attr_step(tp: Any, name: str, what: str) -> tuple[Step, Any]:
    """The step and result type of ``promise.name`` on a promise of ``tp``, or a GraphError."""
    plain = _plain(tp)
    if plain is Any:
        return Step("attr", name), Any
    if _is_optional(plain):
        raise FieldError(
            f"{what} ({type_name(tp)}): cannot read `.{name}`, because the value may be None. "
            "Handle None in a task (or make the task's return type non-Optional)"
        )
    fields = attribute_fields(plain)
    if fields is not None and name in fields:
        return Step("attr", name), fields[name]
    cls = typing.get_origin(plain) or plain
    member = getattr(cls, name, _MISSING) if isinstance(cls, type) else _MISSING
    if member is not _MISSING:
        kind = "method" if callable(member) else "property"  # (a descriptor: computed)
        raise FieldError(
            f"{what} ({type_name(tp)}): `.{name}` is a {kind}, and a promise has no value to "
            f"run it on while the workflow is traced. Call it in a task: "
            f"`@fk.task def {name}_of(x: {type_name(tp)}) -> ...: return x.{name}"
            f"{'' if kind == 'property' else '(...)'}`, then `{name}_of(p)` in the workflow"
        )
    if fields is None:
        if _is_typeddict(plain) or typing.get_origin(plain) in _DICT_ORIGINS or plain is dict:
            raise FieldError(
                f"{what} ({type_name(tp)}): a dict has keys, not attributes: write p[{name!r}]"
            )
        raise FieldError(str(_unusable(what, tp, f"read `.{name}`")))
    raise FieldError(
        f"{what} ({type_name(tp)}): no field `{name}`; the fields are "
        + ", ".join(f"{f}: {type_name(t)}" for f, t in fields.items())
    )


def item_step(tp: Any, key: Any, what: str) -> tuple[Step, Any]:
    """The step and result type of ``promise[key]`` on a promise of ``tp``, or a GraphError."""
    if isinstance(key, slice) or not isinstance(key, (str, int)) or isinstance(key, bool):
        raise GraphError(
            f"{what} ({type_name(tp)}): index with a key written in the workflow body (a str or "
            f"an int), not {type(key).__name__}; a key that is itself a promise needs a task"
        )
    plain = _plain(tp)
    if plain is Any:
        return Step("key", key), Any
    if _is_optional(plain):
        raise GraphError(
            f"{what} ({type_name(tp)}): cannot read [{key!r}], because the value may be None. "
            "Handle None in a task first"
        )
    if _is_typeddict(plain):
        hints = _hints(plain)
        if key not in hints:
            raise GraphError(
                f"{what} ({type_name(tp)}): no key {key!r}; the keys are "
                + ", ".join(f"{k!r}: {type_name(t)}" for k, t in hints.items())
            )
        return Step("key", key), hints[key]
    origin = typing.get_origin(plain)
    args = typing.get_args(plain)
    if origin in _DICT_ORIGINS or plain in _DICTS:
        ktype, vtype = args if len(args) == 2 else (Any, Any)
        if not typecheck.check_value(key, ktype):
            raise GraphError(
                f"{what} ({type_name(tp)}): key {key!r} is not a {type_name(ktype)}, the type "
                "of this dict's keys"
            )
        return Step("key", key), vtype
    if isinstance(key, int):
        elem = _sequence_item(plain, origin, args, key, what, tp)
        if elem is not None:
            return Step("key", key), elem
    raise _unusable(what, tp, f"read [{key!r}]")


def _sequence_item(
    plain: Any, origin: Any, args: tuple[Any, ...], key: int, what: str, tp: Any
) -> Any | None:
    fields = attribute_fields(plain)
    if isinstance(plain, type) and issubclass(plain, tuple) and fields is not None:
        items = list(fields.values())  # a NamedTuple by position
    elif origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        items = list(args)
    elif origin is tuple or plain is tuple:
        return args[0] if args else Any
    elif origin in _SEQUENCES or plain is list:
        return args[0] if args else Any
    else:
        return None
    if not -len(items) <= key < len(items):
        raise GraphError(
            f"{what} ({type_name(tp)}): position {key} is out of range; it has {len(items)} items"
        )
    return items[key]


__all__ = ["FieldError", "attr_step", "attribute_fields", "item_step"]

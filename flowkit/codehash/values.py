"""Canonical encodings of values (constants, closure cells, defaults, class attributes).

Policy: JSON-like values encode as themselves, with tags where JSON would be ambiguous (tuples,
non-finite floats, bytes by sha256); dicts and sets are sorted by their elements' canonical JSON,
so neither insertion order nor the hash seed matters. Functions, classes and modules inside a
value encode by reference (the caller's ``ref`` callback, which fingerprints user code),
code objects by their normalised-bytecode digest, numpy arrays by dtype, shape and a sha256 of
their bytes. Type annotations encode structurally, with the classes inside them by reference:
unions (``int | None``, ``Optional[int]`` and ``Union[int, None]`` alike, in written order),
generics (``list[int]``, ``typing.Dict[str, X]``, ``Callable[..., T]``), ``Annotated`` (its
metadata by value), ``Literal`` (its values), special forms (``ClassVar``, ``Final``…), type
variables (name, bound, constraints, variance), ``NewType``, and ``ForwardRef`` by its text.
Any other object encodes through its pickle reduction (``__reduce_ex__(4)``), recursively, so
a set inside an object's state is sorted too. Runtime machinery (locks, threads, queues,
executors, open files, generators) counts by its type name. What cannot be encoded raises
:class:`Unstable`; ``encode_or_type`` turns that into the type name plus a logged warning, so
fingerprinting never fails on a value.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import logging
import math
import queue
import threading
import types
import typing
from collections.abc import Callable
from typing import Any, Final

from flowkit import hashing, naming
from flowkit.codehash.bytecode import code_info, text
from flowkit.secret import Secret

logger = logging.getLogger(__name__)

Json = Any  # a JSON-able structure

MAX_DEPTH = 64
_CODE_LIKE = (
    types.FunctionType,
    type,
    types.ModuleType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
)


# Runtime machinery, not configuration: such an object counts by its type, without a warning.
_RUNTIME_TYPES: tuple[type, ...] = (
    type(threading.Lock()),
    type(threading.RLock()),
    threading.Condition,
    threading.Event,
    threading.Semaphore,
    threading.Thread,
    threading.local,
    queue.Queue,
    concurrent.futures.Executor,
    io.IOBase,
    types.GeneratorType,
    types.CoroutineType,
    types.AsyncGeneratorType,
)


# Typing constructs: the modules that define them, and the alias types of ``types``.
_TYPING_MODULES = frozenset({"typing", "typing_extensions"})
_ALIAS_TYPES = (types.GenericAlias, types.UnionType)


class Unstable(Exception):
    """A value has no stable encoding."""


def is_code_like(value: object) -> bool:
    """Functions, classes and modules: fingerprinted as code, never pickled."""
    return isinstance(value, _CODE_LIKE)


def wrapped(obj: object) -> object | None:
    """The callable ``obj`` wraps through ``__wrapped__`` (TaskDef, lru_cache, wraps), if any."""
    try:
        inner = getattr(obj, "__wrapped__", None)
    except Exception:  # proxies may raise anything from __getattr__
        return None
    return inner if inner is not None and inner is not obj and callable(inner) else None


def type_name(t: type) -> str:
    """``module.qualname``, with ``__main__`` named as when the script is imported."""
    return f"{naming.module_name(t.__module__)}.{t.__qualname__}"


_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def warn_unstable(label: str, value: object, reason: str) -> None:
    """Warn once per process per (component, type)."""
    key = (label, type_name(type(value)))
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning(
        "%s: a value of type %s cannot be hashed stably (%s); only its type counts in the code "
        "fingerprint, so changes to it will not invalidate cached results. Make it a plain "
        "value (numbers, strings, lists, dicts, dataclasses) or pin the task with version=.",
        label,
        type_name(type(value)),
        reason,
    )


def _sort_key(obj: Json) -> bytes:
    return hashing.canonical_json(obj)


# Returned by the encoders of one kind of value when the value is of another kind.
_NOT_THIS_KIND: Final = object()


def _scalar(value: object, t: type) -> Json:
    """Strings, None, bools, ints, floats and bytes (exact types); else ``_NOT_THIS_KIND``."""
    if isinstance(value, str) and t is str:
        return text(value)
    if value is None or t is bool or t is int:
        return value
    if isinstance(value, float) and t is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, (bytes, bytearray)) and t in (bytes, bytearray):
        return {f"${t.__name__}": hashlib.sha256(value).hexdigest()}
    return _NOT_THIS_KIND


def _may_be_annotation(value: object, t: type) -> bool:
    """A typing construct (not a class) or a ``list[int]`` / ``int | None`` alias."""
    return (t.__module__ in _TYPING_MODULES and not isinstance(value, type)) or isinstance(
        value, _ALIAS_TYPES
    )


class ValueEncoder:
    """Encodes values; ``ref(obj)`` names the functions, classes and modules found inside."""

    def __init__(self, ref: Callable[[object], str]) -> None:
        self._ref = ref

    def encode_or_type(self, value: object, label: str) -> Json:
        """The encoding of ``value``, or its type name (with a warning) when it has none."""
        try:
            return self.encode(value)
        except (Unstable, RecursionError) as exc:
            warn_unstable(label, value, str(exc) or "nested too deeply")
            return {"$unhashable": type_name(type(value))}

    def encode(self, value: object) -> Json:
        """The encoding of ``value``; raises :class:`Unstable`."""
        return self._encode(value, 0, ())

    def _encode(self, value: object, depth: int, stack: tuple[int, ...]) -> Json:
        if depth > MAX_DEPTH:
            raise Unstable("nested too deeply")
        t = type(value)
        scalar = _scalar(value, t)
        if scalar is not _NOT_THIS_KIND:
            return scalar
        if id(value) in stack:
            return {"$cycle": len(stack) - stack.index(id(value))}
        inner = (*stack, id(value))
        d = depth + 1
        container = self._container(value, t, d, inner)
        if container is not _NOT_THIS_KIND:
            return container
        return self._object(value, t, d, inner)

    def _container(self, value: object, t: type, depth: int, stack: tuple[int, ...]) -> Json:
        """Lists, tuples, dicts, sets and complex numbers (exact types), element by element."""
        if isinstance(value, list) and t is list:
            return [self._encode(v, depth, stack) for v in value]
        if isinstance(value, tuple) and t is tuple:
            return {"$tuple": [self._encode(v, depth, stack) for v in value]}
        if isinstance(value, dict) and t is dict:
            pairs = [
                [self._encode(k, depth, stack), self._encode(v, depth, stack)]
                for k, v in value.items()
            ]
            return {"$dict": sorted(pairs, key=_sort_key)}
        if isinstance(value, (set, frozenset)) and t in (set, frozenset):
            elems = sorted((self._encode(v, depth, stack) for v in value), key=_sort_key)
            return {f"${t.__name__}": elems}
        if isinstance(value, complex) and t is complex:
            parts = [self._encode(value.real, depth, stack), self._encode(value.imag, depth, stack)]
            return {"$complex": parts}
        return _NOT_THIS_KIND

    def _object(self, value: object, t: type, depth: int, stack: tuple[int, ...]) -> Json:
        """Code, annotations, code-like references, arrays, runtime machinery, the rest reduced."""
        if isinstance(value, types.CodeType):
            return {"$code": [value.co_name, code_info(value).digest]}
        if value is Ellipsis:  # Callable[..., T], tuple[int, ...]
            return {"$ellipsis": True}
        if _may_be_annotation(value, t):
            annotation = self._annotation(value, depth, stack)
            if annotation is not None:
                return annotation
        if is_code_like(value) or wrapped(value) is not None:
            return {"$ref": self._ref(value)}
        if t.__module__ == "numpy" and t.__name__ == "ndarray":
            return self._ndarray(value, depth, stack)
        if isinstance(value, _RUNTIME_TYPES):
            return {"$runtime": type_name(t)}
        if isinstance(value, Secret):  # its value never reaches a digest that is stored
            return {"$secret": True}
        return self._reduced(value, depth, stack)

    def _annotation(self, value: Any, depth: int, stack: tuple[int, ...]) -> Json:
        """A typing construct, structurally; ``None`` when ``value`` is not one."""
        t = type(value)

        def enc(v: object) -> Json:
            return self._encode(v, depth, stack)

        if t.__name__ == "ForwardRef":
            # Only the text: typing caches the evaluated type on the object.
            return {"$forwardref": text(str(getattr(value, "__forward_arg__", "")))}
        if isinstance(value, types.UnionType) or typing.get_origin(value) is typing.Union:
            return {"$union": [enc(a) for a in value.__args__]}  # order kept, as written
        if hasattr(value, "__metadata__") and typing.get_origin(value) is typing.Annotated:
            return {"$annotated": [enc(value.__origin__), [enc(m) for m in value.__metadata__]]}
        if t.__name__ in ("ParamSpecArgs", "ParamSpecKwargs"):
            return {"$paramspec": [t.__name__, enc(value.__origin__)]}
        if t.__name__ in ("TypeVar", "ParamSpec", "TypeVarTuple"):
            return {"$typevar": [t.__name__, text(value.__name__), *self._variance(value, enc)]}
        if t.__name__ == "NewType":
            return {"$newtype": [text(value.__name__), enc(value.__supertype__)]}
        if isinstance(value, _ALIAS_TYPES) or hasattr(value, "__origin__"):
            args = getattr(value, "__args__", None)  # None: an unsubscripted typing.List
            encoded = None if args is None else [enc(a) for a in args]
            unpacked = bool(getattr(value, "__unpacked__", False))  # *tuple[int, ...]
            return {"$generic": [enc(value.__origin__), encoded, unpacked]}
        name = getattr(value, "_name", None)
        if t.__name__.endswith("SpecialForm") and isinstance(name, str):  # Union, Literal…
            return {"$typing": name}
        return None

    @staticmethod
    def _variance(value: Any, enc: Callable[[object], Json]) -> list[Json]:
        """A type variable's bound, constraints and variance (what type checkers act on)."""
        constraints = getattr(value, "__constraints__", ())
        return [
            enc(getattr(value, "__bound__", None)),
            [enc(c) for c in constraints],
            bool(getattr(value, "__covariant__", False)),
            bool(getattr(value, "__contravariant__", False)),
        ]

    def _ndarray(self, arr: Any, depth: int, stack: tuple[int, ...]) -> Json:
        head = [arr.dtype.str, list(arr.shape)]
        if arr.dtype.hasobject:  # the bytes would be pointers: encode the elements
            return {"$ndarray": head, "items": self._encode(arr.ravel().tolist(), depth, stack)}
        data = arr.tobytes(order="C")  # copies only a non-contiguous array
        return {"$ndarray": head, "sha256": hashlib.sha256(data).hexdigest()}

    def _reduced(self, value: object, depth: int, stack: tuple[int, ...]) -> Json:
        try:
            reduced = value.__reduce_ex__(4)
        except Exception as exc:
            raise Unstable(f"it cannot be pickled: {exc}") from None
        if isinstance(reduced, str):  # a module-level singleton, pickled by name
            return {"$global": [type_name(type(value)), reduced]}
        if not isinstance(reduced, tuple) or len(reduced) < 2:
            raise Unstable("its __reduce_ex__ returned an unexpected value")
        func, args, *rest = reduced
        state = rest[0] if rest else None
        listitems = list(rest[1]) if len(rest) > 1 and rest[1] is not None else None
        dictitems = dict(rest[2]) if len(rest) > 2 and rest[2] is not None else None
        parts = (func, args, state, listitems, dictitems)
        return {"$reduce": [self._encode(p, depth, stack) for p in parts]}

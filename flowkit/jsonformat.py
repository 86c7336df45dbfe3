"""The ``json`` value format: canonical bytes that keep a value's type and order, parsed as data.

Plain JSON for ``None``, ``bool``, ``int``, ``float``, ``str``, ``list`` and ``dict`` with
string keys; tagged objects for the rest: ``{"$tuple": [...]}``, ``{"$set": [...]}``,
``{"$frozenset": [...]}``, ``{"$dict": [[k, v], ...]}`` (keys that are not strings, or that start
with ``$``), ``{"$bytes": base64}``, ``{"$float": "nan" | "inf" | "-inf"}``,
``{"$dc": "module:Qual", "fields": {...}}``, ``{"$nt": "module:Qual", "items": [...]}``,
``{"$enum": "module:Qual", "name": ...}``.

Canonical: no spaces, UTF-8, dicts in insertion order (order is part of a dict's value), sets
sorted by their elements' encodings (a set has no order), so equal values give equal bytes in
every process and under every hash seed, and values that differ (``1``, ``True``, ``1.0``;
``(1,)`` and ``[1]``; ``{'a': 1, 'b': 2}`` and ``{'b': 2, 'a': 1}``) give different bytes.

Decoding never imports or calls a name taken from the bytes: class references resolve only to
classes the reader trusts (:mod:`flowkit.classes`), and instances are built without running
their code: a dataclass with ``object.__new__`` and its attributes stored directly (every
instance attribute is stored, ``__post_init__`` ones too), a NamedTuple with ``tuple.__new__``,
an Enum member looked up by name.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import sys
import types
import typing
from dataclasses import dataclass
from typing import Any

from flowkit import classes, naming

_encoder = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False
)  # _enc builds a fresh tree: a cycle in the value is a RecursionError there
_text = _encoder.encode
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class defined in Python
_FLOATS = ("nan", "inf", "-inf")  # what repr() gives for the floats JSON cannot hold


class _NotJSON(Exception):
    """The value holds something this format does not store (it goes to pickle)."""


# -- classes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """How instances of a dataclass or NamedTuple are stored and rebuilt."""

    tag: str
    ref: str
    fields: tuple[str, ...]  # dataclass fields / NamedTuple items
    slots: dict[str, Any]  # slot name -> member descriptor (dataclasses)
    has_dict: bool


_shapes: dict[type, _Layout | None] = {}  # class -> its layout (None: not stored by reference)
_encodable: dict[type, _Layout | None] = {}  # the same, for classes reachable by their name


def _layout(t: type) -> _Layout | None:
    """The layout of a class whose instances this process encodes by reference, else None."""
    try:
        return _encodable[t]
    except KeyError:
        pass
    layout = _shape(t)
    if layout is not None and not _came_by_value(t) and _by_name(t) is not t:
        layout = None  # a generated class its name does not reach: pickle
    if layout is not None:
        classes.remember(t)  # a class this process encodes is code it runs: trust it on read
    _encodable[t] = layout
    return layout


def _shape(t: type) -> _Layout | None:
    try:
        return _shapes[t]
    except KeyError:
        pass
    layout = _shapes[t] = _make_layout(t)
    return layout


def _make_layout(t: type) -> _Layout | None:
    tag = classes.kind_of(t)
    if tag is None or "<locals>" in t.__qualname__:
        return None
    if tag != "$enum" and not _plain_bases(t):
        return None  # an int or Exception subclass: object.__new__ cannot build it
    fields: tuple[str, ...] = ()
    if tag == "$dc":
        fields = tuple(f.name for f in dataclasses.fields(t))
    elif tag == "$nt":
        fields = tuple(t._fields)  # type: ignore[attr-defined]
    return _Layout(tag, naming.class_ref(t), fields, _slots(t), _has_dict(t))


def _came_by_value(t: type) -> bool:
    """A class whose module this process never imported, or a driver's ``__main__`` class in
    a worker: it came by value (Ray ships a driver's own modules so), and its name is still
    the one the reader resolves."""
    if t.__module__ == naming.MAIN:
        return naming.main_is_adopted()
    return t.__module__ not in sys.modules


def _by_name(t: type) -> Any:
    """What ``module.qualname`` names among the modules already imported (never imports)."""
    obj: Any = sys.modules.get(t.__module__)
    for part in t.__qualname__.split("."):
        obj = getattr(obj, part, None)
    return obj


def _plain_bases(t: type) -> bool:
    """True if ``object.__new__``/``tuple.__new__`` can build ``t`` (no builtin base layout)."""
    allowed = (object, tuple, typing.Generic)
    return all(
        b in allowed or (b.__flags__ & _HEAPTYPE and b.__module__ != "builtins")
        for b in t.__mro__[1:]
    )


def _slots(t: type) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for k in t.__mro__:
        for name, value in vars(k).items():
            if isinstance(value, types.MemberDescriptorType) and name not in found:
                found[name] = value
    return found


def _has_dict(t: type) -> bool:
    return any("__dict__" in vars(k) for k in t.__mro__[:-1])


def _dunder(name: str) -> bool:
    return name[:2] == "__" and name[-2:] == "__"


def _state(v: Any, layout: _Layout) -> list[tuple[str, Any]]:
    """Every instance attribute of a dataclass instance, in a stable order."""
    d = object.__getattribute__(v, "__dict__") if layout.has_dict else {}
    items = list(d.items())
    for name, descr in layout.slots.items():
        try:
            items.append((name, descr.__get__(v, type(v))))
        except AttributeError:
            continue  # an unset slot
    names = {n for n, _ in items}
    if len(names) != len(items) or any(type(n) is not str or _dunder(n) for n in names):
        raise _NotJSON
    if not names.issuperset(layout.fields):
        raise _NotJSON  # an unset field: pickle says so exactly
    return items


# -- encoding --------------------------------------------------------------------------------


def encode(value: Any, refs: set[Any] | None = None) -> bytes | None:
    """The canonical bytes of ``value``, or None if this format cannot hold it.

    ``refs``, when given, receives the class of every dataclass, NamedTuple and Enum met.
    """
    try:
        return _text(_enc(value, refs)).encode("utf-8")
    except (_NotJSON, ValueError, RecursionError, TypeError):
        return None  # a lone surrogate, an int too long, a cycle, an object: pickle


def str_bytes(value: str) -> bytes:
    """What :func:`encode` writes for a ``str`` (may raise for a lone surrogate)."""
    return _text(value).encode("utf-8")


def _enc(v: Any, refs: set[Any] | None) -> Any:
    t = type(v)
    if v is None or t is str or t is bool or t is int:
        return v
    if t is float:
        return v if math.isfinite(v) else {"$float": repr(v)}
    if t is list:
        return [_enc(x, refs) for x in v]
    if t is dict:
        if all(type(k) is str and k[:1] != "$" for k in v):
            return {k: _enc(x, refs) for k, x in v.items()}
        return {"$dict": [[_enc(k, refs), _enc(x, refs)] for k, x in v.items()]}
    if t is tuple:
        return {"$tuple": [_enc(x, refs) for x in v]}
    if t is set or t is frozenset:
        return {"$" + t.__name__: sorted((_enc(x, refs) for x in v), key=_text)}
    if t is bytes:
        return {"$bytes": base64.b64encode(v).decode("ascii")}
    return _enc_object(v, t, refs)


def _enc_object(v: Any, t: type, refs: set[Any] | None) -> Any:
    layout = _layout(t)
    if layout is None:
        raise _NotJSON
    if refs is not None:
        refs.add(t)
    if layout.tag == "$enum":
        name = v._name_
        if type(name) is not str or vars(t)["_member_map_"].get(name) is not v:
            raise _NotJSON  # a composite Flag value has no member name
        return {"$enum": layout.ref, "name": name}
    if layout.tag == "$nt":
        if layout.has_dict and object.__getattribute__(v, "__dict__"):
            raise _NotJSON  # attributes beyond the items: pickle keeps them
        return {"$nt": layout.ref, "items": [_enc(x, refs) for x in v]}
    return {"$dc": layout.ref, "fields": {n: _enc(x, refs) for n, x in _state(v, layout)}}


# -- decoding --------------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not canonical JSON")


_decoder = json.JSONDecoder(parse_constant=_refuse_constant)


def decode(data: Any, expected: Any = Any, refs: set[Any] | None = None) -> Any:
    """Rebuild a value from bytes written by :func:`encode`.

    ``expected`` is the type hint the reader wants: classes it names are trusted for class
    references (see :mod:`flowkit.classes`). ``refs``, when given, receives every class built.
    """
    raw = data if isinstance(data, bytes) else bytes(data)
    v = _decoder.decode(raw.decode("utf-8"))
    t = type(v)
    if t is list or t is dict:
        return _Decoder(expected, refs).dec(v)
    return v


class _Decoder:
    __slots__ = ("expected", "refs")

    def __init__(self, expected: Any, refs: set[Any] | None) -> None:
        self.expected = expected
        self.refs = refs

    def dec(self, v: Any) -> Any:
        t = type(v)
        if t is list:
            return [self.dec(x) for x in v]
        if t is not dict:
            return v
        for k in v:
            if k[:1] == "$":
                return self.tagged(k, v)
            break
        return {k: self.dec(x) for k, x in v.items()}

    def tagged(self, tag: str, v: dict[str, Any]) -> Any:
        body = v[tag]
        if tag in ("$dc", "$nt", "$enum"):
            return self.instance(tag, body, v)
        if len(v) != 1:
            raise ValueError(f"malformed {tag} object: unexpected keys {sorted(v)}")
        if tag == "$tuple":
            return tuple(self.dec(x) for x in _list(tag, body))
        if tag == "$dict":
            return {self.dec(k): self.dec(x) for k, x in (_pair(p) for p in _list(tag, body))}
        if tag == "$set":
            return {self.dec(x) for x in _list(tag, body)}
        if tag == "$frozenset":
            return frozenset(self.dec(x) for x in _list(tag, body))
        if tag == "$bytes" and type(body) is str:
            return base64.b64decode(body, validate=True)
        if tag == "$float" and body in _FLOATS:
            return float(body)  # a new object each time: two NaNs in one set stay two
        raise ValueError(f"unknown or malformed JSON tag {tag!r}")

    def instance(self, tag: str, ref: Any, v: dict[str, Any]) -> Any:
        key = _BODY[tag]
        if type(ref) is not str or len(v) != 2 or key not in v:
            raise ValueError(f"malformed {tag} object: expected keys {tag!r} and {key!r}")
        cls = classes.resolve(ref, tag, self.expected)
        if self.refs is not None:
            self.refs.add(cls)
        body = v[key]
        if tag == "$enum":
            if type(body) is not str:
                raise ValueError(f"malformed $enum object for {ref!r}: the name is not a string")
            return cls[body]  # type: ignore[index]
        if tag == "$nt":
            return self.namedtuple(cls, ref, _list(tag, body))
        if type(body) is not dict:
            raise ValueError(f"malformed $dc object for {ref!r}: 'fields' is not an object")
        return self.dataclass(cls, ref, body)

    def namedtuple(self, cls: type, ref: str, items: list[Any]) -> Any:
        n = len(_rebuildable(cls, ref).fields)
        if len(items) != n:
            raise ValueError(f"stored {ref!r} has {len(items)} items; the class has {n} fields")
        return tuple.__new__(cls, [self.dec(x) for x in items])

    def dataclass(self, cls: type, ref: str, attrs: dict[str, Any]) -> Any:
        layout = _rebuildable(cls, ref)
        missing = [f for f in layout.fields if f not in attrs]
        if missing:
            raise ValueError(f"stored {ref!r} lacks field(s) {missing} that the class has")
        obj: Any = object.__new__(cls)
        d = object.__getattribute__(obj, "__dict__") if layout.has_dict else None
        for name, x in attrs.items():
            descr = layout.slots.get(name)
            if _dunder(name) or (descr is None and d is None):
                raise ValueError(f"stored {ref!r} has attribute {name!r} the class cannot hold")
            value = self.dec(x)
            if descr is not None:
                descr.__set__(obj, value)  # the slot itself: no __setattr__, no property
            else:
                d[name] = value  # type: ignore[index]
        return obj


_BODY = {"$dc": "fields", "$nt": "items", "$enum": "name"}


def _rebuildable(cls: type, ref: str) -> _Layout:
    layout = _shape(cls)
    if layout is None:
        raise ValueError(f"class {ref!r} cannot be rebuilt without running its code")
    return layout


def _list(tag: str, body: Any) -> list[Any]:
    if type(body) is not list:
        raise ValueError(f"malformed {tag} object: expected a list")
    return body


def _pair(p: Any) -> tuple[Any, Any]:
    if type(p) is not list or len(p) != 2:
        raise ValueError("malformed $dict object: expected [key, value] pairs")
    return p[0], p[1]


__all__ = ["decode", "encode", "str_bytes"]

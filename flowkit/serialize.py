"""Serialisers: values to bytes and back, chosen by the value's type.

``dump(value, sink, what=...) -> format`` writes the value to a binary sink and returns the
name of the format it used; ``load(format, data, ...) -> value`` reads it back. Formats:

``json``
    ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``list``, ``tuple``, ``dict``,
    ``set``/``frozenset`` and, by class reference, dataclass instances, NamedTuples and Enum
    members of importable (non-``__main__``, non-local) classes — nested freely. The encoding
    is canonical (sorted keys, sets sorted, no spaces), so equal values give equal bytes in
    every process, and types round-trip (a tuple stays a tuple, a dataclass comes back as its
    class; dataclasses are rebuilt field by field without calling ``__init__``, like pickle).
    Exact types only: a subclass of ``int`` or ``dict`` goes to ``pickle`` to keep its type.
``npy``
    ``numpy.ndarray`` without object dtype (numpy's ``.npy`` format). Loads as a writable copy.
``arrow``
    ``pyarrow.Table`` as an Arrow IPC stream. Loaded zero-copy from the buffer it is given
    (the store hands a memory map for large local objects).
``pandas``
    ``pandas.DataFrame`` through Arrow IPC (falls back to ``pickle`` if Arrow cannot hold it,
    e.g. mixed-type object columns or non-string column names).
``file`` / ``dir``
    :class:`flowkit.files.File` / :class:`~flowkit.files.Directory` as a deterministic tar;
    loaded by unpacking into a local folder (``scratch``) and returned as a path.
``pickle``
    Everything else, with cloudpickle, after a one-line JSON header recording the Python
    ``major.minor``, the cloudpickle version and the version of the value's top-level package.
    Loading a pickle made by another Python minor version raises :class:`PickleVersionError`.
    Pickle bytes are not guaranteed stable (:func:`is_stable` is False), so callers that
    derive cache keys from them check them twice (see ``flowkit.cache.value_digest``).

Choosing: an exact-type table first (numpy, pyarrow and pandas entries are registered lazily,
the first time a value whose type lives in that package is seen — this module never imports
them), then ``json``, then ``pickle``. A serialiser may *decline* a value before writing
anything, passing it on. Register your own with :func:`register`.

Errors: an unstorable value raises :class:`~flowkit.errors.SerializationError` whose message
starts with ``what`` (e.g. ``"task `train` output 0"``) so the user sees which value failed.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import importlib
import io
import json
import logging
import math
import os
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import cloudpickle

from flowkit import files
from flowkit.errors import SerializationError
from flowkit.hashing import canonical_json

log = logging.getLogger(__name__)

Buffer = bytes | bytearray | memoryview | Any  # anything with the buffer protocol (mmap too)

PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class Source:
    """What a loader gets: the verified bytes, and where they live when that is known.

    ``data`` supports the buffer protocol (``bytes`` or a memory map); ``path`` is the local
    file holding exactly those bytes (None for remote stores); ``scratch`` is a local folder
    reserved for this artifact, where ``file``/``dir`` values are unpacked.
    """

    data: Buffer
    path: str | None = None
    scratch: str | None = None


@dataclass(frozen=True)
class Serializer:
    """One format. ``dump`` may raise :class:`Decline` (before writing) to pass the value on."""

    name: str
    dump: Callable[[Any, IO[bytes]], None]
    load: Callable[[Source], Any]
    stable: bool = True  # equal values always give identical bytes


class Decline(Exception):
    """Raised by a serialiser's ``dump`` to let the next serialiser try the value."""


class PickleVersionError(SerializationError):
    """A pickle was written by a Python minor version other than this one."""


# -- registry --------------------------------------------------------------------------------

_by_name: dict[str, Serializer] = {}
_by_type: dict[type, Serializer] = {}


def register(serializer: Serializer, *types: type) -> None:
    """Register ``serializer`` under its name, for values whose exact type is in ``types``.

    Registering a different serializer under a taken name is refused (no silent override).
    """
    old = _by_name.get(serializer.name)
    if old is not None and old is not serializer:
        raise ValueError(f"a serializer named {serializer.name!r} is already registered")
    _by_name[serializer.name] = serializer
    for t in types:
        _by_type[t] = serializer


def _register_numpy() -> None:
    import numpy as np

    def dump(v: Any, sink: IO[bytes]) -> None:
        if v.dtype.hasobject:
            raise Decline
        np.lib.format.write_array(sink, v, allow_pickle=False)

    def load(src: Source) -> Any:
        buf = memoryview(src.data).cast("B")
        head = io.BytesIO(bytes(buf[:65536]))
        version = np.lib.format.read_magic(head)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(head)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(head)
        else:
            return np.lib.format.read_array(io.BytesIO(bytes(buf)), allow_pickle=False)
        count = math.prod(shape)
        flat = np.frombuffer(buf, dtype=dtype, count=count, offset=head.tell())
        return flat.reshape(shape, order="F" if fortran else "C").copy(order="K")

    register(Serializer("npy", dump, load), np.ndarray)


def _register_arrow() -> None:
    import pyarrow as pa

    def dump(v: Any, sink: IO[bytes]) -> None:
        with pa.ipc.new_stream(sink, v.schema) as writer:
            writer.write_table(v)

    def load(src: Source) -> Any:
        return pa.ipc.open_stream(pa.py_buffer(src.data)).read_all()

    register(Serializer("arrow", dump, load), pa.Table)


def _register_pandas() -> None:
    import pandas as pd
    import pyarrow as pa

    def dump(v: Any, sink: IO[bytes]) -> None:
        if isinstance(v.columns, pd.MultiIndex) or not all(type(c) is str for c in v.columns):
            raise Decline
        if v.columns.has_duplicates:
            raise Decline
        try:
            table = pa.Table.from_pandas(v)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            log.debug("pandas frame not storable as Arrow (%s); using pickle", exc)
            raise Decline from exc
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)

    def load(src: Source) -> Any:
        return pa.ipc.open_stream(pa.py_buffer(src.data)).read_all().to_pandas()

    register(Serializer("pandas", dump, load), pd.DataFrame)


# top-level package of a value's type -> registers its serializers; imported only when seen.
_LAZY_MODULES: dict[str, Callable[[], None]] = {
    "numpy": _register_numpy,
    "pyarrow": _register_arrow,
    "pandas": _register_pandas,
}
_LAZY_FORMATS: dict[str, str] = {"npy": "numpy", "arrow": "pyarrow", "pandas": "pandas"}


def _lazy(package: str) -> None:
    fn = _LAZY_MODULES.pop(package, None)
    if fn is not None:
        fn()


# -- json ------------------------------------------------------------------------------------

_class_refs: dict[type, str | None] = {}


def _class_ref(t: type) -> str:
    ref = _class_refs.get(t, "")
    if ref == "":
        ref = None
        module, qualname = t.__module__, t.__qualname__
        if module != "__main__" and "<locals>" not in qualname:
            try:
                if _resolve(f"{module}:{qualname}") is t:
                    ref = f"{module}:{qualname}"
            except Exception:
                ref = None
        _class_refs[t] = ref
    if ref is None:
        raise Decline
    return ref


def _resolve(ref: str) -> Any:
    module, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _enc(v: Any) -> Any:
    t = type(v)
    if v is None or t is str or t is bool or t is int:
        return v
    if t is float:
        return v if math.isfinite(v) else {"$float": repr(v)}
    if t is list:
        return [_enc(x) for x in v]
    if t is dict:
        if all(type(k) is str and not k.startswith("$") for k in v):
            return {k: _enc(x) for k, x in v.items()}
        pairs = [[_enc(k), _enc(x)] for k, x in v.items()]
        pairs.sort(key=lambda kv: canonical_json(kv[0]))
        return {"$dict": pairs}
    if t is tuple:
        return {"$tuple": [_enc(x) for x in v]}
    if t is set or t is frozenset:
        return {"$" + t.__name__: sorted((_enc(x) for x in v), key=canonical_json)}
    if t is bytes:
        return {"$bytes": base64.b64encode(v).decode("ascii")}
    if isinstance(v, enum.Enum):
        return {"$enum": _class_ref(t), "name": v.name}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        ref = _class_ref(t)
        return {
            "$dc": ref,
            "fields": {f.name: _enc(getattr(v, f.name)) for f in dataclasses.fields(v)},
        }
    if isinstance(v, tuple) and hasattr(t, "_fields"):
        return {"$nt": _class_ref(t), "items": [_enc(x) for x in v]}
    raise Decline


def _dec(v: Any) -> Any:
    t = type(v)
    if t is list:
        return [_dec(x) for x in v]
    if t is not dict:
        return v
    for k in v:
        if k.startswith("$"):
            return _dec_tagged(k, v)
        break
    return {k: _dec(x) for k, x in v.items()}


def _dec_tagged(tag: str, v: dict[str, Any]) -> Any:
    if tag == "$tuple":
        return tuple(_dec(x) for x in v[tag])
    if tag == "$dict":
        return {_dec(k): _dec(x) for k, x in v[tag]}
    if tag == "$set":
        return {_dec(x) for x in v[tag]}
    if tag == "$frozenset":
        return frozenset(_dec(x) for x in v[tag])
    if tag == "$bytes":
        return base64.b64decode(v[tag])
    if tag == "$float":
        return float(v[tag])
    if tag == "$enum":
        return _resolve(v[tag])[v["name"]]
    if tag == "$nt":
        return _resolve(v[tag])(*(_dec(x) for x in v["items"]))
    if tag == "$dc":
        cls = _resolve(v[tag])
        obj = object.__new__(cls)
        for name, x in v["fields"].items():
            object.__setattr__(obj, name, _dec(x))  # like pickle: no __init__, frozen is fine
        return obj
    raise ValueError(f"unknown JSON tag {tag!r}")


def _json_dump(v: Any, sink: IO[bytes]) -> None:
    try:
        data = canonical_json(_enc(v))
    except (ValueError, RecursionError, TypeError) as exc:
        raise Decline from exc
    sink.write(data)


def _json_load(src: Source) -> Any:
    data = src.data if isinstance(src.data, bytes) else bytes(src.data)
    # canonical JSON is UTF-8: decoding it here skips json's encoding detection
    return _dec(json.loads(data.decode("utf-8")))


def scalar_json_bytes(value: Any) -> bytes | None:
    """What :func:`dump` writes for a ``None``/``bool``/``int``/finite ``float``/``str``, fast.

    None when the value is anything else, when its type has a registered serializer, or when
    the generic path must decide (an int too long for ``repr``, a lone surrogate): the caller
    then uses :func:`dump`. The bytes are the ``json`` format's, exactly (cache keys of
    literal inputs use them, so this must never differ from ``dump``).
    """
    t = type(value)
    if t in _by_type:
        return None
    try:
        if t is int:
            return int.__repr__(value).encode("ascii")  # what the JSON encoder writes
        if t is str:
            return canonical_json(value)
        if t is float:
            return float.__repr__(value).encode("ascii") if math.isfinite(value) else None
        if t is bool:
            return b"true" if value else b"false"
        if value is None:
            return b"null"
    except ValueError:
        return None
    return None


# -- pickle ------------------------------------------------------------------------------------


def _libs_of(v: Any) -> dict[str, str]:
    top = type(v).__module__.partition(".")[0]
    mod = sys.modules.get(top)
    version = getattr(mod, "__version__", None)
    return {top: version} if isinstance(version, str) and top != "builtins" else {}


def _pickle_dump(v: Any, sink: IO[bytes]) -> None:
    header = {"cloudpickle": cloudpickle.__version__, "libs": _libs_of(v), "python": PYTHON_VERSION}
    sink.write(canonical_json(header) + b"\n")
    with files.storing():
        cloudpickle.dump(v, sink, protocol=5)


def _pickle_load(src: Source) -> Any:
    buf = memoryview(src.data).cast("B")
    head = bytes(buf[:4096])
    nl = head.find(b"\n")
    try:
        header = json.loads(head[:nl]) if nl > 0 else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or "python" not in header:
        raise SerializationError("not a flowkit pickle (missing header)")
    if header["python"] != PYTHON_VERSION:
        raise PickleVersionError(
            f"it was pickled by Python {header['python']} and this is Python {PYTHON_VERSION}; "
            "pickles do not load across Python versions. Recompute it under this Python "
            "(run with cache='refresh'), or return a type with a portable format "
            "(JSON-able values, dataclasses, numpy, pyarrow, pandas)"
        )
    for lib, version in header.get("libs", {}).items():
        mod = sys.modules.get(lib)
        now = getattr(mod, "__version__", None)
        if now is not None and now != version:
            log.warning("loading a pickle made with %s %s under %s %s", lib, version, lib, now)
    return pickle.loads(buf[nl + 1 :])


def _file_load(kind: type[files.File] | type[files.Directory]) -> Callable[[Source], Any]:
    def load(src: Source) -> Any:
        scratch = src.scratch
        if scratch is None:  # not loaded through a store: key the folder by content
            scratch = os.path.join(
                files.default_unpack_root(), hashlib.sha256(src.data).hexdigest()
            )
        source: str | IO[bytes] = src.path if src.path else io.BytesIO(bytes(src.data))
        return files.unpack(source, scratch, kind)

    return load


JSON = Serializer("json", _json_dump, _json_load)
PICKLE = Serializer("pickle", _pickle_dump, _pickle_load, stable=False)
register(JSON)
register(PICKLE)
register(Serializer("file", files.pack, _file_load(files.File)), files.File)
register(Serializer("dir", files.pack, _file_load(files.Directory)), files.Directory)


# -- API -------------------------------------------------------------------------------------


def _candidates(value: Any) -> list[Serializer]:
    t = type(value)
    s = _by_type.get(t)
    if s is None and _LAZY_MODULES:
        _lazy(t.__module__.partition(".")[0])
        s = _by_type.get(t)
    return [s, JSON, PICKLE] if s is not None else [JSON, PICKLE]


def dump(value: Any, sink: IO[bytes], *, what: str = "value") -> str:
    """Write ``value`` to ``sink``; return the format name. Raises SerializationError."""
    for s in _candidates(value):
        try:
            s.dump(value, sink)
        except Decline:
            continue
        except SerializationError as exc:
            raise SerializationError(f"cannot store {what}: {exc}") from exc
        except Exception as exc:
            raise SerializationError(
                f"cannot store {what}: a {_type_name(value)} could not be serialised as "
                f"{s.name} ({type(exc).__name__}: {exc}). Return a picklable value (no locks, "
                "sockets or open handles), or leave this task uncached."
            ) from exc
        return s.name
    raise SerializationError(f"cannot store {what}: no serializer accepts a {_type_name(value)}")


def serializer(format: str) -> Serializer:
    """The serializer registered under ``format`` (lazily registering numpy/pyarrow/pandas)."""
    s = _by_name.get(format)
    if s is None and format in _LAZY_FORMATS:
        _lazy(_LAZY_FORMATS[format])
        s = _by_name.get(format)
    if s is None:
        raise SerializationError(
            f"unknown format {format!r}: written by a newer flowkit or by a serializer that is "
            "not registered in this process"
        )
    return s


def load(
    format: str,
    data: Buffer,
    *,
    path: str | None = None,
    scratch: str | None = None,
    what: str = "value",
) -> Any:
    """Rebuild a value from bytes written by :func:`dump` in ``format``."""
    s = serializer(format)
    try:
        return s.load(Source(data, path, scratch))
    except PickleVersionError as exc:
        raise PickleVersionError(f"cannot load {what}: {exc}") from exc
    except SerializationError as exc:
        raise SerializationError(f"cannot load {what}: {exc}") from exc
    except Exception as exc:
        raise SerializationError(
            f"cannot load {what} (format {format}): {type(exc).__name__}: {exc}"
        ) from exc


def is_stable(format: str) -> bool:
    """True if equal values always serialise to identical bytes in ``format``."""
    return serializer(format).stable


def _type_name(value: Any) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


__all__ = [
    "JSON",
    "PICKLE",
    "Decline",
    "PickleVersionError",
    "Serializer",
    "Source",
    "dump",
    "is_stable",
    "load",
    "register",
    "scalar_json_bytes",
    "serializer",
]

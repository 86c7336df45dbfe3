"""Serialisers: values to bytes and back, chosen by the value's type.

``dump(value, sink, what=...) -> format`` writes the value to a binary sink and returns the
name of the format it used; ``load(format, data, ...) -> value`` reads it back. Formats:

``json``
    ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``list``, ``tuple``, ``dict``,
    ``set``/``frozenset`` and, by class reference, dataclass instances, NamedTuples and Enum
    members of module-level classes (``__main__`` included) — nested freely. Canonical bytes
    (no spaces, UTF-8, dicts in insertion order, sets sorted): identical values give identical
    bytes in every process, values that differ (in type or dict order too) give different
    bytes, and types round-trip. Decoding is data only: it builds only classes the reader
    trusts (its ``expected`` type, :func:`allow_class`, classes it encoded) and runs none of
    their code. See :mod:`flowkit.jsonformat` and :mod:`flowkit.classes`.
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
    Pickle bytes are not guaranteed stable (:func:`is_stable` is False): callers that derive
    cache keys from them check them twice, and :func:`dump_checked` reports a set or frozenset
    whose order depends on the hash seed (different bytes in another process).
    A pickle that names the running script's module (``flow:Cls`` written under
    ``flowkit run flow.py``) loads it from ``__main__`` when the script runs as ``python flow.py``.

``refs``: given a set, :func:`dump` and :func:`load` add to it every class and function the
value's bytes name (not builtins), so callers can fingerprint their code.

Choosing: an exact-type table first (numpy, pyarrow and pandas entries are registered lazily,
the first time a value whose type lives in that package is seen — this module never imports
them), then ``json``, then ``pickle``. A serialiser may *decline* a value before writing
anything, passing it on. Register your own with :func:`register`.

Errors: an unstorable value raises :class:`~flowkit.errors.SerializationError` whose message
starts with ``what`` (e.g. ``"task `train` output 0"``) so the user sees which value failed.
A :class:`flowkit.secret.Secret`, alone or anywhere inside a value, is never written: every
dump runs under :func:`flowkit.secret.storing`, so pickling one raises
:class:`~flowkit.secret.SecretStorageError` (a ``SerializationError``), while pickling it
for transport (a Ray worker) still works.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, cast

from flowkit import files, jsonformat, pickleformat, secret
from flowkit.classes import UntrustedClassError, allow_annotation, allow_class
from flowkit.errors import SerializationError
from flowkit.pickleformat import PYTHON_VERSION, PickleVersionError

log = logging.getLogger(__name__)

Buffer = bytes | bytearray | memoryview | Any  # anything with the buffer protocol (mmap too)


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


def _json_dump(v: Any, sink: IO[bytes]) -> None:
    data = jsonformat.encode(v)
    if data is None:
        raise Decline
    sink.write(data)


def _json_load(src: Source) -> Any:
    return jsonformat.decode(src.data)


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
            return jsonformat.str_bytes(value)
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


def _pickle_dump(v: Any, sink: IO[bytes]) -> None:
    with files.storing():
        pickleformat.dump(v, sink)


def _pickle_load(src: Source) -> Any:
    return pickleformat.load(src.data)


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


def dump(value: Any, sink: IO[bytes], *, what: str = "value", refs: set[Any] | None = None) -> str:
    """Write ``value`` to ``sink``; return the format name. Raises SerializationError.

    ``refs``, when given, receives every class and function the bytes name (see the module
    docstring).
    """
    return _dump(value, sink, what, refs, check=False)[0]


def dump_checked(
    value: Any, sink: IO[bytes], *, what: str = "value", refs: set[Any] | None = None
) -> tuple[str, str | None]:
    """Like :func:`dump`, and say whether another process would write other bytes.

    Returns ``(format, unstable)``: ``unstable`` is None, or why the bytes depend on the
    process (a pickled set of strings, whose order follows the hash seed; a format declared
    unstable). A pickle without such a set can still differ between two dumps of one value (a
    counter, a clock): compare two dumps to catch that.
    """
    return _dump(value, sink, what, refs, check=True)


def pickle_is_portable(value: Any) -> bool:
    """False if ``value`` pickles with a set whose order depends on the hash seed (so another
    process writes other bytes); True for every value stored in a stable format."""
    return dump_checked(value, cast(IO[bytes], _Discard()))[1] is None


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


def _dump(
    value: Any, sink: IO[bytes], what: str, refs: set[Any] | None, check: bool
) -> tuple[str, str | None]:
    # every serialiser runs with secrets refusing to pickle (a custom one may pickle too);
    # the context variable directly: a context manager would cost a microsecond per dump
    token = secret.STORING.set(True)
    try:
        return _dump_refusing_secrets(value, sink, what, refs, check)
    finally:
        secret.STORING.reset(token)


def _dump_refusing_secrets(
    value: Any, sink: IO[bytes], what: str, refs: set[Any] | None, check: bool
) -> tuple[str, str | None]:
    for s in _candidates(value):
        unstable = None
        try:
            if s is JSON:
                data = jsonformat.encode(value, refs)
                if data is None:
                    continue
                sink.write(data)
            elif s is PICKLE and (refs is not None or check):
                with files.storing():
                    unstable = pickleformat.dump(value, sink, refs, check=check)
            else:
                s.dump(value, sink)
                if check and not s.stable and s is not PICKLE:
                    unstable = f"the {s.name} format does not promise identical bytes"
        except Decline:
            continue
        except secret.SecretStorageError as exc:
            raise secret.SecretStorageError(f"cannot store {what}: {exc}") from None
        except SerializationError as exc:
            raise SerializationError(f"cannot store {what}: {exc}") from exc
        except Exception as exc:
            raise SerializationError(
                f"cannot store {what}: a {_type_name(value)} could not be serialised as "
                f"{s.name} ({type(exc).__name__}: {exc}). Return a picklable value (no locks, "
                "sockets or open handles), or leave this task uncached."
            ) from exc
        return s.name, unstable
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
    expected: Any = Any,
    refs: set[Any] | None = None,
) -> Any:
    """Rebuild a value from bytes written by :func:`dump` in ``format``.

    ``expected`` is the type the reader wants (a task's return or parameter type): the ``json``
    format builds the dataclasses, NamedTuples and Enums it names (and those trusted otherwise,
    see :mod:`flowkit.classes`). ``refs``, when given, receives every class and function the
    bytes name. A value naming an untrusted class raises :class:`UntrustedClassError`.
    """
    s = serializer(format)
    try:
        if s is JSON:
            return jsonformat.decode(data, expected, refs)
        if s is PICKLE and refs is not None:
            return pickleformat.load(data, refs)
        return s.load(Source(data, path, scratch))
    except (PickleVersionError, UntrustedClassError) as exc:
        raise type(exc)(f"cannot load {what}: {exc}") from exc
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
    "PYTHON_VERSION",
    "Decline",
    "PickleVersionError",
    "Serializer",
    "Source",
    "UntrustedClassError",
    "allow_annotation",
    "allow_class",
    "dump",
    "dump_checked",
    "is_stable",
    "load",
    "pickle_is_portable",
    "register",
    "scalar_json_bytes",
    "serializer",
]

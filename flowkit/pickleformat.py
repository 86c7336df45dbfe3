"""The ``pickle`` value format: cloudpickle after a one-line JSON header.

The header records the Python ``major.minor``, the cloudpickle version and the version of the
value's top-level package; a pickle from another Python minor version is refused
(:class:`PickleVersionError`). Beyond plain cloudpickle:

* ``refs``: :func:`dump` and :func:`load` can record every class and function the bytes name
  (and the class of every pickled instance), builtins left out, so callers can fingerprint
  that code;
* ``check``: :func:`dump` can report a set or frozenset whose iteration order depends on the
  hash seed (strings, bytes, objects hashed by identity): such a pickle has other bytes in
  another process;
* a pickle naming the running script's module (``flow:Cls``, written while ``flowkit run
  flow.py`` imported the script as ``flow``) loads ``Cls`` from ``__main__`` when the script
  runs as ``python flow.py``, instead of importing the script a second time.

``__main__`` functions and classes are still pickled by value (cloudpickle's rule; Ray
workers need it). Loading a pickle runs code: only load stores you trust.
"""

from __future__ import annotations

import io
import json
import logging
import math
import pickle
import sys
import types
from typing import IO, Any

import cloudpickle

from flowkit import naming
from flowkit.errors import SerializationError
from flowkit.hashing import canonical_json

log = logging.getLogger(__name__)

PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


class PickleVersionError(SerializationError):
    """A pickle was written by a Python minor version other than this one."""


def _libs_of(v: Any) -> dict[str, str]:
    top = type(v).__module__.partition(".")[0]
    mod = sys.modules.get(top)
    version = getattr(mod, "__version__", None)
    return {top: version} if isinstance(version, str) and top != "builtins" else {}


def _is_code(obj: Any) -> bool:
    """A class or function that is not a builtin: what ``refs`` collects."""
    if not isinstance(obj, (type, types.FunctionType)):
        return False
    return getattr(obj, "__module__", None) != "builtins"


class _RefsPickler(cloudpickle.Pickler):  # type: ignore[misc]
    """Records every class and function it pickles, and the class of every instance."""

    def __init__(self, file: IO[bytes], refs: set[Any] | None) -> None:
        super().__init__(file, protocol=5)
        self.refs = refs if refs is not None else set()
        self.unstable: str | None = None

    def reducer_override(self, obj: Any) -> Any:
        code = obj if isinstance(obj, (type, types.FunctionType)) else type(obj)
        if _is_code(code):
            self.refs.add(code)
        return super().reducer_override(obj)


class _CheckedPickler(_RefsPickler):
    """Also notes a set whose order (so its bytes) depends on the hash seed.

    ``persistent_id`` sees every object, exact sets included (``reducer_override`` does not),
    and set subclasses, which pickle as lists in the set's order.
    """

    def persistent_id(self, obj: Any) -> None:
        if isinstance(obj, (set, frozenset)) and self.unstable is None:
            self.unstable = _seeded_order(obj)
        return None


# exact element types whose hash does not depend on the hash seed or on object identity
_SEEDLESS = (int, bool, type(None))


def _seeded_order(s: set[Any] | frozenset[Any]) -> str | None:
    """Why the iteration order of ``s`` may differ in another process, or None."""
    for x in s:
        t = type(x)
        if t in _SEEDLESS or (t is float and not math.isnan(x)):
            continue
        return (
            f"it holds a {type(s).__name__} of {t.__qualname__}, whose order changes with "
            "the hash seed, so it pickles to different bytes in another process"
        )
    return None


def _header(v: Any) -> bytes:
    header = {"cloudpickle": cloudpickle.__version__, "libs": _libs_of(v), "python": PYTHON_VERSION}
    return canonical_json(header) + b"\n"


def dump(
    v: Any, sink: IO[bytes], refs: set[Any] | None = None, *, check: bool = False
) -> str | None:
    """Write the header and the pickle of ``v``; with ``check``, return why its bytes would
    differ in another process (None if nothing was found). ``refs`` receives what it names."""
    sink.write(_header(v))
    if refs is None and not check:
        cloudpickle.dump(v, sink, protocol=5)
        return None
    pickler = (_CheckedPickler if check else _RefsPickler)(sink, refs)
    pickler.dump(v)
    return pickler.unstable


class _Unpickler(pickle.Unpickler):
    """Finds the running script's classes in ``__main__`` and records what it finds."""

    def __init__(self, file: IO[bytes], refs: set[Any] | None) -> None:
        super().__init__(file)
        self.refs = refs

    def find_class(self, module: str, name: str) -> Any:
        obj = None
        if module != naming.MAIN and module == naming.main_module_name():
            obj = sys.modules.get(naming.MAIN)
            for part in name.split("."):
                obj = getattr(obj, part, None)
        if obj is None:
            obj = super().find_class(module, name)
        if self.refs is not None and _is_code(obj):
            self.refs.add(obj)
        return obj


def load(data: Any, refs: set[Any] | None = None) -> Any:
    """Rebuild a value from :func:`dump`'s bytes (anything with the buffer protocol)."""
    buf = memoryview(data).cast("B")
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
    body = buf[nl + 1 :]
    if refs is None and naming.main_module_name() == naming.MAIN:
        return pickle.loads(body)  # nothing to map or record: the C fast path
    return _Unpickler(io.BytesIO(body), refs).load()


__all__ = ["PYTHON_VERSION", "PickleVersionError", "dump", "load"]

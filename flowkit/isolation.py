"""Private inputs: a task receives values that no other task can change.

On in-process backends (``local``, ``threads``) a handle *is* the value, so every consumer of
one output gets the same object. A task that changes its input in place (``xs.append(1000)``)
would then change what its siblings see, while their cache keys were computed from the
unchanged value, and the cache would store a wrong result under a right key (issue 9, item 5).
:func:`private` gives each consumer a value equal to the original that nobody else holds:

* immutable values are returned as they are (no cost beyond a type check): ``None``, ``bool``,
  ``int``, ``float``, ``complex``, ``str``, ``bytes``, ``range``, dates and times, ``Decimal``,
  ``Fraction``, ``UUID``, Enum members, functions and classes, numpy and pandas scalars, pyarrow
  tables/arrays/record batches/scalars, ``fk.File``/``fk.Directory`` (the store makes their
  copies read-only), and tuples, frozensets, NamedTuples and frozen dataclasses whose items are
  all immutable (checked recursively);
* numpy arrays become read-only views (no copy): writing to one raises ``ValueError:
  assignment destination is read-only``, so a task that changes an array in place must copy it;
* pandas DataFrames and Series are deep copies (pandas' copy-on-write still lets a shallow copy
  write through ``.array``), with mutable cells of object columns copied too;
* lists, dicts and sets are rebuilt item by item (so an array inside a list is still a view, and
  a value held twice is copied once: aliasing is kept); anything else goes through
  :func:`copy.deepcopy`, sharing the same memo.

A value that cannot be copied (``deepcopy`` raises: a lock, a generator) stays shared:
:func:`isolate` returns it with the reason, and :func:`private` logs one warning per type.

numpy, pandas and pyarrow are never imported here: a type is recognised by its module name and
classified once (the classification is memoised per type).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import decimal
import enum
import fractions
import logging
import sys
import types
import uuid
from collections.abc import Callable
from typing import Any

from flowkit.files import Directory, File

log = logging.getLogger(__name__)

# Types whose values cannot change. The set only grows, by whole types (Enum classes, pyarrow
# and numpy scalar types, ...) learnt on first sight, so ``type(v) in IMMUTABLE`` is the whole
# fast path; callers on a hot path may test it themselves before calling :func:`private`.
IMMUTABLE: set[type] = {
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    range,
    type(Ellipsis),
    type(NotImplemented),
    datetime.date,
    datetime.datetime,
    datetime.time,
    datetime.timedelta,
    datetime.timezone,
    decimal.Decimal,
    fractions.Fraction,
    uuid.UUID,
    # shared by copy.deepcopy too (it returns them as they are)
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.CodeType,
    types.ModuleType,
    property,
    File,
    Directory,
}
_IMMUTABLE_BASE = len(IMMUTABLE)
_MEMO_LIMIT = 4096  # learnt types kept at most (dynamically created classes must not leak)

# How a type is made private; one per type, memoised in _KINDS.
_ATOMIC = 0  # immutable: return as is
_TUPLE = 1  # tuple or NamedTuple without __dict__: as is when every item is immutable
_FROZENSET = 2
_FROZEN_DC = 3  # frozen dataclass: as is when every field is immutable
_LIST = 4
_DICT = 5
_SET = 6
_NDARRAY = 7  # numpy.ndarray without Python objects inside: read-only view
_PANDAS = 8  # DataFrame / Series: deep copy
_DEEPCOPY = 9

_KINDS: dict[type, int] = {
    tuple: _TUPLE,
    frozenset: _FROZENSET,
    list: _LIST,
    dict: _DICT,
    set: _SET,
}
_KINDS_BASE = len(_KINDS)
_DC_FIELDS: dict[type, tuple[str, ...]] = {}  # frozen dataclass -> its field names
_MAX_DEPTH = 200  # deeper immutable-looking nesting is copied instead of checked
_warned: set[type] = set()


class _Uncopyable(Exception):
    """``copy.deepcopy`` failed for a value; carries the reason."""


def private(value: Any) -> Any:
    """A value equal to ``value`` that no other task can change (see the module docstring).

    Immutable values come back as they are. A value that cannot be copied comes back as it is
    too, with a warning logged once per type (use :func:`isolate` to learn that per value).
    """
    if type(value) in IMMUTABLE:
        return value
    out, reason = isolate(value)
    if reason is not None and type(value) not in _warned:
        _warned.add(type(value))
        log.warning(
            "a value of type %s cannot be copied (%s), so the tasks that receive it share one "
            "object and a task that changes it in place changes it for the others; give the "
            "class a __deepcopy__, or pass an immutable value",
            _type_name(type(value)),
            reason,
        )
    return out


def isolate(value: Any) -> tuple[Any, str | None]:
    """``(private copy, None)``, or ``(value itself, why it could not be copied)``."""
    t = type(value)
    if t in IMMUTABLE:
        return value, None
    kind = _KINDS.get(t)
    if kind is None:
        kind = _classify(t)
    if kind in (_TUPLE, _FROZENSET, _FROZEN_DC) and _frozen(value, 0):
        return value, None
    try:
        return _copy(value, {}), None
    except _Uncopyable as e:
        return value, str(e)


def is_immutable(value: Any) -> bool:
    """True when :func:`private` returns ``value`` itself because nothing can change it."""
    return _frozen(value, 0)


# -- classification ----------------------------------------------------------------------------


def _classify(t: type) -> int:
    """The kind of ``t`` (memoised; immutable types join :data:`IMMUTABLE`)."""
    kind = _kind_of(t)
    if kind == _ATOMIC:
        if len(IMMUTABLE) - _IMMUTABLE_BASE < _MEMO_LIMIT:
            IMMUTABLE.add(t)
    elif len(_KINDS) - _KINDS_BASE < _MEMO_LIMIT:
        _KINDS[t] = kind
    return kind


def _kind_of(t: type) -> int:
    if issubclass(t, enum.Enum):
        return _ATOMIC  # members are singletons: deepcopy returns them as they are too
    top = t.__module__.partition(".")[0]
    lib = _LIBRARY_KINDS.get(top)
    if lib is not None:
        kind = lib(t)
        if kind is not None:
            return kind
    if issubclass(t, tuple) and not t.__dictoffset__:
        return _TUPLE  # NamedTuples (no per-instance attributes to change)
    params = getattr(t, "__dataclass_params__", None)
    if params is not None and params.frozen and dataclasses.is_dataclass(t):
        return _FROZEN_DC
    return _DEEPCOPY


def _numpy_kind(t: type) -> int | None:
    np = sys.modules["numpy"]
    if t is np.ndarray:
        return _NDARRAY
    if issubclass(t, np.generic) and not issubclass(t, np.void):
        return _ATOMIC  # numpy scalars (a structured np.void may view an array's memory)
    if issubclass(t, np.dtype):
        return _ATOMIC
    return None  # subclasses (matrix, masked arrays, memmap): deepcopy


def _pandas_kind(t: type) -> int | None:
    pd = sys.modules["pandas"]
    if issubclass(t, (pd.DataFrame, pd.Series)):
        return _PANDAS
    if issubclass(t, (pd.Timestamp, pd.Timedelta, pd.Period, pd.Interval)):
        return _ATOMIC
    return None


def _arrow_kind(t: type) -> int | None:
    pa = sys.modules["pyarrow"]
    immutable = (
        pa.Table,
        pa.RecordBatch,
        pa.Array,
        pa.ChunkedArray,
        pa.Scalar,
        pa.Schema,
        pa.Field,
        pa.DataType,
    )
    return _ATOMIC if issubclass(t, immutable) else None


# A type's top-level package -> its classifier. The package is in sys.modules whenever one
# of its values exists, so looking it up there imports nothing.
_LIBRARY_KINDS = {"numpy": _numpy_kind, "pandas": _pandas_kind, "pyarrow": _arrow_kind}


# -- immutability check ------------------------------------------------------------------------


def _frozen(value: Any, depth: int) -> bool:
    """True when nothing reachable from ``value`` can be changed (by ordinary means)."""
    t = type(value)
    if t in IMMUTABLE:
        return True
    if depth > _MAX_DEPTH:
        return False
    kind = _KINDS.get(t)
    if kind is None:
        kind = _classify(t)
        if kind == _ATOMIC:
            return True
    depth += 1
    if kind == _TUPLE or kind == _FROZENSET:
        for item in value:
            if type(item) not in IMMUTABLE and not _frozen(item, depth):
                return False
        return True
    if kind == _FROZEN_DC:
        return _frozen_fields(value, t, depth)
    return False


def _frozen_fields(value: Any, t: type, depth: int) -> bool:
    state = getattr(value, "__dict__", None)
    if state is not None:  # fields, and attributes set in __post_init__ (state too)
        return all(type(v) in IMMUTABLE or _frozen(v, depth) for v in state.values())
    names = _DC_FIELDS.get(t)  # slots=True
    if names is None:
        names = _DC_FIELDS[t] = tuple(f.name for f in dataclasses.fields(t))
    return all(_frozen(getattr(value, n, None), depth) for n in names)


# -- copying -----------------------------------------------------------------------------------


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    """A private copy of ``value``; ``memo`` (shared with copy.deepcopy) keeps aliasing."""
    t = type(value)
    if t in IMMUTABLE:
        return value
    found = memo.get(id(value), memo)
    if found is not memo:
        return found
    kind = _KINDS.get(t)
    if kind is None:
        kind = _classify(t)
    copier = _COPIERS.get(kind)
    if copier is not None:
        return copier(value, memo)
    return _copy_unless_frozen(value, t, kind, memo)


def _copy_list(value: Any, memo: dict[int, Any]) -> Any:
    out: list[Any] = []
    memo[id(value)] = out
    out.extend([x if type(x) in IMMUTABLE else _copy(x, memo) for x in value])
    return out


def _copy_dict(value: Any, memo: dict[int, Any]) -> Any:
    out: dict[Any, Any] = {}
    memo[id(value)] = out
    for k, v in value.items():
        if type(k) not in IMMUTABLE:
            k = _copy(k, memo)
        out[k] = v if type(v) in IMMUTABLE else _copy(v, memo)
    return out


def _copy_set(value: Any, memo: dict[int, Any]) -> Any:
    out: set[Any] = set()
    memo[id(value)] = out
    out.update([x if type(x) in IMMUTABLE else _copy(x, memo) for x in value])
    return out


def _copy_unless_frozen(value: Any, t: type, kind: int, memo: dict[int, Any]) -> Any:
    """Tuples, frozensets, frozen dataclasses and atoms are shared when nothing reachable from
    them can change; anything else is deep-copied."""
    if kind == _TUPLE and t is tuple:
        return _copy_tuple(value, memo)
    if kind == _FROZENSET and t is frozenset:
        return value if _frozen(value, 0) else frozenset([_copy(x, memo) for x in value])
    if kind == _ATOMIC or (kind in (_TUPLE, _FROZENSET, _FROZEN_DC) and _frozen(value, 0)):
        return value
    return _deepcopy(value, memo)


def _copy_tuple(value: tuple[Any, ...], memo: dict[int, Any]) -> Any:
    if _frozen(value, 0):
        return value
    items = [_copy(item, memo) for item in value]
    # a cycle through a mutable item may have copied this tuple already (as deepcopy does)
    found = memo.get(id(value), memo)
    if found is not memo:
        return found
    out = tuple(items)
    memo[id(value)] = out
    return out


def _deepcopy(value: Any, memo: dict[int, Any]) -> Any:
    try:
        return copy.deepcopy(value, memo)
    except _Uncopyable:
        raise
    except Exception as e:  # any user __deepcopy__ / __reduce__ may fail
        raise _Uncopyable(f"copy.deepcopy raised {type(e).__name__}: {e}") from e


def _readonly_view(a: Any, memo: dict[int, Any]) -> Any:
    if a.dtype.hasobject:
        return _deepcopy(a, memo)  # a view would still share the Python objects inside
    view = a.view()
    view.flags.writeable = False
    memo[id(a)] = view
    return view


def _pandas_copy(value: Any, memo: dict[int, Any]) -> Any:
    """A deep copy; pandas does not copy the Python objects in object columns, so copy
    their mutable cells here."""
    out = value.copy(deep=True)
    memo[id(value)] = out
    if value.ndim == 1:
        if getattr(value.dtype, "hasobject", False):
            cells = _private_cells(value, memo)
            if cells is not None:
                out[:] = cells
        return out
    for i, dtype in enumerate(value.dtypes):
        if getattr(dtype, "hasobject", False):  # numpy object columns (not strings)
            cells = _private_cells(value.iloc[:, i], memo)
            if cells is not None:
                out.isetitem(i, cells)
    return out


def _private_cells(column: Any, memo: dict[int, Any]) -> Any:
    """An object array of private copies of ``column``'s cells, or None if all are immutable."""
    values = column.to_numpy()
    if all(type(x) in IMMUTABLE or _frozen(x, 0) for x in values):
        return None
    out = sys.modules["numpy"].empty(len(values), dtype=object)
    for i, x in enumerate(values):
        out[i] = _copy(x, memo)  # item by item: a list cell must not broadcast
    return out


# Kinds copied by a function of their own (the rest: _copy_unless_frozen).
_COPIERS: dict[int, Callable[[Any, dict[int, Any]], Any]] = {
    _LIST: _copy_list,
    _DICT: _copy_dict,
    _SET: _copy_set,
    _NDARRAY: _readonly_view,
    _PANDAS: _pandas_copy,
}


def _type_name(t: type) -> str:
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


__all__ = ["IMMUTABLE", "is_immutable", "isolate", "private"]

"""Properties of the value formats, on generated values (hypothesis, derandomized).

An *identity* oracle (:func:`ident`) says when two values are the same value: same type at
every level, dicts in the same order, floats by ``repr`` (so ``-0.0`` is not ``0.0`` and NaN is
NaN), dataclasses with the same attributes in the same order, arrays with the same dtype,
shape and bytes. The properties (issue 9, "Done when"):

* identical values <=> identical ``dump`` bytes (so identical digests);
* ``load(dump(v))`` is identical to ``v``, type included;
* values that Python calls equal but that are not identical (``1``/``True``/``1.0``,
  ``(1,)``/``[1]``, a dict and its reverse) get different bytes.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import io
import math
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from flowkit import serialize

SETTINGS = settings(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=250,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- module-level classes the values may hold ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FPoint:
    x: Any
    y: Any


@dataclasses.dataclass
class Box:
    items: Any
    label: Any = None

    def __post_init__(self) -> None:
        self.kind = type(self.items).__name__  # an attribute that is not a field


@dataclasses.dataclass(slots=True)
class Slotted:
    a: Any
    b: Any


class Pair(NamedTuple):
    a: Any
    b: Any


class Color(enum.Enum):
    RED = 1
    GREEN = "g"
    BLUE = (1, 2)


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


# -- the identity oracle -----------------------------------------------------------------------


def _attrs(o: Any) -> list[tuple[str, Any]]:
    items = list(getattr(o, "__dict__", {}).items())
    for k in type(o).__mro__:
        for name in vars(k).get("__slots__", ()):
            if hasattr(o, name):
                items.append((name, getattr(o, name)))
    return items


def _same_multiset(a: list[Any], b: list[Any]) -> bool:
    rest = list(b)
    for x in a:
        for i, y in enumerate(rest):
            if ident(x, y):
                del rest[i]
                break
        else:
            return False
    return not rest


def ident(a: Any, b: Any) -> bool:
    """True if ``a`` and ``b`` are the same value in every respect a reader can observe."""
    t = type(a)
    if t is not type(b):
        return False
    if t is float:
        return repr(a) == repr(b)
    if isinstance(a, enum.Enum):
        return a is b
    if t is list or isinstance(a, tuple):
        return len(a) == len(b) and all(map(ident, a, b)) and _attrs(a) == _attrs(b) == []
    if t is dict:
        return len(a) == len(b) and all(
            ident(ka, kb) and ident(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if t is set or t is frozenset:
        return _same_multiset(list(a), list(b))
    if dataclasses.is_dataclass(a):
        x, y = _attrs(a), _attrs(b)
        return [n for n, _ in x] == [n for n, _ in y] and all(
            ident(u, v) for (_, u), (_, v) in zip(x, y, strict=True)
        )
    if t is np.ndarray:
        return (a.dtype.str, a.shape, a.tobytes()) == (b.dtype.str, b.shape, b.tobytes())
    if t is pa.Table:
        return a.schema.equals(b.schema, check_metadata=True) and all(
            ident(a.column(i).to_pylist(), b.column(i).to_pylist()) for i in range(a.num_columns)
        )
    assert t in (type(None), bool, int, str, bytes), t
    return bool(a == b)


def test_the_oracle_itself() -> None:
    assert ident(float("nan"), float("nan")) and not ident(0.0, -0.0)
    assert not ident({"a": 1, "b": 2}, {"b": 2, "a": 1})
    assert not ident(1, True) and not ident((1,), [1]) and not ident(Pair(1, 2), (1, 2))
    assert ident({1, "a"}, {"a", 1}) and not ident({1}, {True})
    assert not ident(Box([1]), Box((1,))) and ident(Box([1]), Box([1]))
    b = Box(1)
    b.extra = 2
    assert not ident(b, Box(1))


# -- strategies ----------------------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8"), max_size=6) | st.sampled_from(["$tuple", "$dc", "$"])
INTS = st.integers(-3, 3) | st.integers() | st.integers(-(2**200), 2**200)
FLOATS = st.floats() | st.sampled_from([0.0, -0.0, math.nan, -math.nan, math.inf, -math.inf, 1.0])
SCALARS = st.none() | st.booleans() | INTS | FLOATS | TEXT | st.binary(max_size=6)
ENUMS = st.sampled_from([*Color, *Level])

HASHABLE = st.recursive(
    SCALARS | ENUMS,
    lambda inner: (
        st.tuples(inner, inner)
        | st.frozensets(inner, max_size=3)
        | st.builds(Pair, inner, inner)
        | st.builds(FPoint, inner, inner)
    ),
    max_leaves=6,
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(TEXT, inner, max_size=4)
        | st.dictionaries(HASHABLE, inner, max_size=3)
        | st.sets(HASHABLE, max_size=4)
        | st.frozensets(HASHABLE, max_size=3)
        | st.builds(Box, inner, inner)
        | st.builds(Slotted, inner, inner)
        | st.builds(Pair, inner, inner)
        | st.builds(FPoint, HASHABLE, inner)
    )


VALUES = st.recursive(SCALARS | ENUMS | HASHABLE, _containers, max_leaves=12)


def dump(value: Any) -> tuple[str, bytes]:
    sink = io.BytesIO()
    fmt = serialize.dump(value, sink)
    return fmt, sink.getvalue()


def roundtrip(value: Any) -> Any:
    fmt, data = dump(value)
    return serialize.load(fmt, data)


def reorder(v: Any) -> Any:
    """``v`` with every dict's insertion order reversed (equal in Python, not identical)."""
    t = type(v)
    if t is dict:
        return {k: reorder(x) for k, x in reversed(v.items())}
    if t is list:
        return [reorder(x) for x in v]
    if t is tuple:
        return tuple(reorder(x) for x in v)
    if t is Box:
        return Box(reorder(v.items), reorder(v.label))
    return v


def retype(v: Any) -> Any:
    """``v`` with numbers and sequences swapped for equal values of other types."""
    t = type(v)
    if t is bool:
        return int(v)
    if t is int and v in (0, 1):
        return float(v)
    if t is float and v.is_integer() and abs(v) < 2**53:
        return int(v)
    if t is tuple:
        return [retype(x) for x in v]
    if t is list:
        return tuple(retype(x) for x in v)
    if t is dict:
        return {k: retype(x) for k, x in v.items()}
    return v


# -- properties -----------------------------------------------------------------------------------


@SETTINGS
@given(VALUES)
def test_json_values_round_trip_identically(value: Any) -> None:
    fmt, data = dump(value)
    assert fmt == "json"
    back = serialize.load(fmt, data)
    assert ident(back, value)
    assert dump(back) == (fmt, data)  # a loaded value stores as the same bytes


@SETTINGS
@given(VALUES)
def test_identical_values_have_identical_bytes(value: Any) -> None:
    data = dump(value)
    assert dump(copy.deepcopy(value)) == data
    assert dump(roundtrip(value)) == data


DICTS = st.dictionaries(TEXT, VALUES, min_size=2, max_size=4) | st.dictionaries(
    HASHABLE, VALUES, min_size=2, max_size=3
)


@SETTINGS
@given(
    VALUES | DICTS | st.lists(DICTS, max_size=2),
    st.sampled_from(["reorder", "retype", "other"]),
    VALUES,
)
def test_bytes_are_equal_exactly_when_values_are_identical(
    value: Any, how: str, other: Any
) -> None:
    if how == "reorder":
        other = reorder(value)
    elif how == "retype":
        other = retype(value)
    same = ident(value, other)
    event(f"{how}: identical={same}")
    assert same == (dump(value) == dump(other))


# equal in Python (or alike, like (1,) and [1]) but not the same value
EQUAL_BUT_NOT_IDENTICAL = [
    (1, True),
    (1, 1.0),
    (True, 1.0),
    (0, False),
    (0.0, -0.0),
    (0, 0.0),
    ((1,), [1]),
    ((), []),
    ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
    ({1: "x", 2: "y"}, {2: "y", 1: "x"}),
    ({1: "a"}, {True: "a"}),
    ({1: "a"}, {1.0: "a"}),
    ({1}, frozenset({1})),
    ({1}, {True}),
    (Level.LOW, 1),
    (Pair(1, 2), (1, 2)),
    ([{"k": (1, 2)}], [{"k": [1, 2]}]),
    (FPoint(1, 2), FPoint(True, 2)),
]


@pytest.mark.parametrize(("a", "b"), EQUAL_BUT_NOT_IDENTICAL, ids=repr)
def test_equal_but_not_identical_values_get_different_bytes(a: Any, b: Any) -> None:
    assert not ident(a, b)  # most are == in Python too; (1,) and [1] are merely alike
    assert dump(a) != dump(b)
    assert ident(roundtrip(a), a) and ident(roundtrip(b), b)


def test_box_post_init_attribute_is_part_of_the_value() -> None:
    a, b = Box([1]), Box([1])
    b.kind = "other"
    assert a == b and dump(a) != dump(b)  # dataclass __eq__ ignores it; the value does not
    assert roundtrip(b).kind == "other"


# -- numpy and pyarrow ---------------------------------------------------------------------------

DTYPES = st.sampled_from(
    [np.int8, np.uint8, np.int64, np.float32, np.float64, np.bool_, np.complex64, "<U3", "S2"]
).map(np.dtype) | st.sampled_from([np.dtype(">i4"), np.dtype(">f8")])
ARRAYS = hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))


@settings(SETTINGS, max_examples=120)
@given(ARRAYS, ARRAYS)
def test_numpy_arrays(a: np.ndarray, b: np.ndarray) -> None:
    fmt, data = dump(a)
    assert fmt == "npy"
    assert ident(serialize.load(fmt, data), a)
    assert dump(a.copy()) == (fmt, data)
    assert ident(a, b) == (dump(a) == dump(b))


COLUMNS = {
    "i": (pa.int64(), st.one_of(st.none(), st.integers(-2, 2))),
    "f": (pa.float64(), st.one_of(st.none(), st.sampled_from([0.0, -0.0, math.nan, 1.5]))),
    "s": (pa.string(), st.one_of(st.none(), st.sampled_from(["", "a", "é"]))),
}


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    names = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=3, unique=True))
    rows = draw(st.integers(0, 3))
    cols = {}
    for name in names:
        typ, values = COLUMNS[name]
        cols[name] = pa.array(draw(st.lists(values, min_size=rows, max_size=rows)), type=typ)
    return pa.table(cols)


@settings(SETTINGS, max_examples=60)
@given(tables(), tables())
def test_arrow_tables(a: pa.Table, b: pa.Table) -> None:
    fmt, data = dump(a)
    assert fmt == "arrow"
    assert ident(serialize.load(fmt, data), a)
    assert ident(a, b) == (dump(a) == dump(b))

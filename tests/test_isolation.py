"""Private inputs (issue 9, item 5): no task can change a value another task receives.

Unit tests of :func:`flowkit.isolation.private` (immutable values come back as they are,
everything else is a copy or a read-only view that is equal to the original and shares nothing
mutable with it; hypothesis over nested containers), then the issue's scenario end to end on the
``local`` and ``threads`` backends: ``normalise`` appends 1000 to its input while ``total`` sums
the same input; a later workflow ``total(load(4))`` must get 6 from the cache, not 1006.

The end-to-end tests need :func:`private` wired into the runner for backends whose handles are
values; they fail until it is.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import datetime
import decimal
import enum
import fractions
import logging
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from caching_fixtures.mutation import from_input, just_total, normalise_then_total, siblings
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit as fk
from flowkit import isolation
from flowkit.isolation import is_immutable, isolate, private

# -- values used below -------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = 1
    GREEN = [2]  # an Enum member is a singleton even when its value is mutable


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Bag:
    items: list[int]


@dataclasses.dataclass(frozen=True, slots=True)
class Slotted:
    items: Any


@dataclasses.dataclass(frozen=True)
class WithCache:
    x: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "seen", [])  # state outside the fields


@dataclasses.dataclass
class Box:
    items: list[int]


class Pair(NamedTuple):
    a: int
    b: Any


class Loose(Pair):
    pass  # no __slots__: instances get a __dict__ that can change


class Tag:
    """Hashable but mutable (hashes by a constant, compares by content)."""

    def __init__(self, items: list[int]) -> None:
        self.items = items

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tag) and other.items == self.items

    def __hash__(self) -> int:
        return 7


class NoCopy:
    """Refuses to be copied (like an object holding a connection)."""

    def __init__(self) -> None:
        self.items: list[int] = [1]

    def __deepcopy__(self, memo: dict[int, Any]) -> NoCopy:
        raise TypeError("NoCopy cannot be copied")


IMMUTABLE_VALUES: list[Any] = [
    None,
    True,
    0,
    -(2**80),
    1.5,
    float("nan"),
    2j,
    "text",
    b"bytes",
    range(3),
    datetime.datetime(2026, 1, 1),
    datetime.date(2026, 1, 1),
    datetime.timedelta(3),
    decimal.Decimal("1.1"),
    fractions.Fraction(1, 3),
    uuid.UUID(int=5),
    Colour.RED,
    Colour.GREEN,
    (1, "a", (2.0, None)),
    frozenset({1, (2, 3)}),
    Point(1, (2, 3)),
    Pair(1, (2,)),
    Slotted((1, 2)),
    len,
    Path,
    fk.File("/tmp/x"),
    fk.Directory("/tmp"),
]


@pytest.mark.parametrize("value", IMMUTABLE_VALUES, ids=lambda v: type(v).__name__)
def test_immutable_values_come_back_as_they_are(value: Any) -> None:
    assert private(value) is value
    assert isolate(value) == (value, None) and isolate(value)[0] is value
    assert is_immutable(value)


MUTABLE_VALUES: list[Any] = [
    [1, 2],
    {"a": [1]},
    {1, 2},
    bytearray(b"ab"),
    (1, [2]),
    frozenset({Tag([1]), 2}),
    Bag([1]),
    Slotted([1]),
    WithCache(1),
    Box([1]),
    Pair(1, [2]),
    Loose(1, 2),
    collections.OrderedDict(a=[1]),
    collections.defaultdict(list, a=[1]),
    collections.deque([[1]]),
]


@pytest.mark.parametrize("value", MUTABLE_VALUES, ids=lambda v: type(v).__name__)
def test_mutable_values_are_copied(value: Any) -> None:
    before = copy.deepcopy(value)
    out = private(value)
    assert type(out) is type(value)
    if not is_immutable(value):
        assert out is not value
        assert not _shares_mutable(out, value)
    assert out == value == before


def test_frozen_dataclass_with_a_list_is_copied() -> None:
    bag = Bag([1, 2])
    mine = private(bag)
    mine.items.append(1000)
    assert bag.items == [1, 2]


def test_state_set_in_post_init_counts() -> None:
    value = WithCache(1)
    mine = private(value)
    mine.seen.append(1)
    assert value.seen == []  # type: ignore[attr-defined]


def test_namedtuple_subclass_with_a_dict_is_copied() -> None:
    value = Loose(1, 2)
    mine = private(value)
    mine.extra = 3
    assert not hasattr(value, "extra")


def test_aliasing_is_kept_and_cycles_work() -> None:
    shared = [1]
    value = [shared, shared, (shared,), {"k": shared}]
    mine = private(value)
    assert mine[0] is mine[1] is mine[2][0] is mine[3]["k"]
    assert mine[0] is not shared
    loop: list[Any] = []
    loop.append(loop)
    copied = private(loop)
    assert copied[0] is copied and copied is not loop
    inner: list[Any] = []
    tup = (inner,)
    inner.append(tup)
    out = private(tup)
    assert out[0][0] is out and out[0] is not inner


def test_user_object_inside_a_list_shares_the_memo() -> None:
    box = Box([1])
    value = [box, box.items]
    mine = private(value)
    assert mine[0].items is mine[1]  # deepcopy saw the list the walker had already copied
    mine[1].append(2)
    assert box.items == [1]


def test_uncopyable_value_stays_shared_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    value = [NoCopy()]
    out, reason = isolate(value)
    assert out is value
    assert reason is not None and "NoCopy cannot be copied" in reason
    isolation._warned.discard(NoCopy)
    thing = NoCopy()
    with caplog.at_level(logging.WARNING, logger="flowkit.isolation"):
        assert private(thing) is thing
        assert private(NoCopy()) is not thing  # a second one: no second warning
    warnings = [r for r in caplog.records if r.name == "flowkit.isolation"]
    assert len(warnings) == 1
    assert "NoCopy" in warnings[0].getMessage() and "__deepcopy__" in warnings[0].getMessage()


def test_lock_inside_a_list_stays_shared() -> None:
    lock = threading.Lock()
    out, reason = isolate([lock])
    assert out[0] is lock and reason is not None and "lock" in reason


def test_very_deep_tuples_are_copied_not_checked_forever() -> None:
    value: Any = 1
    for _ in range(isolation._MAX_DEPTH + 50):
        value = (value,)
    out = private(value)
    assert out == value


def test_type_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolation, "_MEMO_LIMIT", len(isolation._KINDS) - isolation._KINDS_BASE)
    for i in range(20):
        cls = type(f"Dyn{i}", (), {})
        obj = cls()
        assert private(obj) is not obj
        assert cls not in isolation._KINDS


# -- numpy, pandas, pyarrow --------------------------------------------------------------------


def test_no_library_is_imported() -> None:
    code = (
        "import sys, flowkit.isolation as i\n"
        "i.private([1, {'a': (2,)}])\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_numpy_array_becomes_a_read_only_view() -> None:
    np = pytest.importorskip("numpy")
    a = np.arange(6).reshape(2, 3)
    v = private(a)
    assert np.shares_memory(a, v) and not v.flags.writeable  # no copy
    assert a.flags.writeable  # the producer's own array is untouched
    with pytest.raises(ValueError, match="read-only"):
        v += 1
    with pytest.raises(ValueError, match="read-only"):
        v[0, 0] = 99
    assert (v == a).all() and a[0, 0] == 0
    listed = private([a, a])
    assert listed[0] is listed[1] and not listed[0].flags.writeable


def test_numpy_object_arrays_and_scalars() -> None:
    np = pytest.importorskip("numpy")
    objs = np.empty(2, dtype=object)
    objs[0], objs[1] = [1], [2]
    mine = private(objs)
    mine[0].append(5)
    assert objs[0] == [1]
    scalar = np.float64(1.5)
    assert private(scalar) is scalar
    assert private(np.dtype("int64")) is np.dtype("int64")


def test_pandas_frames_are_deep_copies_including_object_cells() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2], "b": [[1], [2]], "c": ["x", "y"]})
    mine = private(df)
    mine.iloc[0, 0] = 99
    mine["a"].array[1] = 98  # writes through a shallow copy even under copy-on-write
    mine["b"].iloc[0].append(1000)
    mine["d"] = 1
    assert df["a"].tolist() == [1, 2] and df["b"].tolist() == [[1], [2]]
    assert list(df.columns) == ["a", "b", "c"]
    assert private(df).equals(df)
    series = pd.Series([[1], [2]], name="s")
    copied = private(series)
    copied.iloc[0].append(3)
    assert series.tolist() == [[1], [2]] and copied.name == "s"
    assert private(pd.Timestamp("2026-01-01")) == pd.Timestamp("2026-01-01")


def test_arrow_values_are_immutable() -> None:
    pa = pytest.importorskip("pyarrow")
    for value in (
        pa.table({"a": [1]}),
        pa.array([1, 2]),
        pa.chunked_array([[1]]),
        pa.record_batch({"a": [1]}),
        pa.scalar(1),
    ):
        assert private(value) is value


# -- hypothesis: mutating the private copy never changes the original -------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.binary(max_size=5),
)
hashables = st.recursive(scalars, lambda inner: st.tuples(inner, inner), max_leaves=5)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(hashables, inner, max_size=4),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
        st.builds(Bag, st.lists(inner, max_size=3)),
        st.builds(Point, st.integers(), st.tuples(inner)),
        st.builds(Box, st.lists(inner, max_size=3)),
        st.builds(Pair, st.integers(), inner),
    ),
    max_leaves=25,
)


def _mutables(value: Any, seen: set[int] | None = None) -> list[Any]:
    """Every mutable container reachable from ``value`` (lists, dicts, sets, Boxes)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))
    found: list[Any] = []
    if isinstance(value, (list, dict, set, Box)):
        found.append(value)
    if isinstance(value, dict):
        children: list[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        children = list(value)
    elif dataclasses.is_dataclass(value):
        children = list(vars(value).values()) if hasattr(value, "__dict__") else []
    else:
        children = []
    for child in children:
        found.extend(_mutables(child, seen))
    return found


def _shares_mutable(a: Any, b: Any) -> bool:
    return bool({id(x) for x in _mutables(a)} & {id(x) for x in _mutables(b)})


def _orders(value: Any) -> Any:
    """The key order of every dict in ``value`` (as nested lists)."""
    if isinstance(value, dict):
        return [[k, _orders(v)] for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return [_orders(v) for v in value]
    if isinstance(value, (Bag, Box)):
        return _orders(value.items)
    if isinstance(value, Point):
        return _orders(value.y)
    return None


def _vandalise(value: Any) -> None:
    """Change every mutable container reachable from ``value`` in place."""
    for m in _mutables(value):
        if isinstance(m, list):
            m.append(1000)
        elif isinstance(m, dict):
            m["vandal"] = 1000
        elif isinstance(m, set):
            m.add(1000)
        elif isinstance(m, Box):
            m.items = [1000]


@settings(max_examples=300, deadline=None)
@given(values)
def test_mutating_the_private_copy_never_changes_the_original(value: Any) -> None:
    reference = copy.deepcopy(value)
    mine = private(value)
    assert mine == value and type(mine) is type(value)
    assert not _shares_mutable(mine, value)
    if is_immutable(value):
        assert mine is value
    assert _orders(mine) == _orders(value)  # a dict's order is part of its value
    _vandalise(mine)
    assert value == reference
    assert _orders(value) == _orders(reference)


@settings(max_examples=100, deadline=None)
@given(values)
def test_two_private_copies_are_independent(value: Any) -> None:
    reference = copy.deepcopy(value)
    first, second = private(value), private(value)
    _vandalise(first)
    assert second == reference


# -- end to end: the issue's scenario ----------------------------------------------------------


# The scenario's tasks and workflows: caching_fixtures/mutation.py (shared with the Ray tests).


@pytest.fixture(autouse=True)
def no_env_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWKIT_STORE", raising=False)
    monkeypatch.delenv("FLOWKIT_BACKEND", raising=False)


BACKENDS = ["local", "threads"]


def _cached(run: fk.Run) -> dict[str, bool]:
    return {t.node: t.cached for t in run.tasks}


@pytest.mark.parametrize("backend", BACKENDS)
def test_mutating_task_does_not_poison_its_sibling(tmp_path: Path, backend: str) -> None:
    store = str(tmp_path / "store")
    first = fk.run(normalise_then_total, n=4, backend=backend, store=store)
    assert first.output == ([0, 1, 2, 3, 1000], 6)
    later = fk.run(just_total, n=4, backend=backend, store=store)
    assert _cached(later) == {"load": True, "total": True}
    assert later.output == 6  # was 1006: the sum of the list normalise had changed


@pytest.mark.parametrize("backend", BACKENDS)
def test_siblings_in_the_issue_shape(tmp_path: Path, backend: str) -> None:
    store = str(tmp_path / "store")
    first = fk.run(siblings, n=4, backend=backend, store=store)
    assert first.output == ([0, 1, 2, 3, 1000], 6, [0, 1, 2, 3])
    later = fk.run(just_total, n=4, backend=backend, store=store)
    assert later.output == 6 and _cached(later) == {"load": True, "total": True}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_workflow_input_is_private_too(tmp_path: Path, backend: str) -> None:
    store = str(tmp_path / "store")
    xs = [0, 1, 2, 3]
    first = fk.run(from_input, xs=xs, backend=backend, store=store)
    assert first.output == ([0, 1, 2, 3, 1000], 6)
    assert xs == [0, 1, 2, 3]  # the caller's list is not changed either
    later = fk.run(just_total, n=4, backend=backend, store=store)
    assert later.output == 6


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_fresh_process_reads_the_right_sum(tmp_path: Path, backend: str) -> None:
    store = str(tmp_path / "store")
    fk.run(normalise_then_total, n=4, backend=backend, store=store)
    code = (
        "import sys, flowkit as fk\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import test_isolation as t\n"
        "run = fk.run(t.just_total, n=4, backend=sys.argv[2], store=sys.argv[3])\n"
        "print(run.output, all(r.cached for r in run.tasks))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), backend, store],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.split() == ["6", "True"]

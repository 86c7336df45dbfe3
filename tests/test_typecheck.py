"""Tests for flowkit.typecheck: signature resolution, assignability, runtime checks."""

# The old typing spellings (List, Optional, Union, ...) are part of what is under test.
# ruff: noqa: UP006, UP007, UP035, UP045

from __future__ import annotations

import collections
import collections.abc as cabc
import dataclasses
import enum
import importlib.util
import inspect
import sys
import textwrap
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import (
    Annotated,
    Any,
    Dict,
    List,
    Literal,
    NamedTuple,
    NewType,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

import pyarrow as pa
import pytest

from flowkit.errors import GraphError
from flowkit.typecheck import (
    NO_DEFAULT,
    NoneType,
    check_value,
    element_type,
    infer_type,
    is_assignable,
    is_list_type,
    list_of,
    map_binding,
    output_types,
    resolve_signature,
    strip_annotated,
    type_repr,
)

# --------------------------------------------------------------------------------------------
# Fixtures types


class Animal:
    pass


class Dog(Animal):
    pass


@dataclasses.dataclass
class Config:
    depth: int
    name: str = "x"


@dataclasses.dataclass
class SubConfig(Config):
    extra: float = 0.0


class Split(NamedTuple):
    train: pa.Table
    test: pa.Table


class Pair(NamedTuple):
    a: int
    b: str


class OtherPair(NamedTuple):
    a: int
    b: str


class Movie(typing.TypedDict):
    title: str


UserId = NewType("UserId", int)
AdminId = NewType("AdminId", UserId)


class Color(enum.Enum):
    RED = 1
    BLUE = 2


T = TypeVar("T")
TNum = TypeVar("TNum", bound=float)
TStrBytes = TypeVar("TStrBytes", str, bytes)


@typing.runtime_checkable
class HasLen(typing.Protocol):
    def __len__(self) -> int: ...


class NotRuntime(typing.Protocol):
    def go(self) -> None: ...


class Box(typing.Generic[T]):
    pass


# --------------------------------------------------------------------------------------------
# Assignability table

ASSIGNABLE: list[tuple[Any, Any]] = [
    # identity and subclasses
    (int, int),
    (str, str),
    (Dog, Animal),
    (bool, int),
    (SubConfig, Config),
    (pa.Table, pa.Table),
    # numeric tower
    (int, float),
    (bool, float),
    (int, complex),
    (float, complex),
    # Any / object
    (int, Any),
    (Any, int),
    (list[str], object),
    (Any, list[int]),
    # Optional / Union (both spellings) on both sides
    (int, Optional[int]),
    (NoneType, Optional[int]),
    (None, int | None),
    (int, int | str),
    (Union[int, str], int | str | None),
    (int | None, Optional[int]),
    (bool | int, float),
    (Optional[Dog], Optional[Animal]),
    # containers: the mutable ones covariant by design (as their read-only twins in mypy)
    (list[int], list[int]),
    (List[int], list[int]),
    (list[bool], list[int]),
    (list[int], List[float]),
    (list[int], list),
    (list, list[int]),
    (list[int], cabc.Sequence[int]),
    (list[int], typing.Sequence[float]),
    (list[int], cabc.Iterable[int]),
    (list[int], cabc.Collection[int]),
    (set[int], typing.AbstractSet[int]),
    (frozenset[str], cabc.Collection[str]),
    (dict[str, int], dict[str, float]),
    (Dict[str, Dog], typing.Mapping[str, Animal]),
    (dict[str, int], cabc.Iterable[str]),
    (collections.defaultdict[str, int], dict[str, int]),
    (collections.Counter[str], cabc.Mapping[str, int]),
    (list[list[int]], list[list[float]]),
    (dict[str, list[int]], typing.Mapping[str, cabc.Sequence[int]]),
    (dict[Any, int], dict[str, int]),  # keys are invariant, and Any matches both ways
    (dict[bool | int, str], dict[int, str]),  # bool | int is int
    (list[None], list[NoneType | float]),
    (str, cabc.Sequence[str]),
    (bytes, cabc.Sequence[int]),
    # tuples
    (tuple[int, str], tuple[int, str]),
    (Tuple[int, str], tuple[float, str]),
    (tuple[int, int], tuple[int, ...]),
    (tuple[int, ...], tuple[float, ...]),
    (tuple[int, str], cabc.Sequence[int | str]),
    (tuple[()], tuple[int, ...]),
    (tuple[int, str], tuple),
    (tuple[Any, ...], tuple[Dog, Animal]),  # the gradual tuple fits any length (issue 9)
    (tuple[Any, ...], tuple[()]),
    (typing.Tuple, tuple[int, str]),  # bare Tuple is tuple[Any, ...]
    (tuple, tuple[int]),
    # NamedTuple as class and as tuple of its fields
    (Pair, Pair),
    (Pair, tuple[int, str]),
    (Pair, tuple),
    (Split, tuple[pa.Table, pa.Table]),
    # Annotated, Literal, NewType, TypeVar
    (Annotated[int, "meta"], int),
    (int, Annotated[float, "meta"]),
    (list[Annotated[int, "x"]], list[int]),
    (Literal["a", "b"], str),
    (Literal[1, 2], float),
    (Literal["a"], Literal["a", "b"]),
    (UserId, int),
    (UserId, UserId),
    (UserId, float),
    (AdminId, UserId),  # a NewType of a NewType
    (AdminId, int),
    (list[UserId], cabc.Sequence[int]),
    (bool, Literal[True, False]),  # bool and an Enum are the unions of their values (mypy)
    (bool, Union[Literal[True], Literal[False], None]),
    (Color, Literal[Color.RED, Color.BLUE]),
    (Optional[Color], Literal[Color.RED] | Literal[Color.BLUE] | None),
    (Literal[Color.RED], Color),
    (None, Literal[None]),
    (Literal[None], NoneType),
    (Literal[1, 2], Union[Literal[1], Literal[2]]),
    (dict[bool, int], dict[Literal[True, False], int]),
    (T, int),  # unbound TypeVar: Any
    (int, T),
    (TNum, float),
    (int, TNum),
    (str, TStrBytes),
    # dataclasses, TypedDict, protocols, type[], Callable, generics
    (Config, Config),
    (Movie, Movie),
    (Movie, dict[str, Any]),
    (dict[str, Any], Movie),
    (list[int], HasLen),
    (Dog, NotRuntime),  # not runtime-checkable: permissive
    (type[Dog], type[Animal]),
    (type[Dog], type),
    (cabc.Callable[[int], str], cabc.Callable[[str], int]),  # signatures not compared
    (Box[int], Box[float]),
    (Box[int], Box),
    (typing.NoReturn, int),
]

NOT_ASSIGNABLE: list[tuple[Any, Any]] = [
    (str, int),
    (int, str),
    (float, int),
    (complex, float),
    (Animal, Dog),
    (Config, SubConfig),
    (int, bool),
    (int | None, int),
    (Optional[str], str),
    (None, int),
    (int, None),
    (NoneType, list[int]),
    (int | str, int),
    (str, int | float),
    (list[str], list[int]),
    (List[str], list[int]),
    (list[float], list[int]),
    (list[None], list[float]),  # issue 9: None was taken for "element type unknown"
    (set[None], set[float]),
    (list[None], list[Dog]),
    (tuple[None, ...], cabc.Iterable[int]),
    (dict[bool, int], dict[int, int]),  # mapping keys are invariant (as typing.Mapping)
    (dict[str, int], typing.Mapping[object, int]),
    (dict[int, str], dict[float, str]),
    (list[int], dict[str, int]),
    (list[int], set[int]),
    (tuple[int, str], list[int]),
    (list[int], tuple[int, ...]),
    (dict[str, str], dict[str, int]),
    (dict[int, int], dict[str, int]),
    (dict[str, int], cabc.Iterable[int]),
    (list[Optional[int]], list[int]),
    (list[list[str]], list[list[int]]),
    (cabc.Sequence[int], list[int]),
    (str, cabc.Sequence[int]),
    (str, list[str]),
    (tuple[int, str], tuple[int, int]),
    (tuple[int, str], tuple[int]),
    (tuple[int, str, float], tuple[int, str]),
    (tuple[int, ...], tuple[int, int]),
    (tuple[str, ...], tuple[int, ...]),
    (Pair, tuple[int, int]),
    (Pair, tuple[()]),  # `tuple[()]` has no type arguments: it is not a bare `tuple`
    (tuple[int], tuple[()]),
    (tuple[Any, ...], Pair),  # the gradual tuple is a tuple, not a NamedTuple (mypy)
    (Pair, OtherPair),
    (tuple[int, str], Pair),
    (Split, pa.Table),
    (Annotated[str, "meta"], int),
    (int, Annotated[str, "meta"]),
    (Literal["a", "c"], Literal["a", "b"]),
    (Literal[1], Literal[True]),
    (str, Literal["a"]),
    (Literal["a"], int),
    (UserId, str),
    (int, UserId),  # a NewType accepts only itself (mypy)
    (Literal[1], UserId),
    (UserId, AdminId),
    (list[int], list[UserId]),
    (bool, Literal[True]),
    (Color, Literal[Color.RED]),
    (int, Literal[1, 2]),
    (None, Literal[1]),
    (str, TNum),
    (int, TStrBytes),
    (int, Movie),
    (type[Animal], type[Dog]),
    (Dog, type[Dog]),
    (int, cabc.Callable[[], int]),
    (Box[str], Box[int]),
    (pa.Table, list[int]),
    (int, typing.NoReturn),
]


@pytest.mark.parametrize(("src", "dst"), ASSIGNABLE, ids=lambda t: type_repr(t))
def test_assignable(src: Any, dst: Any) -> None:
    assert is_assignable(src, dst) is True


@pytest.mark.parametrize(("src", "dst"), NOT_ASSIGNABLE, ids=lambda t: type_repr(t))
def test_not_assignable(src: Any, dst: Any) -> None:
    assert is_assignable(src, dst) is False


def test_table_is_big_enough() -> None:
    assert len(ASSIGNABLE) + len(NOT_ASSIGNABLE) >= 60


# --------------------------------------------------------------------------------------------
# Signature resolution


def _import_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> Any:
    """Import *source* as module *name* (registered in sys.modules for the test only)."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def test_resolves_future_annotations_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod = _import_file(
        tmp_path,
        monkeypatch,
        "fk_tc_future",
        """
        from __future__ import annotations
        from typing import Annotated, NamedTuple, Optional

        class Data:
            pass

        class Out(NamedTuple):
            model: Data
            score: float

        def train(data: Data, depth: int = 3, tags: Optional[list[str]] = None,
                  w: Annotated[float, "weight"] = 1.0) -> Out:
            ...
        """,
    )
    sig = resolve_signature(mod.train)
    assert sig.name == "train"
    assert sig.names == ("data", "depth", "tags", "w")
    assert sig.param("data").type is mod.Data
    assert sig.param("depth").type is int
    assert sig.param("depth").default == 3 and sig.param("depth").has_default
    assert not sig.param("data").has_default and sig.param("data").default is NO_DEFAULT
    assert sig.param("tags").type == Optional[list[str]]
    assert sig.param("w").type is float
    assert sig.param("w").metadata == ("weight",)
    assert sig.param("w").annotation == Annotated[float, "weight"]
    assert sig.param("data").kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert sig.return_type is mod.Out
    outs, multi = sig.outputs()
    assert multi and outs == [("model", mod.Data), ("score", float)]


def test_resolves_string_annotations_without_future() -> None:
    def f(x: list[int], y: Dog) -> dict[str, float]:
        raise NotImplementedError

    f.__annotations__ = {"x": "list[int]", "y": "Dog", "return": "dict[str, float]"}
    sig = resolve_signature(f)
    assert sig.param("x").type == list[int]
    assert sig.param("y").type is Dog
    assert sig.return_type == dict[str, float]


def test_return_none_is_nonetype() -> None:
    def f(x: int) -> None:
        return None

    assert resolve_signature(f).return_type is NoneType


def test_resolves_locals_of_enclosing_function() -> None:
    # With `from __future__ import annotations` (this file), `Local` is a string that is
    # neither a global nor a closure variable of `f`; the enclosing frame supplies it.
    class Local:
        pass

    def f(x: Local) -> list[Local]:
        raise NotImplementedError

    sig = resolve_signature(f)
    assert sig.param("x").type is Local
    assert sig.return_type == list[Local]


def test_unresolvable_name_names_function_param_and_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod = _import_file(
        tmp_path,
        monkeypatch,
        "fk_tc_missing",
        """
        from __future__ import annotations
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from somewhere import Model

        def fit(n: int, model: Model) -> int:
            return n
        """,
    )
    with pytest.raises(GraphError) as info:
        resolve_signature(mod.fit)
    msg = str(info.value)
    assert "task `fit`" in msg and "`model`" in msg and "`Model`" in msg
    assert "TYPE_CHECKING" in msg


def test_unresolvable_return_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _import_file(
        tmp_path,
        monkeypatch,
        "fk_tc_missing_ret",
        """
        from __future__ import annotations
        def fit(n: int) -> list[Nope]:
            return []
        """,
    )
    with pytest.raises(GraphError, match=r"task `fit`.*`Nope`.*return annotation"):
        resolve_signature(mod.fit)


def test_invalid_annotation_is_graph_error() -> None:
    def f(x: int) -> int:
        return x

    f.__annotations__ = {"x": "list[int", "return": "int"}
    with pytest.raises(GraphError, match=r"task `f`.*parameter `x`.*not a valid type"):
        resolve_signature(f)


def test_missing_parameter_annotation() -> None:
    def f(x, y: int) -> int:  # type: ignore[no-untyped-def]
        return y

    with pytest.raises(GraphError) as info:
        resolve_signature(f)
    assert str(info.value) == (
        "task `f`: parameter `x` has no type annotation; add one, e.g. `x: int`"
    )


def test_missing_return_annotation_names_kind() -> None:
    def pipe(x: int):  # type: ignore[no-untyped-def]
        return x

    with pytest.raises(GraphError, match=r"workflow `pipe`: the return value has no type"):
        resolve_signature(pipe, kind="workflow")


@pytest.mark.parametrize("star", ["args", "kwargs"])
def test_star_parameters_rejected(star: str) -> None:
    def f1(*args: int) -> int:
        return 0

    def f2(**kwargs: int) -> int:
        return 0

    fn = f1 if star == "args" else f2
    prefix = "*" if star == "args" else "**"
    with pytest.raises(GraphError, match=rf"task `f[12]`: `\{prefix[0]}.*{star}` is not supported"):
        resolve_signature(fn)


def test_name_override_in_messages() -> None:
    def f(x) -> int:  # type: ignore[no-untyped-def]
        return 0

    with pytest.raises(GraphError, match=r"task `my.task`"):
        resolve_signature(f, name="my.task")


# --------------------------------------------------------------------------------------------
# Shapes


def test_output_types() -> None:
    assert output_types(tuple[int, str]) == ([("0", int), ("1", str)], True)
    assert output_types(Tuple[pa.Table, pa.Table]) == ([("0", pa.Table), ("1", pa.Table)], True)
    assert output_types(Split) == ([("train", pa.Table), ("test", pa.Table)], True)
    assert output_types(tuple[int, ...]) == ([("0", tuple[int, ...])], False)
    assert output_types(tuple) == ([("0", tuple)], False)
    assert output_types(tuple[()]) == ([("0", tuple[()])], False)
    assert output_types(int) == ([("0", int)], False)
    assert output_types(Optional[tuple[int, int]]) == ([("0", Optional[tuple[int, int]])], False)
    ann = Annotated[tuple[int, str], "x"]
    assert output_types(ann) == ([("0", int), ("1", str)], True)


def test_untyped_namedtuple_fields_are_any() -> None:
    P = collections.namedtuple("P", ["x", "y"])
    assert output_types(P) == ([("x", Any), ("y", Any)], True)


def test_element_type_and_is_list_type() -> None:
    assert element_type(list[int]) is int
    assert element_type(List[str]) is str
    assert element_type(cabc.Sequence[float]) is float
    assert element_type(typing.Sequence[Dog]) is Dog
    assert element_type(Annotated[list[int], "x"]) is int
    assert element_type(list) is Any
    assert element_type(int) is None
    assert element_type(tuple[int, ...]) is None
    assert element_type(Optional[list[int]]) is None
    assert element_type(dict[str, int]) is None
    assert is_list_type(list[int]) and not is_list_type(set[int])


def test_map_binding() -> None:
    assert map_binding(list[int], int) == "mapped"
    assert map_binding(list[bool], float) == "mapped"
    assert map_binding(list[int], list[int]) == "whole"
    assert map_binding(list[list[int]], list[int]) == "mapped"
    assert map_binding(int, int) == "whole"
    assert map_binding(list[str], int) == "mismatch"
    assert map_binding(list[int], Any) == "mapped"  # tie: the API says list[P] -> P maps
    assert list_of(float) == list[float]


def test_infer_type() -> None:
    assert infer_type(3) is int
    assert infer_type(None) is NoneType
    assert infer_type([2, 4, 8]) == list[int]
    assert infer_type([]) == list[Any]
    assert infer_type([1, "a"]) == list[Union[int, str]]
    assert infer_type({"a": 1.0}) == dict[str, float]
    assert infer_type((1, "a")) == tuple[int, str]
    assert infer_type({1, 2}) == set[int]
    assert is_assignable(infer_type([True, 2]), list[int])
    assert not is_assignable(infer_type(["x"]), list[int])


def test_strip_annotated() -> None:
    assert strip_annotated(Annotated[Annotated[int, 1], 2]) is int
    assert strip_annotated(list[int]) == list[int]


@pytest.mark.parametrize(
    ("tp", "text"),
    [
        (int, "int"),
        (None, "None"),
        (NoneType, "None"),
        (Any, "Any"),
        (list[int], "list[int]"),
        (List[int], "list[int]"),
        (dict[str, float], "dict[str, float]"),
        (Optional[int], "int | None"),
        (Union[None, int], "int | None"),
        (int | str, "int | str"),
        (tuple[int, ...], "tuple[int, ...]"),
        (tuple[()], "tuple[()]"),
        (Tuple[()], "tuple[()]"),
        (Tuple, "tuple"),  # bare: no `__args__`, unlike `tuple[()]`
        (pa.Table, "Table"),
        (tuple[pa.Table, pa.Table], "tuple[Table, Table]"),
        (Annotated[int, "m"], "int"),
        (Literal["a", 1], "Literal['a', 1]"),
        (cabc.Sequence[int], "Sequence[int]"),
        (typing.Sequence[int], "Sequence[int]"),
        (cabc.Callable[[int], str], "Callable[[int], str]"),
        (UserId, "UserId"),
        (T, "T"),
        (Dog, "Dog"),
        (type[Dog], "type[Dog]"),
        ("Forward", "Forward"),
    ],
)
def test_type_repr(tp: Any, text: str) -> None:
    assert type_repr(tp) == text


# --------------------------------------------------------------------------------------------
# Runtime checks


class CountingList(list[int]):
    """A list that counts element access, to prove check_value never scans."""

    accesses = 0

    def __getitem__(self, i: Any) -> Any:
        type(self).accesses += 1
        return super().__getitem__(i)

    def __iter__(self) -> Iterator[int]:
        type(self).accesses += 1
        return super().__iter__()


def test_check_value_looks_at_one_element_of_a_huge_list() -> None:
    big = CountingList(range(1_000_000))
    CountingList.accesses = 0
    assert check_value(big, list[int])
    assert check_value(big, cabc.Sequence[int])
    assert check_value(big, cabc.Collection[float])
    assert check_value(big, cabc.Iterable[int])
    assert not check_value(big, list[str])
    assert CountingList.accesses <= 4  # at most one access per check, never a scan


def test_check_value_nested_looks_at_one_element_per_level() -> None:
    inner = CountingList(range(1000))
    outer = [inner] * 1000
    CountingList.accesses = 0
    assert check_value({"k": outer}, dict[str, list[list[int]]])
    assert CountingList.accesses == 1


def _gen() -> Iterator[int]:
    yield 1


CHECKS_OK: list[tuple[Any, Any]] = [
    (1, int),
    (True, int),
    (1, float),
    (True, float),
    (1.5, complex),
    ("s", str),
    (None, None),
    (None, NoneType),
    (None, Optional[int]),
    (3, Optional[int]),
    (3, int | str),
    ("x", Any),
    ("x", object),
    ([1, 2], list[int]),
    ([], list[str]),
    ([1], list),
    ([1], List[float]),
    ((1, "a"), tuple[int, str]),
    ((1, 2, 3), tuple[int, ...]),
    ((), tuple[()]),
    ((1, "a"), typing.Tuple),  # bare Tuple: any length (was taken for `tuple[()]`)
    ((), typing.Tuple),
    ({"a": 1}, dict[str, int]),
    ({}, dict[str, int]),
    ({1, 2}, set[int]),
    (frozenset({"a"}), frozenset[str]),
    ([1], cabc.Sequence[int]),
    ({"a": 1}, cabc.Mapping[str, float]),
    (Pair(1, "b"), Pair),
    ((1, "b"), Pair),  # a plain tuple of the right arity is accepted for a NamedTuple
    (Config(1), Config),
    (SubConfig(1), Config),
    (3, Annotated[int, "m"]),
    ("a", Literal["a", "b"]),
    (5, UserId),
    (Dog, type[Animal]),
    (len, cabc.Callable[[Any], int]),
    (_gen(), Iterator[str]),  # iterators are not consumed
    ({"title": "x"}, Movie),
    ([1], HasLen),
    (object(), NotRuntime),  # cannot be checked: accepted
    (Box(), Box[int]),
    (pa.table({"a": [1]}), pa.Table),
    (3, T),
    (2.0, TNum),
]

CHECKS_BAD: list[tuple[Any, Any]] = [
    ("1", int),
    (1.5, int),
    (None, int),
    (1, None),
    (1, str),
    ("x", Optional[int]),
    (1.5, int | str),
    ((1, 2), list[int]),
    (["a"], list[int]),
    ([None], list[int]),
    ((1, "a", 2), tuple[int, str]),
    ((1, 2), tuple[int, str]),
    ([1, "a"], tuple[int, str]),
    (("a",), tuple[int, ...]),
    ({"a": "b"}, dict[str, int]),
    ({1: 1}, dict[str, int]),
    ({"a"}, set[int]),
    ((1, "b", 3), Pair),
    (Config(1), SubConfig),
    ("x", Annotated[int, "m"]),
    ("c", Literal["a", "b"]),
    (1, Literal[True]),
    (Dog(), type[Animal]),
    (Animal, type[Dog]),
    (3, cabc.Callable[[], int]),
    ([], Movie),
    ("x", TNum),
]


@pytest.mark.parametrize(("value", "tp"), CHECKS_OK, ids=lambda x: type_repr(x))
def test_check_value_ok(value: Any, tp: Any) -> None:
    assert check_value(value, tp) is True
    assert check_value(value, tp) is True  # second call goes through the checker cache


@pytest.mark.parametrize(("value", "tp"), CHECKS_BAD, ids=lambda x: type_repr(x))
def test_check_value_bad(value: Any, tp: Any) -> None:
    assert check_value(value, tp) is False


def test_check_value_numpy_scalars_follow_numeric_tower() -> None:
    np = pytest.importorskip("numpy")
    assert check_value(np.int64(3), int)
    assert check_value(np.float32(3.0), float)
    assert check_value(np.int64(3), float)
    assert not check_value(np.float64(3.5), int)


def test_check_value_unhashable_annotation() -> None:
    tp = Annotated[int, {"unhashable": True}]
    assert check_value(3, tp)
    assert not check_value("x", tp)


def test_checker_for_is_cached_and_handles_generic_union_members() -> None:
    from flowkit.typecheck import checker_for

    tp = Optional[list[int]]
    assert checker_for(tp) is checker_for(tp)
    assert check_value(None, tp) and check_value([1], tp)
    assert not check_value(["a"], tp) and not check_value(3, tp)
    assert check_value(True, float | None)  # numeric tower inside a union


# --------------------------------------------------------------------------------------------
# Binding calls and explaining mismatches


def test_bind_applies_defaults_in_parameter_order() -> None:
    def train(data: int, depth: int = 3, *, verbose: bool = False) -> int:
        return data

    sig = resolve_signature(train)
    assert sig.bind((1,), {"verbose": True}) == {"data": 1, "depth": 3, "verbose": True}
    assert list(sig.bind((), {"depth": 2, "data": 5})) == ["data", "depth", "verbose"]
    assert sig.describe_params() == "data: int, depth: int = 3, verbose: bool = False"


@pytest.mark.parametrize(
    ("args", "kwargs", "pattern"),
    [
        ((), {}, "missing a required argument: 'data'"),
        ((1,), {"nope": 2}, "unexpected keyword argument 'nope'"),
        ((1, 2, 3), {}, "too many positional arguments"),
        ((1,), {"data": 2}, "multiple values for argument 'data'"),
    ],
)
def test_bind_errors_name_the_task(
    args: tuple[Any, ...], kwargs: dict[str, Any], pattern: str
) -> None:
    def train(data: int, depth: int = 3) -> int:
        return data

    sig = resolve_signature(train, kind="task")
    with pytest.raises(
        GraphError, match=rf"task `train`: .*{pattern}.*\(data: int, depth: int = 3\)"
    ):
        sig.bind(args, kwargs)


def test_signature_records_kind_and_positional_only() -> None:
    def pipe(x: int, /, y: str = "a") -> str:
        return y

    sig = resolve_signature(pipe, kind="workflow")
    assert sig.kind == "workflow"
    assert sig.param("x").kind is inspect.Parameter.POSITIONAL_ONLY
    assert sig.bind((1,), {}) == {"x": 1, "y": "a"}


@pytest.mark.parametrize(
    ("src", "dst", "fragment"),
    [
        (
            Optional[int],
            int,
            "may be None, which `int` does not accept; declare the parameter as "
            "`int | None`, or make the producer return `int`",
        ),
        (int | str | None, int, "may be `str`"),
        (list[int], int, "use `.map(...)`"),
        (int, list[int], "takes a `list[int]`, not a single `int`"),
        (tuple[pa.Table, pa.Table], pa.Table, "tuple of 2 outputs"),
        (tuple[int, str], tuple[int, str, int], "has 2 elements but the parameter takes 3"),
        (tuple[int, ...], tuple[int, int], "no fixed length"),
        (dict[str, str], dict[str, int], "`str` is not assignable to `int`"),
        (list[Optional[int]], list[int], "`int | None` is not assignable to `int`"),
        (str, int, "`str` is not assignable to `int`"),
        (int, None, "only accepts None"),
        (int, UserId, "`UserId` is a NewType of `int` and accepts only a `UserId`"),
        (dict[bool, int], dict[int, int], "mapping keys must match exactly"),
    ],
)
def test_explain_mismatch(src: Any, dst: Any, fragment: str) -> None:
    from flowkit.typecheck import explain_mismatch

    assert fragment in explain_mismatch(src, dst)


def test_explain_mismatch_empty_when_assignable() -> None:
    from flowkit.typecheck import explain_mismatch

    assert explain_mismatch(list[bool], list[int]) == ""


def test_typing_extensions_typeddict() -> None:
    pytest.importorskip("typing_extensions")
    from typing_extensions import TypedDict as TeTypedDict

    class Row(TeTypedDict):
        a: int

    assert is_assignable(Row, Row)
    assert is_assignable(Row, cabc.Mapping[str, Any])
    assert not is_assignable(int, Row)
    assert check_value({"a": 1}, Row) and not check_value([1], Row)


def test_final_and_classvar_wrappers_are_looked_through() -> None:
    assert is_assignable(typing.Final[int], float)
    assert check_value(1, typing.Final[int])


def test_resolves_locals_of_nested_enclosing_scopes() -> None:
    class Outer:
        pass

    def helper() -> Any:
        class Inner:
            pass

        def f(x: Outer, y: Inner) -> Inner:
            raise NotImplementedError

        return resolve_signature(f), Inner

    sig, inner = helper()
    assert sig.param("x").type is Outer
    assert sig.param("y").type is inner and sig.return_type is inner


def test_unresolvable_local_name_still_errors() -> None:
    def f(x: NotDefinedAnywhere) -> int:  # type: ignore[name-defined]  # noqa: F821
        return 0

    with pytest.raises(GraphError, match=r"`NotDefinedAnywhere` used in parameter `x`"):
        resolve_signature(f)


class BrokenSeq(list[int]):
    def __getitem__(self, i: Any) -> Any:
        raise RuntimeError("boom")


def test_check_value_never_raises() -> None:
    assert check_value(BrokenSeq([1]), list[int]) is True


def test_type_repr_callable_with_paramspec() -> None:
    P = typing.ParamSpec("P")
    assert type_repr(cabc.Callable[P, int]) == "Callable[~P, int]"
    assert type_repr(cabc.Callable[..., int]) == "Callable[..., int]"


def test_numpy_array_types() -> None:
    np = pytest.importorskip("numpy")
    npt = pytest.importorskip("numpy.typing")
    f64 = npt.NDArray[np.float64]
    i64 = npt.NDArray[np.int64]
    assert is_assignable(np.ndarray, f64) and is_assignable(f64, np.ndarray)
    assert is_assignable(f64, f64)
    assert not is_assignable(f64, i64)
    assert check_value(np.zeros(3), f64)
    assert not check_value([1.0], f64)


def test_every_public_name_has_a_home_module() -> None:
    import importlib

    import flowkit.typecheck as tc

    for name in tc.__all__:
        home = importlib.import_module(f"flowkit.typecheck.{tc._HOME[name]}")
        assert getattr(tc, name) is getattr(home, name), name


# --------------------------------------------------------------------------------------------
# The rules at work on traced workflow edges


def _trace_edges() -> tuple[Any, ...]:
    import flowkit as fk

    @fk.task
    def new_user(n: int) -> UserId:
        return UserId(n)

    @fk.task
    def count(n: int) -> int:
        return n

    @fk.task
    def greet(user: UserId) -> str:
        return f"hello {user}"

    @fk.task
    def nones(n: int) -> list[None]:
        return [None] * n

    @fk.task
    def total(xs: list[float]) -> float:
        return sum(xs)

    return fk, new_user, count, greet, nones, total


def test_workflow_edges_follow_the_rules() -> None:
    fk, new_user, count, greet, nones, total = _trace_edges()

    @fk.workflow
    def typed(n: int) -> str:
        return greet(user=new_user(n=n))

    @fk.workflow
    def constant() -> str:
        return greet(user=5)  # a scalar is checked by value

    assert len(typed.graph.nodes) == 2 and len(constant.graph.nodes) == 1  # both traced

    with pytest.raises(fk.TypeMismatchError, match=r"\(int\).*\(UserId\).*a NewType of `int`"):

        @fk.workflow
        def plain_int(n: int) -> str:
            return greet(user=count(n=n))

    with pytest.raises(fk.TypeMismatchError, match=r"\(list\[None\]\).*\(list\[float\]\)"):

        @fk.workflow
        def list_of_none(n: int) -> float:
            return total(xs=nones(n=n))

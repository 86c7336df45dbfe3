"""Tracing a ``@fk.workflow`` into a typed graph: promises, outputs, sub-workflows, maps,
type checks at decoration, promise misuse, and workflow inputs."""

# The old typing spellings (Optional, Union) are part of what is under test.
# ruff: noqa: UP007, UP045

# No `from __future__ import annotations` here: the tasks below are annotated with types held
# in local variables, which only works with eagerly evaluated annotations. String annotations
# and the future import are tested through module files (see core_fixtures.modules).

import os
from pathlib import Path
from typing import Annotated, Any, NamedTuple, Optional, Union

import pytest
from core_fixtures.modules import line_of, load_module

import flowkit as fk
from flowkit.graph import InputRef, ListOf, Literal, OutputRef
from flowkit.promise import NamedPromises, Promise

HERE = os.path.basename(__file__)


class Stats(NamedTuple):
    low: int
    high: int
    label: str


@fk.task
def add(a: int, b: int) -> int:
    return a + b


@fk.task
def double(x: int) -> int:
    return 2 * x


@fk.task
def numbers(n: int) -> list[int]:
    return list(range(n))


@fk.task
def total(xs: list[int]) -> int:
    return sum(xs)


@fk.task
def pair(x: int) -> tuple[int, str]:
    return x, str(x)


@fk.task
def stats(xs: list[int]) -> Stats:
    return Stats(min(xs), max(xs), "s")


@fk.task
def shout(s: str) -> str:
    return s.upper()


@fk.task
def size_at(items: object, i: int) -> int:
    assert isinstance(items, list)
    return len(items) + i


# -- decorator forms ---------------------------------------------------------------------------


def test_bare_and_called_forms() -> None:
    def body(x: int) -> int:
        return double(x)

    bare = fk.workflow(body)
    named = fk.workflow(name="renamed")(body)
    assert isinstance(bare, fk.WorkflowDef) and bare.name == "body" and bare.fn is body
    assert named.name == "renamed" and named.graph.name == "renamed"
    assert repr(bare) == "<workflow body: 1 nodes>"
    assert [(i.name, i.type) for i in bare.graph.inputs] == [("x", int)]


def test_inputs_and_defaults() -> None:
    @fk.workflow
    def wf(n: int, depths: list[int] = [2, 4], name: str = "x") -> int:  # noqa: B006
        return total(depths)

    inputs = {i.name: i for i in wf.graph.inputs}
    assert inputs["n"].has_default is False
    assert inputs["depths"].has_default and inputs["depths"].default == [2, 4]
    assert inputs["depths"].type == list[int]


def test_body_runs_once_at_decoration() -> None:
    runs = []

    @fk.workflow
    def wf(x: int) -> int:
        runs.append(x)
        return double(x)

    assert len(runs) == 1
    assert isinstance(runs[0], Promise) and runs[0].type is int
    assert wf.graph is wf.graph


def test_missing_annotations_name_the_workflow() -> None:
    def wf(x) -> int:  # type: ignore[no-untyped-def]
        return 1

    with pytest.raises(fk.GraphError, match=r"workflow `wf`: parameter `x` has no type annotation"):
        fk.workflow(wf)


# -- promises ----------------------------------------------------------------------------------


def test_promises_carry_types_and_nodes() -> None:
    seen: dict[str, Any] = {}

    @fk.workflow
    def wf(n: int) -> int:
        seen["n"], seen["xs"] = n, numbers(n)
        seen["t"] = total(seen["xs"])
        return seen["t"]

    assert seen["n"].type is int and seen["n"].node is None
    assert seen["xs"].type == list[int] and seen["xs"].node == "numbers"
    assert seen["t"].node == "total"
    assert "Promise" in repr(seen["t"])
    assert wf.graph.output == OutputRef("total")


def test_repeated_calls_get_numbered_node_ids() -> None:
    @fk.workflow
    def wf(x: int) -> int:
        return double(double(double(x)))

    assert list(wf.graph.nodes) == ["double", "double_2", "double_3"]


def test_tuple_outputs_unpack() -> None:
    seen: dict[str, Any] = {}

    @fk.workflow
    def wf(x: int) -> str:
        number, text = pair(x)
        seen["number"], seen["text"] = number, text
        return shout(text)

    assert seen["number"].type is int and seen["text"].type is str
    (node,) = [n for n in wf.graph if n.name == "shout"]
    assert node.bindings == (("s", OutputRef("pair", 1)),)


def test_namedtuple_outputs_unpack_and_have_fields() -> None:
    seen: dict[str, Any] = {}

    @fk.workflow
    def wf(n: int) -> int:
        s = stats(numbers(n))
        low, high, label = s
        seen.update(s=s, low=low, high=high, label=label)
        return add(s.high, low)

    s = seen["s"]
    assert isinstance(s, NamedPromises)
    assert s.high.type is int and seen["label"].type is str
    assert s.low is seen["low"] and s.high is seen["high"]
    (node,) = [n for n in wf.graph if n.name == "add"]
    assert dict(node.bindings) == {"a": OutputRef("stats", 1), "b": OutputRef("stats", 0)}
    with pytest.raises(AttributeError, match=r"no output named 'mean'.*'low', 'high', 'label'"):
        s.mean  # noqa: B018


def test_literals_and_containers_of_promises() -> None:
    @fk.workflow
    def wf(x: int) -> int:
        return total([double(x), 3, x])

    node = wf.graph.nodes["total"]
    assert node.bindings == (("xs", ListOf((OutputRef("double"), Literal(3), InputRef("x")))),)

    @fk.workflow
    def plain(x: int) -> int:
        return total([1, 2])

    assert plain.graph.nodes["total"].bindings == (("xs", Literal([1, 2])),)


def test_promise_from_another_workflow_is_refused() -> None:
    leaked: list[Any] = []

    @fk.workflow
    def first(x: int) -> int:
        p = double(x)
        leaked.append(p)
        return p

    with pytest.raises(fk.GraphError, match="another workflow"):

        @fk.workflow
        def second(x: int) -> int:
            return add(x, leaked[0])


# -- sub-workflows -----------------------------------------------------------------------------


@fk.workflow
def inner(x: int) -> int:
    return add(double(x), 1)


def test_sub_workflows_are_inlined() -> None:
    @fk.workflow
    def outer(x: int) -> int:
        return inner(inner(x))

    g = outer.graph
    assert list(g.nodes) == ["inner.double", "inner.add", "inner.double_2", "inner.add_2"]
    assert g.nodes["inner.double"].bindings == (("x", InputRef("x")),)
    assert g.nodes["inner.double_2"].bindings == (("x", OutputRef("inner.add")),)
    assert g.output == OutputRef("inner.add_2")
    assert inner.graph.nodes["double"].bindings == (("x", InputRef("x")),)  # untouched


def test_sub_workflow_inputs_are_type_checked() -> None:
    with pytest.raises(fk.TypeMismatchError, match=r"sub-workflow `inner` parameter `x`"):

        @fk.workflow
        def outer(s: str) -> int:
            return inner(s)  # type: ignore[arg-type]


# -- map ---------------------------------------------------------------------------------------


def test_map_type_rule() -> None:
    seen: dict[str, Any] = {}

    @fk.workflow
    def wf(xs: list[int], k: int) -> list[int]:
        out = add.map(a=xs, b=k)
        seen["out"] = out
        return out

    node = wf.graph.nodes["add"]
    assert node.mapped == ("a",)
    assert node.output_type == list[int]
    assert seen["out"].type == list[int]
    assert "map add" in wf.graph.to_text()


def test_map_list_of_lists_onto_a_list_parameter() -> None:
    @fk.workflow
    def wf(groups: list[list[int]], flat: list[int]) -> list[int]:
        return total.map(xs=groups)

    assert wf.graph.nodes["total"].mapped == ("xs",)

    with pytest.raises(fk.GraphError, match="no argument is mapped"):

        @fk.workflow
        def whole(flat: list[int]) -> list[int]:
            return total.map(xs=flat)  # list[int] is passed whole: nothing to map


def test_zipped_map() -> None:
    @fk.workflow
    def wf(xs: list[int], ys: list[int]) -> list[int]:
        return add.map(a=xs, b=ys)

    assert wf.graph.nodes["add"].mapped == ("a", "b")


def test_unmapped_forces_whole_passing() -> None:
    @fk.workflow
    def ambiguous(xs: list[int], idx: list[int]) -> list[int]:
        return size_at.map(items=xs, i=idx)

    @fk.workflow
    def forced(xs: list[int], idx: list[int]) -> list[int]:
        return size_at.map(items=fk.unmapped(xs), i=idx)

    assert ambiguous.graph.nodes["size_at"].mapped == ("items", "i")
    assert forced.graph.nodes["size_at"].mapped == ("i",)
    assert forced.graph.nodes["size_at"].bindings[0] == ("items", InputRef("xs"))


def test_unequal_literal_lengths() -> None:
    with pytest.raises(fk.GraphError) as info:

        @fk.workflow
        def wf(k: int) -> list[int]:
            return add.map(a=[1, 2], b=[1, 2, 3])

    msg = str(info.value)
    assert "unequal lengths" in msg and "fk.unmapped" in msg and f"{HERE}:" in msg


def test_map_over_a_promise_of_a_list() -> None:
    @fk.workflow
    def wf(n: int) -> int:
        return total(double.map(x=numbers(n)))

    node = wf.graph.nodes["double"]
    assert node.mapped == ("x",) and node.bindings == (("x", OutputRef("numbers")),)
    assert wf.graph.nodes["total"].bindings == (("xs", OutputRef("double")),)


def test_map_needs_a_mapped_argument() -> None:
    with pytest.raises(fk.GraphError) as info:

        @fk.workflow
        def wf(x: int) -> list[int]:
            return double.map(x=x)

    msg = str(info.value)
    assert "no argument is mapped" in msg and "x: int" in msg and "list[P]" in msg


def test_map_checks_whole_passed_arguments() -> None:
    with pytest.raises(fk.TypeMismatchError, match=r"parameter `b`"):

        @fk.workflow
        def wf(xs: list[int], s: str) -> list[int]:
            return add.map(a=xs, b=s)  # type: ignore[arg-type]


def test_map_result_is_typed_downstream() -> None:
    with pytest.raises(fk.TypeMismatchError, match=r"list\[int\].*parameter `x` \(int\)"):

        @fk.workflow
        def wf(xs: list[int]) -> int:
            return double(double.map(x=xs))


# -- type checks at decoration ----------------------------------------------------------------


class Animal:
    pass


class Dog(Animal):
    pass


def _edge(src: Any, dst: Any) -> None:
    """Trace ``consume(produce())`` with the given output and parameter types."""

    def produce() -> src:  # type: ignore[valid-type]
        raise NotImplementedError

    def consume(v: dst) -> int:  # type: ignore[valid-type]
        raise NotImplementedError

    p, c = fk.task(produce), fk.task(consume)

    def wf() -> int:
        return c(p())

    fk.workflow(wf)


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (Dog, Animal),
        (int, Optional[int]),
        (None, Optional[int]),
        (int, Union[int, str]),
        (str, int | str),
        (bool, int),
        (int, float),
        (list[int], list[float]),
        (list[Dog], list[Animal]),
        (dict[str, int], dict[str, float]),
        (tuple[int, ...], tuple[float, ...]),
        (Annotated[int, "unit"], int),
        (int, Annotated[int, "unit"]),
        (Any, int),
        (str, Any),
        (list[int], object),
    ],
)
def test_assignable_edges(src: Any, dst: Any) -> None:
    _edge(src, dst)


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (Animal, Dog),
        (Optional[int], int),
        (int | None, int),
        (Union[int, str], int),
        (str, int),
        (float, int),
        (list[str], list[int]),
        (dict[str, str], dict[str, int]),
        (dict[str, int], list[int]),
        (tuple[str, ...], tuple[int, ...]),
        (Annotated[str, "unit"], int),
    ],
)
def test_mismatched_edges(src: Any, dst: Any) -> None:
    with pytest.raises(fk.TypeMismatchError):
        _edge(src, dst)


MISMATCH_MODULE = """
import flowkit as fk


@fk.task
def load(n: int) -> str:
    return str(n)


@fk.task
def square(x: int) -> int:
    return x * x


@fk.workflow
def pipeline(n: int) -> int:
    text = load(n)
    return square(text)  # <- the bad edge
"""


def test_type_mismatch_message(tmp_path: Path) -> None:
    with pytest.raises(fk.TypeMismatchError) as info:
        load_module(tmp_path, MISMATCH_MODULE)
    msg = str(info.value)
    assert "workflow `pipeline`" in msg
    assert "task `load` output (str)" in msg
    assert "task `square` parameter `x` (int)" in msg
    assert f"user_flow.py:{line_of(MISMATCH_MODULE, 'the bad edge')}" in msg
    assert isinstance(info.value, fk.GraphError)


def test_type_mismatch_message_names_the_output() -> None:
    with pytest.raises(fk.TypeMismatchError) as info:

        @fk.workflow
        def wf(n: int) -> int:
            return double(stats(numbers(n)).label)  # type: ignore[arg-type]

    msg = str(info.value)
    assert "task `stats` output `label` (str)" in msg
    assert "task `double` parameter `x` (int)" in msg
    assert f"{HERE}:" in msg

    with pytest.raises(fk.TypeMismatchError, match=r"task `pair` output `1` \(str\)"):

        @fk.workflow
        def wf2(n: int) -> int:
            return double(pair(n)[1])  # type: ignore[arg-type]


def test_workflow_input_and_literal_mismatches() -> None:
    with pytest.raises(fk.TypeMismatchError, match=r"workflow input `s` \(str\).*parameter `x`"):

        @fk.workflow
        def wf(s: str) -> int:
            return double(s)  # type: ignore[arg-type]

    with pytest.raises(fk.TypeMismatchError, match=r"the value 'a' \(str\).*parameter `x`"):

        @fk.workflow
        def wf2(n: int) -> int:
            return double("a")  # type: ignore[arg-type]


def test_workflow_return_is_checked() -> None:
    with pytest.raises(fk.TypeMismatchError, match=r"workflow `wf`.*-> str"):

        @fk.workflow
        def wf(n: int) -> str:
            return double(n)  # type: ignore[return-value]


FUTURE_MODULE = """
from __future__ import annotations

from typing import NamedTuple

import flowkit as fk


class Split(NamedTuple):
    train: list[int]
    test: list[int]


@fk.task
def split(xs: list[int]) -> Split:
    return Split(xs[::2], xs[1::2])


@fk.task
def size(xs: "list[int]") -> "int":
    return len(xs)


@fk.task
def name_of(n: int) -> str:
    return str(n)


@fk.workflow
def pipeline(xs: list[int]) -> int:
    train, test = split(xs)
    return size(train)


def broken():
    @fk.workflow
    def bad(xs: list[int]) -> int:
        return size(name_of(split(xs).train))  # <- bad edge
    return bad
"""


def test_string_and_future_annotations(tmp_path: Path) -> None:
    mod = load_module(tmp_path, FUTURE_MODULE)
    assert mod.size.param_types == {"xs": list[int]} and mod.size.return_type is int
    assert mod.split.outputs == [("train", list[int]), ("test", list[int])]
    assert list(mod.pipeline.graph.nodes) == ["split", "size"]
    assert mod.pipeline(xs=[1, 2, 3]) == 2
    with pytest.raises(fk.TypeMismatchError) as info:
        mod.broken()
    msg = str(info.value)
    assert "task `split` output `train` (list[int])" in msg
    assert "task `name_of` parameter `n` (int)" in msg
    assert f"user_flow.py:{line_of(FUTURE_MODULE, 'bad edge')}" in msg


# -- promise misuse ----------------------------------------------------------------------------


MISUSES = {
    "bool": lambda p: bool(p),
    "if": lambda p: 1 if p else 0,
    "add": lambda p: p + 1,
    "radd": lambda p: 1 + p,
    "neg": lambda p: -p,
    "compare": lambda p: p < 3,
    "equal": lambda p: p == 3,
    "not equal": lambda p: p != 3,
    "len": lambda p: len(p),
    "iterate": lambda p: [x for x in p],
    "unpack": lambda p: [*p],
    "index": lambda p: p[0],
    "contains": lambda p: 1 in p,
    "int": lambda p: int(p),
    "f-string": lambda p: f"model-{p}",
    "str": lambda p: "model-" + str(p),
    "format": lambda p: f"{p:>4}",
    "call": lambda p: p(),
}


@pytest.mark.parametrize("misuse", sorted(MISUSES))
def test_using_a_promise_as_a_value(misuse: str) -> None:
    with pytest.raises(fk.GraphError) as info:

        @fk.workflow
        def wf(n: int) -> int:
            p = total(numbers(n))
            MISUSES[misuse](p)
            return p

    msg = str(info.value)
    assert "@fk.dynamic" in msg
    assert "workflow `wf`" in msg
    assert "`total`" in msg
    assert f"{HERE}:" in msg


def test_workflow_input_misuse_names_the_input() -> None:
    with pytest.raises(fk.GraphError, match=r"workflow input `n`.*@fk.dynamic"):

        @fk.workflow
        def wf(n: int) -> int:
            if n > 3:
                return double(n)
            return n


# -- inputs at run time ------------------------------------------------------------------------


@fk.workflow
def twice(n: int, label: str = "x") -> int:
    return double(n)


def test_bind_inputs_checks_types(tmp_path: Path) -> None:
    with pytest.raises(fk.TypeMismatchError) as info:
        fk.run(twice, n="3", store=str(tmp_path / "s"))  # type: ignore[arg-type]
    msg = str(info.value)
    assert "workflow `twice`" in msg and "input `n`" in msg and "int" in msg and "'3'" in msg
    assert not (tmp_path / "s").exists()  # refused before anything was written


def test_bind_inputs_unknown_and_missing(tmp_path: Path) -> None:
    with pytest.raises(fk.GraphError, match=r"workflow `twice`.*inputs are n: int, label: str"):
        fk.run(twice, n=1, colour="red", store=str(tmp_path / "s"))
    with pytest.raises(fk.GraphError, match=r"workflow `twice`.*missing.*'n'"):
        fk.run(twice, store=str(tmp_path / "s"))
    with pytest.raises(fk.TypeMismatchError, match="input `n`"):
        twice(n=1.5)  # type: ignore[arg-type]


@fk.task
def spread(s: Stats) -> int:
    return s.high - s.low


def test_namedtuple_output_passed_whole_and_returned() -> None:
    @fk.workflow
    def passed(n: int) -> int:
        return spread(stats(numbers(n)))

    assert passed.graph.nodes["spread"].bindings == (("s", OutputRef("stats")),)

    @fk.workflow
    def returned(n: int) -> Stats:
        return stats(numbers(n))

    assert returned.graph.output == OutputRef("stats")

    with pytest.raises(fk.TypeMismatchError, match=r"task `stats` output \(Stats\)"):

        @fk.workflow
        def mismatched(n: int) -> int:
            return double(stats(numbers(n)))  # type: ignore[arg-type]


def test_sub_workflow_namedtuple_output_unpacks() -> None:
    @fk.workflow
    def sub(n: int) -> Stats:
        return stats(numbers(n))

    @fk.workflow
    def outer(n: int) -> int:
        s = sub(n)
        low, _high, _ = s
        return add(add(s.high, low), spread(s))

    add_node = outer.graph.nodes["add"]
    assert dict(add_node.bindings) == {
        "a": OutputRef("sub.stats", 1),
        "b": OutputRef("sub.stats", 0),
    }
    assert outer.graph.nodes["spread"].bindings == (("s", OutputRef("sub.stats")),)


def test_a_literal_value_is_checked_against_a_literal_type() -> None:
    from typing import Literal as L

    @fk.task
    def pick(method: L["psi", "ks"]) -> str:
        return method

    @fk.workflow
    def ok() -> str:
        return pick("ks")

    assert len(ok.graph) == 1
    with pytest.raises(fk.TypeMismatchError, match=r"the value 'zz' \(str\).*`method`"):

        @fk.workflow
        def bad() -> str:
            return pick("zz")

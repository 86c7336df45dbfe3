"""The traced graph as data: nodes, edges, bindings, and the Mermaid / DOT / text renderings."""

from __future__ import annotations

import dataclasses
import os
import pickle
from typing import NamedTuple

import cloudpickle
import pytest

import flowkit as fk
from flowkit.graph import (
    DictOf,
    Edge,
    Graph,
    InputRef,
    ListOf,
    Literal,
    OutputRef,
    WorkflowInput,
    refs_in,
)
from flowkit.taskspec import TaskSpec

HERE = os.path.basename(__file__)


class Split(NamedTuple):
    train: list[int]
    test: list[int]


@fk.task
def numbers(n: int) -> list[int]:
    return list(range(n))


@fk.task
def split(xs: list[int]) -> Split:
    return Split(xs[::2], xs[1::2])


@fk.task
def double(x: int) -> int:
    return 2 * x


@fk.task
def total(xs: list[int], scale: int) -> int:
    return scale * sum(xs)


@fk.task
def merge(parts: dict[str, int], extra: list[int]) -> int:
    return sum(parts.values()) + sum(extra)


@fk.dynamic
def fan(n: int) -> list[int]:
    return [double(i) for i in range(n)]


@fk.workflow
def pipeline(n: int, scale: int = 2) -> int:
    train, test = split(numbers(n))
    doubled = double.map(x=train)
    return merge({"a": total(doubled, scale), "b": total(test, 1)}, [double(n), 4])


def test_nodes_in_topological_order() -> None:
    g = pipeline.graph
    assert isinstance(g, Graph) and g.name == "pipeline"
    assert list(g.nodes) == ["numbers", "split", "double", "total", "total_2", "double_2", "merge"]
    assert len(g) == 7 and [n.id for n in g] == list(g.nodes)
    seen: set[str] = set()
    for node in g:
        assert set(node.upstream()) <= seen
        seen.add(node.id)


def test_node_fields() -> None:
    g = pipeline.graph
    d = g.nodes["double"]
    assert d.name == "double" and d.task is double.spec
    assert d.mapped == ("x",) and d.output_type == list[int] and not d.dynamic
    assert d.bindings == (("x", OutputRef("split", 0)),)
    assert d.location.endswith(f"{HERE}:{_line('doubled = double.map')}")
    s = g.nodes["split"]
    assert s.output_type is Split and s.mapped == ()
    m = g.nodes["merge"]
    assert m.bindings == (
        ("parts", DictOf((("a", OutputRef("total")), ("b", OutputRef("total_2"))))),
        ("extra", ListOf((OutputRef("double_2"), Literal(4)))),
    )
    assert m.upstream() == ["total", "total_2", "double_2"]
    assert g.inputs == (
        WorkflowInput("n", int),
        WorkflowInput("scale", int, default=2, has_default=True),
    )
    assert g.output == OutputRef("merge") and g.output_type is int


def test_edges() -> None:
    assert pipeline.graph.edges == (
        Edge("numbers", "split", None, "xs"),
        Edge("split", "double", 0, "x"),
        Edge("double", "total", None, "xs"),
        Edge("split", "total_2", 1, "xs"),
        Edge("total", "merge", None, "parts"),
        Edge("total_2", "merge", None, "parts"),
        Edge("double_2", "merge", None, "extra"),
    )


def test_upstream_has_no_duplicates() -> None:
    @fk.workflow
    def wf(n: int) -> int:
        x = double(n)
        return total([x, x, double(x)], x)

    assert wf.graph.nodes["total"].upstream() == ["double", "double_2"]


def test_refs_in_nested_bindings() -> None:
    b = ListOf((OutputRef("a"), DictOf((("k", OutputRef("b", 1)),)), Literal(3), InputRef("n")))
    assert list(refs_in(b)) == [OutputRef("a"), OutputRef("b", 1)]
    assert list(refs_in(Literal([OutputRef("x")]))) == []


def test_graph_and_nodes_are_frozen() -> None:
    g = pipeline.graph
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.nodes["double"].mapped = ()  # type: ignore[misc]


def test_graph_nodes_are_read_only() -> None:
    g = pipeline.graph
    before = list(g.nodes)
    with pytest.raises(TypeError):
        g.nodes["extra"] = g.nodes["double"]  # type: ignore[index]
    with pytest.raises(TypeError):
        del g.nodes["double"]  # type: ignore[attr-defined]
    assert list(g.nodes) == before


def test_a_graph_keeps_its_own_copy_of_the_nodes() -> None:
    given = dict(pipeline.graph.nodes)
    g = Graph("copy", (), given, None)
    given.clear()  # the caller's dict changing later does not change the graph
    assert len(g) == len(pipeline.graph) and g.edges == pipeline.graph.edges


def test_a_graph_pickles_with_its_nodes() -> None:
    g = pickle.loads(cloudpickle.dumps(pipeline.graph))  # (tasks are not importable by name)
    assert list(g.nodes) == list(pipeline.graph.nodes) and g.edges == pipeline.graph.edges
    assert g.nodes["double"].task.name == "double"


def test_a_node_holds_the_task_spec() -> None:
    node = pipeline.graph.nodes["double"]
    assert isinstance(node.task, TaskSpec) and node.task is double.spec
    assert node.task.fn is double.fn and node.task.options is double.options
    assert repr(node.task) == "<task spec double>"


def test_dynamic_node() -> None:
    @fk.workflow
    def wf(n: int) -> list[int]:
        return fan(n)

    node = wf.graph.nodes["fan"]
    assert node.dynamic and node.mapped == ()
    assert "fan: dynamic fan(n <- input n) -> list[int]" in wf.graph.to_text()


def test_workflow_without_tasks() -> None:
    @fk.workflow
    def identity(n: int) -> int:
        return n

    g = identity.graph
    assert len(g) == 0 and g.edges == () and g.output == InputRef("n")
    assert g.to_text() == "workflow identity(n)\n"


@fk.workflow
def small(n: int, scale: int = 2) -> int:
    return total(double.map(x=numbers(n)), scale)


def test_to_text() -> None:
    assert small.graph.to_text() == (
        "workflow small(n, scale)\n"
        "  numbers: numbers(n <- input n) -> list[int]\n"
        "  double: map double(x <- numbers) -> list[int]\n"
        "  total: total(xs <- double, scale <- input scale) -> int\n"
    )


def test_to_mermaid() -> None:
    assert small.graph.to_mermaid() == (
        "flowchart LR\n"
        '    in_n(["n: int"])\n'
        '    in_scale(["scale: int"])\n'
        '    n_numbers["numbers"]\n'
        '    n_double["map double"]\n'
        '    n_total["total"]\n'
        "    in_n -->|n| n_numbers\n"
        "    in_scale -->|scale| n_total\n"
        "    n_numbers -->|x| n_double\n"
        "    n_double -->|xs| n_total\n"
    )


def test_to_dot() -> None:
    assert small.graph.to_dot() == (
        'digraph "small" {\n'
        "    rankdir=LR;\n"
        '    "in:n" [shape=ellipse, label="n: int"];\n'
        '    "in:scale" [shape=ellipse, label="scale: int"];\n'
        '    "numbers" [shape=box, label="numbers"];\n'
        '    "double" [shape=box, label="map double"];\n'
        '    "total" [shape=box, label="total"];\n'
        '    "in:n" -> "numbers" [label="n"];\n'
        '    "in:scale" -> "total" [label="scale"];\n'
        '    "numbers" -> "double" [label="x"];\n'
        '    "double" -> "total" [label="xs"];\n'
        "}\n"
    )


def test_rendering_sub_workflow_ids() -> None:
    @fk.workflow
    def outer(n: int) -> int:
        return small(n)

    mermaid = outer.graph.to_mermaid()
    # dots in inlined ids are not valid in Mermaid ids: they are replaced, labels keep names
    assert 'n_small_double["map double"]' in mermaid
    assert "n_small_numbers -->|x| n_small_double" in mermaid
    assert '"small.numbers" -> "small.double" [label="x"];' in outer.graph.to_dot()
    assert "small.total: total(xs <- small.double, scale <- 2) -> int" in outer.graph.to_text()


def test_text_shortens_long_literals() -> None:
    @fk.workflow
    def wf(n: int) -> int:
        return total(list(range(100)), n)

    line = wf.graph.to_text().splitlines()[1]
    assert "xs <- [0, 1, 2" in line and "..." in line and len(line) < 100


def _line(marker: str) -> int:
    with open(__file__, encoding="utf-8") as f:
        return next(i for i, text in enumerate(f, 1) if marker in text)

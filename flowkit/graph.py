"""The typed graph a workflow is traced into: plain, frozen data.

A :class:`Graph` is an ordered mapping of node id → :class:`Node` (insertion order is a
topological order, because tracing adds a node only after the nodes it reads from) plus
the workflow's inputs and the binding of its output. Nothing here executes; the engine
reads the graph, the renderers draw it, and the graph can be listed and compared.

Bindings say where a parameter's value comes from:

* :class:`OutputRef` — output ``index`` of another node (``None``: the whole value);
* :class:`InputRef` — a workflow input;
* :class:`Literal` — a plain value written in the workflow body;
* :class:`ListOf` / :class:`DictOf` — a Python list/tuple/dict built from other bindings;
* :class:`FieldOf` — a field of another binding's value (``cfg.lr``, no node of its own);
* :class:`Select` — the result of ``fk.cond``: one of two bindings, chosen by a predicate.

A node inside a branch of ``fk.cond`` carries :class:`Guard` s: it runs only when each
guard's predicate has the guard's value, and is recorded as skipped otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Union

from flowkit import render
from flowkit.fieldpath import Path
from flowkit.taskspec import TaskSpec


@dataclass(frozen=True, slots=True)
class OutputRef:
    node: str
    index: int | None = None


@dataclass(frozen=True, slots=True)
class InputRef:
    name: str


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class ListOf:
    items: tuple[Binding, ...]
    as_tuple: bool = False


@dataclass(frozen=True, slots=True)
class DictOf:
    items: tuple[tuple[str, Binding], ...]


@dataclass(frozen=True, slots=True)
class FieldOf:
    """Field ``path`` of ``base``'s value (:mod:`flowkit.fieldpath`), read where it is used."""

    base: Binding
    path: Path


@dataclass(frozen=True, slots=True)
class Select:
    """``then`` when ``pred``'s value is true, else ``otherwise`` (``fk.cond`` ``cond``);
    ``per_item`` (``fk.cond.map``): item by item of two map outputs, ``pred`` a list of bools."""

    cond: str
    pred: Binding
    then: Binding
    otherwise: Binding
    per_item: bool = False


@dataclass(frozen=True, slots=True)
class Guard:
    """A node in a branch of ``fk.cond`` ``cond`` runs only when ``pred`` is ``when``;
    ``per_item`` (a map node of ``fk.cond.map``): item ``i`` runs only when ``pred[i]`` is."""

    cond: str
    pred: Binding
    when: bool
    per_item: bool = False


Binding = Union[OutputRef, InputRef, Literal, ListOf, DictOf, FieldOf, Select]  # noqa: UP007 (runtime alias, 3.10)


def refs_in(binding: Binding) -> Iterator[OutputRef]:
    """Every node output a binding reads, in order."""
    if isinstance(binding, OutputRef):
        yield binding
    elif isinstance(binding, ListOf):
        for item in binding.items:
            yield from refs_in(item)
    elif isinstance(binding, DictOf):
        for _, item in binding.items:
            yield from refs_in(item)
    elif isinstance(binding, FieldOf):
        yield from refs_in(binding.base)
    elif isinstance(binding, Select):
        for part in (binding.pred, binding.then, binding.otherwise):
            yield from refs_in(part)


@dataclass(frozen=True, slots=True)
class Node:
    """One task call in the graph (or one ``task.map`` fan-out, when ``mapped`` is set).

    ``task`` is what the node calls (:class:`~flowkit.taskspec.TaskSpec`); ``bindings`` maps
    each parameter name to where its value comes from; ``mapped`` names the parameters that a
    map node iterates over; ``output_type`` is the node's static output type (``list[R]`` for a
    map node); ``location`` is ``file:line`` of the call in the user's code; ``guards`` the
    conditions (outermost first) under which it runs, inside ``fk.cond`` branches;
    ``min_success`` the share of a map's items that must succeed (:mod:`flowkit.tolerance`),
    None: every item must.
    """

    id: str
    task: TaskSpec
    bindings: tuple[tuple[str, Binding], ...]
    output_type: Any
    location: str = ""
    mapped: tuple[str, ...] = ()
    guards: tuple[Guard, ...] = ()
    min_success: float | None = None

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def dynamic(self) -> bool:
        return self.task.dynamic

    def upstream(self) -> list[str]:
        """Ids of the nodes this node reads from, without duplicates, in order."""
        seen: dict[str, None] = {}
        for _, b in self.bindings:
            for ref in refs_in(b):
                seen.setdefault(ref.node)
        for g in self.guards:  # a guard's predicate is read before the node is scheduled
            for ref in refs_in(g.pred):
                seen.setdefault(ref.node)
        return list(seen)


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    output: int | None
    param: str


@dataclass(frozen=True, slots=True)
class WorkflowInput:
    name: str
    type: Any
    default: Any = None
    has_default: bool = False


@dataclass(frozen=True)
class Graph:
    """The traced graph of a workflow (see the module docstring).

    ``nodes`` is read-only (a copy of the mapping given, behind ``MappingProxyType``): the
    engine and the renderers share one graph, and a running graph grows in the engine's own
    copy, never here.
    """

    name: str
    inputs: tuple[WorkflowInput, ...]
    nodes: Mapping[str, Node]
    output: Binding | None
    output_type: Any = None
    _edges: tuple[Edge, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", MappingProxyType(dict(self.nodes)))
        edges = tuple(
            Edge(ref.node, node.id, ref.index, param)
            for node in self.nodes.values()
            for param, b in node.bindings
            for ref in refs_in(b)
        )
        object.__setattr__(self, "_edges", edges)

    def __reduce__(self) -> tuple[Any, ...]:
        # A mapping proxy does not pickle: rebuild from a plain copy of the nodes.
        args = (self.name, self.inputs, dict(self.nodes), self.output, self.output_type)
        return (type(self), args)

    @property
    def edges(self) -> tuple[Edge, ...]:
        """Every data edge: (source node, target node, output index, parameter)."""
        return self._edges

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def shape(self) -> dict[str, Any]:
        """The graph as plain JSON data, as a run header keeps it for readers (the UI) that
        have the store but not the workflow's code: nodes (``kind``: task, map or dynamic;
        ``cache``: whether the task caches), data edges, the inputs and the nodes the output
        reads."""
        return {
            "nodes": [
                {
                    "id": n.id,
                    "task": n.name,
                    "kind": "dynamic" if n.dynamic else "map" if n.mapped else "task",
                    "cache": bool(n.task.options.cache),
                }
                for n in self.nodes.values()
            ],
            "edges": [
                {"source": e.source, "target": e.target, "param": e.param} for e in self._edges
            ],
            "inputs": [i.name for i in self.inputs],
            "output": list(dict.fromkeys(r.node for r in refs_in(self.output)))
            if self.output is not None
            else [],
        }

    def to_mermaid(self) -> str:
        """The graph as a Mermaid ``flowchart`` (paste into Markdown)."""
        return render.to_mermaid(self)

    def to_dot(self) -> str:
        """The graph in Graphviz DOT."""
        return render.to_dot(self)

    def to_text(self) -> str:
        """One line per node: ``id: task(param <- source, ...) -> type``."""
        return render.to_text(self)

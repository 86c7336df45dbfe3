"""Text renderings of a traced graph: Mermaid, Graphviz DOT and a plain listing.

Kept apart from :mod:`flowkit.graph` so the data model stays free of drawing code; the
functions read nodes duck-typed (``id``, ``name``, ``bindings``, ``output_type``, ``mapped``)
and ``edges`` from the graph, so this module imports nothing from flowkit but
:mod:`flowkit.reprs`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flowkit.reprs import short_repr


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__qualname__
    return re.sub(r"\b(?:typing|builtins|collections\.abc)\.", "", str(tp))


def _label(node: Any) -> str:
    kind = "map " if node.mapped else ("dynamic " if node.dynamic else "")
    return f"{kind}{node.name}"


def _safe_id(node_id: str) -> str:
    return "n_" + re.sub(r"\W", "_", node_id)


@dataclass(frozen=True)
class _Syntax:
    """How one drawing language writes inputs, nodes and edges (``str.format`` templates)."""

    input: str  # {name}, {type}
    node: str  # {id}, {label}
    input_edge: str  # {src} (the input's name), {param}, {target}
    edge: str  # {source}, {param}, {target}
    node_id: Callable[[str], str]  # a node id as the language can take it


_MERMAID = _Syntax(
    input='    in_{name}(["{name}: {type}"])',
    node='    {id}["{label}"]',
    input_edge="    in_{src} -->|{param}| {target}",
    edge="    {source} -->|{param}| {target}",
    node_id=_safe_id,
)

_DOT = _Syntax(
    input='    "in:{name}" [shape=ellipse, label="{name}: {type}"];',
    node='    "{id}" [shape=box, label="{label}"];',
    input_edge='    "in:{src}" -> "{target}" [label="{param}"];',
    edge='    "{source}" -> "{target}" [label="{param}"];',
    node_id=str,
)


def _draw(graph: Any, syntax: _Syntax) -> list[str]:
    """Inputs, nodes, edges from inputs, edges between nodes: one line each."""
    ident = syntax.node_id
    nodes = list(graph.nodes.values())
    return [
        *(syntax.input.format(name=i.name, type=_type_name(i.type)) for i in graph.inputs),
        *(syntax.node.format(id=ident(n.id), label=_label(n)) for n in nodes),
        *(
            syntax.input_edge.format(src=src, param=param, target=ident(n.id))
            for n in nodes
            for param, src in _input_sources(n)
        ),
        *(
            syntax.edge.format(source=ident(e.source), param=e.param, target=ident(e.target))
            for e in graph.edges
        ),
    ]


def to_mermaid(graph: Any) -> str:
    lines = ["flowchart LR", *_draw(graph, _MERMAID)]
    return "\n".join(lines) + "\n"


def to_dot(graph: Any) -> str:
    lines = [f'digraph "{graph.name}" {{', "    rankdir=LR;", *_draw(graph, _DOT), "}"]
    return "\n".join(lines) + "\n"


def to_text(graph: Any) -> str:
    lines = [f"workflow {graph.name}({', '.join(i.name for i in graph.inputs)})"]
    for node in graph.nodes.values():
        args = ", ".join(f"{p} <- {_describe(b)}" for p, b in node.bindings)
        lines.append(f"  {node.id}: {_label(node)}({args}) -> {_type_name(node.output_type)}")
    return "\n".join(lines) + "\n"


def _describe(binding: Any) -> str:
    kind = type(binding).__name__
    if kind == "OutputRef":
        return str(binding.node) + ("" if binding.index is None else f"[{binding.index}]")
    if kind == "InputRef":
        return f"input {binding.name}"
    if kind == "Literal":
        return short_repr(binding.value, 30)
    if kind == "ListOf":
        return "[" + ", ".join(_describe(b) for b in binding.items) + "]"
    if kind == "DictOf":
        return "{" + ", ".join(f"{k}: {_describe(b)}" for k, b in binding.items) + "}"
    return kind


def _input_sources(node: Any) -> list[tuple[str, str]]:
    out = []
    for param, b in node.bindings:
        for name in _inputs_in(b):
            out.append((param, name))
    return out


def _inputs_in(binding: Any) -> list[str]:
    kind = type(binding).__name__
    if kind == "InputRef":
        return [binding.name]
    if kind == "ListOf":
        return [n for b in binding.items for n in _inputs_in(b)]
    if kind == "DictOf":
        return [n for _, b in binding.items for n in _inputs_in(b)]
    return []

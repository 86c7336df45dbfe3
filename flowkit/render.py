"""Text renderings of a traced graph: Mermaid, Graphviz DOT and a plain listing.

Kept apart from :mod:`flowkit.graph` so the data model stays free of drawing code; the
functions read nodes duck-typed (``id``, ``name``, ``bindings``, ``output_type``, ``mapped``)
and ``edges`` from the graph, so this module imports nothing from flowkit.
"""

from __future__ import annotations

import re
from typing import Any


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__qualname__
    return re.sub(r"\b(?:typing|builtins|collections\.abc)\.", "", str(tp))


def _label(node: Any) -> str:
    kind = "map " if node.mapped else ("dynamic " if node.dynamic else "")
    return f"{kind}{node.name}"


def _safe_id(node_id: str) -> str:
    return "n_" + re.sub(r"\W", "_", node_id)


def to_mermaid(graph: Any) -> str:
    lines = ["flowchart LR"]
    for inp in graph.inputs:
        lines.append(f'    in_{inp.name}(["{inp.name}: {_type_name(inp.type)}"])')
    for node in graph.nodes.values():
        lines.append(f'    {_safe_id(node.id)}["{_label(node)}"]')
    for node in graph.nodes.values():
        for param, src in _input_sources(node):
            lines.append(f"    in_{src} -->|{param}| {_safe_id(node.id)}")
    for e in graph.edges:
        lines.append(f"    {_safe_id(e.source)} -->|{e.param}| {_safe_id(e.target)}")
    return "\n".join(lines) + "\n"


def to_dot(graph: Any) -> str:
    lines = [f'digraph "{graph.name}" {{', "    rankdir=LR;"]
    for inp in graph.inputs:
        lines.append(
            f'    "in:{inp.name}" [shape=ellipse, label="{inp.name}: {_type_name(inp.type)}"];'
        )
    for node in graph.nodes.values():
        lines.append(f'    "{node.id}" [shape=box, label="{_label(node)}"];')
    for node in graph.nodes.values():
        for param, src in _input_sources(node):
            lines.append(f'    "in:{src}" -> "{node.id}" [label="{param}"];')
    for e in graph.edges:
        lines.append(f'    "{e.source}" -> "{e.target}" [label="{e.param}"];')
    lines.append("}")
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
        text = repr(binding.value)
        return text if len(text) <= 30 else text[:27] + "..."
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

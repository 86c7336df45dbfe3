"""Text renderings of a traced graph: Mermaid, Graphviz DOT and a plain listing.

Kept apart from :mod:`flowkit.graph` so the data model stays free of drawing code; the
functions read nodes duck-typed (``id``, ``name``, ``bindings``, ``output_type``, ``mapped``)
and ``edges`` from the graph, so this module imports nothing from flowkit but
:mod:`flowkit.reprs`.

An ``fk.cond`` decision is drawn as a rhombus (Mermaid ``{...}``, DOT ``shape=diamond``) fed by
its predicate, with ``true`` / ``false`` edges to the first nodes of each branch.
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
    decision: str  # {id}, {label}
    pred_edge: str  # {source}, {target}: the predicate into its decision
    branch_edge: str  # {source}, {when}, {target}


_MERMAID = _Syntax(
    input='    in_{name}(["{name}: {type}"])',
    node='    {id}["{label}"]',
    input_edge="    in_{src} -->|{param}| {target}",
    edge="    {source} -->|{param}| {target}",
    node_id=_safe_id,
    decision='    {id}{{"{label}"}}',
    pred_edge="    {source} -.-> {target}",
    branch_edge="    {source} -->|{when}| {target}",
)

_DOT = _Syntax(
    input='    "in:{name}" [shape=ellipse, label="{name}: {type}"];',
    node='    "{id}" [shape=box, label="{label}"];',
    input_edge='    "in:{src}" -> "{target}" [label="{param}"];',
    edge='    "{source}" -> "{target}" [label="{param}"];',
    node_id=str,
    decision='    "{id}" [shape=diamond, label="{label}"];',
    pred_edge='    "{source}" -> "{target}" [style=dashed];',
    branch_edge='    "{source}" -> "{target}" [label="{when}"];',
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
        *_decisions(graph, syntax),
    ]


def _decisions(graph: Any, syntax: _Syntax) -> list[str]:
    """The rhombus of each fk.cond decision, its predicate's edges and its branch edges (to
    the nodes whose innermost guard it is)."""
    nodes = list(graph.nodes.values())
    decisions: dict[str, Any] = {}
    for n in nodes:
        for g in getattr(n, "guards", ()):
            decisions.setdefault(g.cond, g.pred)
    ident = syntax.node_id
    lines: list[str] = []
    for cond, pred in decisions.items():
        did = ident(f"cond:{cond}")
        label = f"{cond}: {_describe(pred, graph.nodes)}?"
        lines.append(syntax.decision.format(id=did, label=label.replace('"', "'")))
        for src in dict.fromkeys(_nodes_in(pred)):
            lines.append(syntax.pred_edge.format(source=ident(src), target=did))
        for name in dict.fromkeys(_inputs_in(pred)):
            src = ident(f"in:{name}") if syntax is _DOT else f"in_{name}"
            lines.append(syntax.pred_edge.format(source=src, target=did))
        for n in nodes:
            guards = getattr(n, "guards", ())
            if guards and guards[-1].cond == cond:
                when = "true" if guards[-1].when else "false"
                lines.append(syntax.branch_edge.format(source=did, when=when, target=ident(n.id)))
    return lines


def to_mermaid(graph: Any) -> str:
    lines = ["flowchart LR", *_draw(graph, _MERMAID)]
    return "\n".join(lines) + "\n"


def to_dot(graph: Any) -> str:
    lines = [f'digraph "{graph.name}" {{', "    rankdir=LR;", *_draw(graph, _DOT), "}"]
    return "\n".join(lines) + "\n"


def to_text(graph: Any) -> str:
    lines = [f"workflow {graph.name}({', '.join(i.name for i in graph.inputs)})"]
    for node in graph.nodes.values():
        args = ", ".join(f"{p} <- {_describe(b, graph.nodes)}" for p, b in node.bindings)
        guards = "".join(_guard_text(g) for g in getattr(node, "guards", ()))
        lines.append(
            f"  {node.id}: {_label(node)}({args}) -> {_type_name(node.output_type)}{guards}"
        )
    return "\n".join(lines) + "\n"


def _guard_text(guard: Any) -> str:
    item = "[i]" if getattr(guard, "per_item", False) else ""  # fk.cond.map: per item
    return f" if {'' if guard.when else 'not '}{guard.cond}{item}"


def _describe(binding: Any, nodes: Any) -> str:
    """A binding as the listing shows it; a NamedTuple output by its field (``split.train``)."""
    kind = type(binding).__name__
    if kind == "OutputRef":
        return str(binding.node) + _output_suffix(nodes.get(binding.node), binding.index)
    if kind == "InputRef":
        return f"input {binding.name}"
    if kind == "Literal":
        return short_repr(binding.value, 30)
    if kind == "ListOf":
        return "[" + ", ".join(_describe(b, nodes) for b in binding.items) + "]"
    if kind == "DictOf":
        return "{" + ", ".join(f"{k}: {_describe(b, nodes)}" for k, b in binding.items) + "}"
    if kind == "FieldOf":
        return _describe(binding.base, nodes) + "".join(str(s) for s in binding.path)
    if kind == "Select":
        then, other = _describe(binding.then, nodes), _describe(binding.otherwise, nodes)
        return f"{binding.cond} ? {then} : {other}"
    return kind


def _output_suffix(node: Any, index: int | None) -> str:
    if index is None:
        return ""
    outputs = getattr(getattr(node, "task", None), "outputs", ())
    name = outputs[index][0] if index < len(outputs) else str(index)
    return f".{name}" if name.isidentifier() else f"[{index}]"


def _nodes_in(binding: Any) -> list[str]:
    kind = type(binding).__name__
    if kind == "OutputRef":
        return [binding.node]
    return [n for b in _parts(binding) for n in _nodes_in(b)]


def _parts(binding: Any) -> list[Any]:
    """The bindings directly inside a list, dict, field or cond binding."""
    kind = type(binding).__name__
    if kind == "ListOf":
        return list(binding.items)
    if kind == "DictOf":
        return [b for _, b in binding.items]
    if kind == "FieldOf":
        return [binding.base]
    if kind == "Select":
        return [binding.pred, binding.then, binding.otherwise]
    return []


def _input_sources(node: Any) -> list[tuple[str, str]]:
    out = []
    for param, b in node.bindings:
        for name in _inputs_in(b):
            out.append((param, name))
    return out


def _inputs_in(binding: Any) -> list[str]:
    if type(binding).__name__ == "InputRef":
        return [binding.name]
    return [n for b in _parts(binding) for n in _inputs_in(b)]

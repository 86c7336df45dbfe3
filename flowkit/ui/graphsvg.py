"""A run's graph as inline SVG: :func:`graph_svg` (``svg#graph``) and :func:`map_lists`
(``#map-items``, the items a map node expands into).

Layout, left to right: each node's layer is the longest path from a source to it (an edge
that would close a cycle, which only a planted header can hold, is left out of the layering
but still drawn); an edge spanning several layers passes through a placeholder in each, so
that the barycentre ordering (a few sweeps down and up the layers, each node moved to the
mean position of its neighbours in the layer before) keeps long edges clear of nodes and
cuts crossings. Every node sits in its own slot of its own layer: two nodes never overlap.

Each node is a ``g.node`` with ``data-node``, ``data-status`` (the status
:func:`flowkit.ui.live.node_statuses` gives, which live updates keep current),
``data-cached`` (``true`` when served from the cache; a map node: every item) and, for a
map node, class ``map``, ``data-count`` and its counts of items ok / failed / cached; a
click on it toggles its item list (``data-toggle``, :mod:`flowkit.ui.static` JS). A
dynamic node's calls (``dyn/step``, spliced in at run time) are counted under it and listed
like a map's items. Without a recorded graph (an older run), nodes come from the calls
(``train[3]`` makes map node ``train``) and no edge is known.

Names come from the store and are escaped; ids made from them (:func:`dom_id`) keep only
safe characters plus a hash. Strings are built directly (a 1,000-node graph is one join).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from markupsafe import Markup, escape

from flowkit.runview import RunView
from flowkit.taskview import TaskView
from flowkit.ui.live import node_statuses
from flowkit.ui.nodeids import graph_node, map_node

#: Node box size and gaps, in SVG user units (pixels).
NODE_W: Final = 220
NODE_H: Final = 46
MAP_H: Final = 62
GAP_X: Final = 70
GAP_Y: Final = 18
DUMMY_H: Final = 14
PAD: Final = 16
#: Characters of a name drawn in a node (the whole name is in its tooltip).
LABEL_CHARS: Final = 24
#: Items of a map node linked in its list (the rest are reached by their node id).
ITEM_LINKS: Final = 1000
SWEEPS: Final = 4

_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_-]")

Href = Callable[[str], "str | None"]


@dataclass
class GraphNode:
    """One drawn node: a task call, a map node (``items``: its calls) or a dynamic node
    (``items``: the calls it spliced in)."""

    id: str
    task: str
    kind: str  # task | map | dynamic
    status: str = "pending"
    call: TaskView | None = None
    items: list[TaskView] = field(default_factory=list)

    @property
    def cached(self) -> bool:
        if self.kind == "map":
            return bool(self.items) and all(t.cached for t in self.items)
        return self.call is not None and self.call.cached

    def counts(self) -> tuple[int, int, int]:
        """Items ``(ok, failed, cached)``."""
        ok = failed = cached = 0
        for t in self.items:
            if t.cached:
                cached += 1
            if t.status == "succeeded":
                ok += 1
            elif t.status == "failed":
                failed += 1
        return ok, failed, cached


def dom_id(prefix: str, node: str) -> str:
    """An element id for ``node``: safe characters of its name plus a hash (unique, and
    nothing a browser or CSS selector could misread)."""
    digest = hashlib.sha1(node.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{prefix}{_UNSAFE_RE.sub('_', node)[:40]}-{digest}"


def collect(
    run: RunView, tasks: Sequence[TaskView] | None = None
) -> tuple[list[GraphNode], list[tuple[str, str, str]]]:
    """The run's drawn nodes (graph order) and edges ``(source, target, param)``."""
    tasks = run.tasks if tasks is None else tasks
    statuses = node_statuses(run, tasks)
    graph = run.graph
    nodes: dict[str, GraphNode] = {}
    edges: list[tuple[str, str, str]] = []
    if graph is not None:
        for n in graph["nodes"]:
            nodes.setdefault(n["id"], GraphNode(n["id"], n["task"], n["kind"]))
        edges = [(e["source"], e["target"], e["param"]) for e in graph["edges"]]
    for t in tasks:
        _place(nodes, t, recorded_graph=graph is not None)
    for node in nodes.values():
        node.status = statuses.get(node.id) or _status_of(node)
    return list(nodes.values()), edges


def _place(nodes: dict[str, GraphNode], t: TaskView, *, recorded_graph: bool) -> None:
    """Put call ``t`` under its node: itself, a map's item, or a dynamic node's call."""
    node_id = t.node
    if node_id in nodes and nodes[node_id].kind != "map":
        nodes[node_id].call = t
        return
    parent = graph_node(node_id)
    if parent in nodes and nodes[parent].kind == "map":
        nodes[parent].items.append(t)
        return
    owner = _dynamic_owner(nodes, node_id)
    if owner is not None:
        owner.items.append(t)
        return
    if map_node(node_id) is not None and (not recorded_graph or parent not in nodes):
        nodes[parent] = GraphNode(parent, t.name, "map", items=[t])
        return
    nodes[node_id] = GraphNode(node_id, t.name, "task", call=t)


def _dynamic_owner(nodes: dict[str, GraphNode], node_id: str) -> GraphNode | None:
    """The node whose run spliced call ``node_id`` in (``dyn/step[2]`` -> ``dyn``)."""
    cut = node_id.find("/")
    while cut > 0:
        owner = nodes.get(node_id[:cut])
        if owner is not None:
            if owner.kind == "task":
                owner.kind = "dynamic"  # a run recorded without a graph: known by its calls
            return owner
        cut = node_id.find("/", cut + 1)
    return None


def _status_of(node: GraphNode) -> str:
    if node.call is not None:
        status = node.call.status
        return status if status in ("succeeded", "failed", "skipped") else "pending"
    statuses = {t.status for t in node.items}
    if "failed" in statuses:
        return "failed"
    return "succeeded" if statuses == {"succeeded"} else "pending"


# -- layout ------------------------------------------------------------------------------------


def layers(ids: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layer of each node (sources 0). Edges that would close a cycle are
    left out; self-loops and unknown ends are ignored."""
    known = set(ids)
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    indeg = dict.fromkeys(ids, 0)
    for s, t in dict.fromkeys(edges):
        if s in known and t in known and s != t:
            preds[t].append(s)
            succs[s].append(t)
            indeg[t] += 1
    layer: dict[str, int] = {}
    ready = [n for n in ids if indeg[n] == 0]
    waiting = list(ids)
    while len(layer) < len(ids):
        if not ready:  # a cycle: take the first node left, its unplaced sources aside
            ready = [next(n for n in waiting if n not in layer)]
        for n in ready:
            layer[n] = max((layer[p] + 1 for p in preds[n] if p in layer), default=0)
        nxt = []
        for n in ready:
            for t in succs[n]:
                indeg[t] -= 1
                if indeg[t] == 0 and t not in layer:
                    nxt.append(t)
        ready = list(dict.fromkeys(nxt))
    return layer


@dataclass
class Layout:
    """Node and placeholder positions: ``boxes[id] = (x, y, w, h)``; ``routes[(s, t)]``:
    the placeholders an edge passes through; ``width``, ``height`` of the drawing."""

    boxes: dict[str, tuple[float, float, float, float]]
    routes: dict[tuple[str, str], list[str]]
    width: float
    height: float


def layout(
    ids: Sequence[str], edges: Iterable[tuple[str, str]], heights: dict[str, float]
) -> Layout:
    """Positions of the nodes ``ids`` (``heights``: each node's box height)."""
    pairs = [(s, t) for s, t in dict.fromkeys(edges) if s != t and s in heights and t in heights]
    layer = layers(ids, pairs)
    rows: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for n in ids:
        rows[layer[n]].append(n)
    # placeholders: an edge over several layers gets one per layer it crosses
    links: list[tuple[str, str]] = []
    routes: dict[tuple[str, str], list[str]] = {}
    for s, t in pairs:
        if layer[t] <= layer[s] + 1:
            links.append((s, t))
            continue
        chain = [f"\0{s}\0{t}\0{k}" for k in range(layer[s] + 1, layer[t])]
        for k, d in zip(range(layer[s] + 1, layer[t]), chain, strict=True):
            rows[k].append(d)
        routes[(s, t)] = chain
        steps = [s, *chain, t]
        links.extend(itertools.pairwise(steps))
    _order(rows, links)
    boxes: dict[str, tuple[float, float, float, float]] = {}
    tallest = max((_column_height(r, heights) for r in rows), default=0.0)
    for k, row in enumerate(rows):
        x = PAD + k * (NODE_W + GAP_X)
        y = PAD + (tallest - _column_height(row, heights)) / 2
        for n in row:
            h = heights.get(n, DUMMY_H)
            boxes[n] = (x, y, NODE_W, h)
            y += h + GAP_Y
    width = PAD * 2 + max(len(rows), 1) * (NODE_W + GAP_X) - GAP_X
    return Layout(boxes, routes, width, tallest + PAD * 2)


def _column_height(row: Sequence[str], heights: dict[str, float]) -> float:
    if not row:
        return 0.0
    return sum(heights.get(n, DUMMY_H) for n in row) + GAP_Y * (len(row) - 1)


def _order(rows: list[list[str]], links: Sequence[tuple[str, str]]) -> None:
    """Barycentre sweeps, in place: down (by sources), then up (by targets)."""
    up: dict[str, list[str]] = defaultdict(list)
    down: dict[str, list[str]] = defaultdict(list)
    for s, t in links:
        up[t].append(s)
        down[s].append(t)
    for _ in range(SWEEPS):
        for k in range(1, len(rows)):
            _sort_by(rows[k], rows[k - 1], up)
        for k in range(len(rows) - 2, -1, -1):
            _sort_by(rows[k], rows[k + 1], down)


def _sort_by(row: list[str], other: list[str], neighbours: dict[str, list[str]]) -> None:
    where = {n: i for i, n in enumerate(other)}

    def centre(item: tuple[int, str]) -> float:
        i, n = item
        found = [where[m] for m in neighbours.get(n, ()) if m in where]
        return sum(found) / len(found) if found else float(i)

    row[:] = [n for _, n in sorted(enumerate(row), key=lambda item: (centre(item), item[0]))]


# -- drawing -----------------------------------------------------------------------------------


def graph_svg(run: RunView, *, href: Href | None = None) -> Markup:
    """The run's graph as ``svg#graph`` (see the module docstring). ``href(node)`` is where
    a node links (default: its task page on the server)."""
    nodes, edges = collect(run)
    return draw(nodes, edges, href=href or task_href(run.id))


def task_href(run_id: str) -> Href:
    """Links to the server's task pages (``/runs/<id>/tasks/<node>``)."""
    from urllib.parse import quote

    base = f"/runs/{quote(run_id, safe='')}/tasks/"
    return lambda node: base + quote(node, safe="")


def draw(
    nodes: Sequence[GraphNode], edges: Sequence[tuple[str, str, str]], *, href: Href
) -> Markup:
    heights = {n.id: float(MAP_H if n.items else NODE_H) for n in nodes}
    ids = [n.id for n in nodes]
    pairs = [(s, t) for s, t, _ in edges]
    placed = layout(ids, pairs, heights)
    params: dict[tuple[str, str], list[str]] = defaultdict(list)
    for s, t, p in edges:
        if s in heights and t in heights and s != t:
            params[(s, t)].append(p)
    parts = [
        f'<svg id="graph" class="graph" role="img" aria-label="the run\'s graph" '
        f'width="{placed.width:.0f}" height="{placed.height:.0f}" '
        f'viewBox="0 0 {placed.width:.0f} {placed.height:.0f}">',
        '<defs><marker id="fk-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" class="arrow"/>'
        "</marker></defs>",
    ]
    for (s, t), names in params.items():
        parts.append(_edge(s, t, names, placed))
    for node in nodes:
        parts.append(_node(node, placed.boxes[node.id], href))
    parts.append("</svg>")
    return Markup("".join(parts))  # safe: every name below went through escape()


def _edge(s: str, t: str, names: list[str], placed: Layout) -> str:
    sx, sy, sw, sh = placed.boxes[s]
    tx, ty, _, th = placed.boxes[t]
    points = [(sx + sw, sy + sh / 2)]
    for d in placed.routes.get((s, t), ()):
        dx, dy, dw, dh = placed.boxes[d]
        points += [(dx, dy + dh / 2), (dx + dw, dy + dh / 2)]
    points.append((tx, ty + th / 2))
    path = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for (px, py), (qx, qy) in itertools.pairwise(points):
        bend = max(abs(qx - px) / 2, 30.0)
        path.append(f"C{px + bend:.1f},{py:.1f} {qx - bend:.1f},{qy:.1f} {qx:.1f},{qy:.1f}")
    label = escape(f"{s} → {t} ({', '.join(dict.fromkeys(names))})")
    return (
        f'<path class="edge" data-source="{escape(s)}" data-target="{escape(t)}" '
        f'd="{" ".join(path)}" marker-end="url(#fk-arrow)"><title>{label}</title></path>'
    )


def _node(node: GraphNode, box: tuple[float, float, float, float], href: Href) -> str:
    x, y, w, h = box
    classes = "node" if node.kind == "task" else f"node {node.kind}"
    attrs = (
        f'class="{classes}" data-node="{escape(node.id)}" data-status="{escape(node.status)}" '
        f'data-cached="{"true" if node.cached else "false"}" '
        f'transform="translate({x:.1f},{y:.1f})"'
    )
    sub = node.task if node.task != node.id else ""
    lines = []
    if node.items:
        ok, failed, cached = node.counts()
        noun = "items" if node.kind == "map" else "calls"
        attrs += (
            f' data-count="{len(node.items)}" data-toggle="{dom_id("items-", node.id)}" '
            'tabindex="0" role="button" aria-expanded="false"'
        )
        sub = f"{len(node.items):,} {noun}"
        lines.append(
            f'<text class="node-counts" x="10" y="52">{ok:,} ok · {failed:,} failed · '
            f"{cached:,} cached</text>"
        )
    tip = f"{node.id} (task {node.task}): {node.status}"
    if node.cached:
        tip += ", served from the cache"
    body = [
        f"<g {attrs}><title>{escape(tip)}</title>",
        f'<rect width="{w:.0f}" height="{h:.0f}" rx="6"/>',
        f'<text class="node-label" x="10" y="19">{escape(_fit(node.id))}</text>',
    ]
    if sub:
        body.append(f'<text class="node-sub" x="10" y="36">{escape(_fit(sub))}</text>')
    body += lines
    if node.cached:
        body.append(
            f'<text class="cached-mark" x="{w - 8:.0f}" y="15" text-anchor="end">cached</text>'
        )
    body.append("</g>")
    if node.items:
        return "".join(body)  # a click expands the items instead of leaving the page
    link = href(node.id) if node.call is not None else None
    if link is None:
        return "".join(body)
    return f'<a class="node-link" href="{escape(link)}">{"".join(body)}</a>'


def _fit(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


# -- a map node's items ------------------------------------------------------------------------


def map_lists(nodes: Sequence[GraphNode], *, href: Href) -> Markup:
    """``div#map-items``: one closed ``details`` per map or dynamic node listing its calls
    (the first :data:`ITEM_LINKS` linked), opened by a click on the node."""
    parts = ['<div id="map-items">']
    for node in nodes:
        if not node.items:
            continue
        ok, failed, cached = node.counts()
        parts.append(
            f'<details class="map-items" id="{dom_id("items-", node.id)}" '
            f'data-node="{escape(node.id)}"><summary><code>{escape(node.id)}</code>: '
            f"{len(node.items):,} {'items' if node.kind == 'map' else 'calls'} "
            f'({ok:,} ok, {failed:,} failed, {cached:,} cached)</summary><ol class="items">'
        )
        for t in node.items[:ITEM_LINKS]:
            status = escape(t.status)
            label = escape(t.node[len(node.id) :] if t.node.startswith(node.id) else t.node)
            link = href(t.node)
            tag = f'a href="{escape(link)}"' if link is not None else "span"
            parts.append(
                f'<li><{tag} class="item status-{status}" title="{escape(t.node)}: {status}">'
                f"{label}</{tag.split()[0]}></li>"
            )
        parts.append("</ol>")
        rest = len(node.items) - ITEM_LINKS
        if rest > 0:
            parts.append(
                f'<p class="muted">and {rest:,} more: open one by its node id, '
                f"<code>{escape(node.items[ITEM_LINKS].node)}</code> and on</p>"
            )
        parts.append("</details>")
    parts.append("</div>")
    return Markup("".join(parts))  # safe: names escaped above


__all__ = [
    "GraphNode",
    "Layout",
    "collect",
    "dom_id",
    "draw",
    "graph_svg",
    "layers",
    "layout",
    "map_lists",
    "task_href",
]

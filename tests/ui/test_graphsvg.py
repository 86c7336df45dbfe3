"""The run graph as SVG (:mod:`flowkit.ui.graphsvg`): random DAGs lay out with no two nodes
overlapping and every edge drawn, as well-formed XML; hostile names are escaped; a planted
cycle, a run without a recorded graph and a map node's counts are drawn sensibly."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flowkit.records import TaskRecord
from flowkit.runview import RunView
from flowkit.store import Store
from flowkit.taskview import TaskView
from flowkit.ui.graphsvg import (
    GraphNode,
    collect,
    dom_id,
    draw,
    graph_svg,
    layers,
    layout,
    map_lists,
)

HOSTILE = "<script>alert(1)</script> \" & ' ü"


def _href(node: str) -> str:
    return f"/x/{node}"


@st.composite
def dags(draw_: Any) -> tuple[list[str], list[tuple[str, str]]]:
    """Node ids (some hostile) and edges from earlier to later nodes only: a DAG."""
    n = draw_(st.integers(1, 25))
    names = draw_(st.lists(st.text(min_size=1, max_size=12), min_size=n, max_size=n, unique=True))
    ids = [f"{i}:{name}" for i, name in enumerate(names)]
    pairs = [(a, b) for a, b in itertools.combinations(range(n), 2)]
    chosen = draw_(st.lists(st.sampled_from(pairs), max_size=40)) if pairs else []
    return ids, [(ids[a], ids[b]) for a, b in chosen]


def _clean(text: str) -> bool:
    """XML 1.0 has no place for most control characters (nor lone surrogates)."""
    return all(
        c in "\t\n\r" or (0x20 <= ord(c) < 0xD800) or 0xE000 <= ord(c) <= 0xFFFD for c in text
    )


@settings(max_examples=60, deadline=None)
@given(dags())
def test_random_dags_lay_out_without_overlap_and_draw_every_edge(dag: Any) -> None:
    ids, edges = dag
    heights = {n: 46.0 if i % 3 else 62.0 for i, n in enumerate(ids)}
    placed = layout(ids, edges, heights)
    boxes = [placed.boxes[n] for n in ids]
    for (ax, ay, aw, ah), (bx, by, bw, bh) in itertools.combinations(boxes, 2):
        apart = ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
        assert apart
    for x, y, w, h in boxes:
        assert 0 <= x and x + w <= placed.width and 0 <= y and y + h <= placed.height
    level = layers(ids, edges)
    assert all(level[s] < level[t] for s, t in edges)  # left to right

    nodes = [GraphNode(n, "task", "task", "succeeded") for n in ids]
    svg = str(draw(nodes, [(s, t, "p") for s, t in edges], href=_href))
    if all(_clean(n) for n in ids):
        root = ET.fromstring(svg)
        drawn = {
            (p.get("data-source"), p.get("data-target"))
            for p in root.iter("path")
            if p.get("class") == "edge"
        }
        assert drawn == set(edges)
        assert sorted(
            g.get("data-node") for g in root.iter("g") if g.get("class") == "node"
        ) == sorted(ids)
    assert "<script>" not in svg


def test_hostile_names_are_escaped_and_ids_are_safe() -> None:
    nodes = [
        GraphNode(HOSTILE, HOSTILE, "task", "failed"),
        GraphNode("m", HOSTILE, "map", "succeeded"),
    ]
    svg = str(draw(nodes, [(HOSTILE, "m", HOSTILE)], href=_href))
    root = ET.fromstring(svg)
    assert {g.get("data-node") for g in root.iter("g")} >= {HOSTILE, "m"}
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    ident = dom_id("items-", HOSTILE)
    assert ident.replace("-", "").replace("_", "").isalnum()
    assert dom_id("items-", "a b") != dom_id("items-", "a_b")


def test_a_cycle_in_a_planted_graph_is_still_drawn() -> None:
    ids = ["a", "b", "c"]
    edges = [("a", "b"), ("b", "c"), ("c", "a")]
    level = layers(ids, edges)
    assert sorted(level) == ids
    nodes = [GraphNode(n, n, "task") for n in ids]
    root = ET.fromstring(str(draw(nodes, [(s, t, "x") for s, t in edges], href=_href)))
    assert len([p for p in root.iter("path") if p.get("class") == "edge"]) == 3


def _planted_run(tmp_path: Any, graph: dict[str, Any] | None, records: list[TaskRecord]) -> RunView:
    store = Store(str(tmp_path / "store"))
    header: dict[str, Any] = {"workflow": "w", "status": "failed", "started": 1.0, "ended": 9.0}
    if graph is not None:
        header["graph"] = graph
    run = RunView(store, "r1", header)
    run._tasks = tuple(TaskView(r.to_dict(), store, "r1", True) for r in records)  # type: ignore[misc]
    return run


def _rec(node: str, status: str = "succeeded", cached: bool = False, name: str = "t") -> TaskRecord:
    return TaskRecord(name=name, node=node, status=status, cached=cached, started=1.0, ended=2.0)  # type: ignore[arg-type]


def test_map_node_counts_cached_mark_and_item_list(tmp_path: Any) -> None:
    graph = {
        "nodes": [
            {"id": "load", "task": "load", "kind": "task", "cache": True},
            {"id": "sq", "task": "sq", "kind": "map", "cache": True},
        ],
        "edges": [{"source": "load", "target": "sq", "param": "x"}],
        "inputs": [],
        "output": ["sq"],
    }
    records = [_rec("load", cached=True, name="load")]
    records += [
        _rec(f"sq[{i}]", "failed" if i == 3 else "succeeded", cached=i < 2, name="sq")
        for i in range(1500)
    ]
    run = _planted_run(tmp_path, graph, records)
    svg = str(graph_svg(run))
    root = ET.fromstring(svg)
    by_node = {g.get("data-node"): g for g in root.iter("g") if "node" in (g.get("class") or "")}
    assert by_node["load"].get("data-cached") == "true"
    sq = by_node["sq"]
    assert "map" in (sq.get("class") or "") and sq.get("data-count") == "1500"
    assert sq.get("data-status") == "failed" and sq.get("data-cached") == "false"
    assert "1,500 items" in svg and "1,499 ok · 1 failed · 2 cached" in svg
    nodes, _ = collect(run)
    lists = str(map_lists(nodes, href=_href))
    assert lists.count('class="item status') == 1000 and "and 500 more" in lists
    assert sq.get("data-toggle") in lists


def test_without_a_recorded_graph_nodes_come_from_the_calls(tmp_path: Any) -> None:
    records = [
        _rec("load"),
        _rec("sq[0]"),
        _rec("sq[1]"),
        _rec("dyn"),
        _rec("dyn/step"),
        _rec("dyn/step[0]"),
    ]
    run = _planted_run(tmp_path, None, records)
    nodes, edges = collect(run)
    kinds = {n.id: (n.kind, len(n.items)) for n in nodes}
    assert kinds == {"load": ("task", 0), "sq": ("map", 2), "dyn": ("dynamic", 2)}
    assert edges == []
    root = ET.fromstring(str(graph_svg(run)))
    assert not [p for p in root.iter("path") if p.get("class") == "edge"]

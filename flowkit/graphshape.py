"""A run's graph as its header keeps it (:meth:`flowkit.graph.Graph.shape`), checked on read.

The header comes from the store, which readers do not trust: :func:`read_shape` keeps only
well-formed nodes and edges (strings where strings belong, a known ``kind``) and drops edges
whose ends are not nodes, so a planted or damaged header can mislead no drawing.
"""

from __future__ import annotations

from typing import Any

KINDS = frozenset({"task", "map", "dynamic"})


def read_shape(found: Any) -> dict[str, Any] | None:
    """The graph shape in ``found`` (a header's ``graph``), cleaned; None when absent or not
    a shape at all (a run recorded before flowkit kept it)."""
    if not isinstance(found, dict) or not isinstance(found.get("nodes"), list):
        return None
    nodes = [_node(n) for n in found["nodes"]]
    kept = [n for n in nodes if n is not None]
    ids = {n["id"] for n in kept}
    edges = found.get("edges")
    if not isinstance(edges, list):
        edges = []
    return {
        "nodes": kept,
        "edges": [
            {"source": e["source"], "target": e["target"], "param": e["param"]}
            for e in edges
            if isinstance(e, dict)
            and _all_str(e, ("source", "target", "param"))
            and e["source"] in ids
            and e["target"] in ids
        ],
        "inputs": _strings(found.get("inputs")),
        "output": [i for i in _strings(found.get("output")) if i in ids],
    }


def _node(n: Any) -> dict[str, Any] | None:
    if not isinstance(n, dict):
        return None
    if not (_all_str(n, ("id", "task", "kind")) and n["kind"] in KINDS):
        return None
    return {"id": n["id"], "task": n["task"], "kind": n["kind"], "cache": n.get("cache") is True}


def _all_str(d: dict[str, Any], names: tuple[str, ...]) -> bool:
    return all(isinstance(d.get(name), str) for name in names)


def _strings(found: Any) -> list[str]:
    return [s for s in found if isinstance(s, str)] if isinstance(found, list) else []

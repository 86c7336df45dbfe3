"""The status JSON a running run's page polls: ``GET /api/runs/{run_id}/status``.

::

    {"status": "running",
     "summary": {"run": 12, "cached": 3, "failed": 0},
     "nodes": {"load": "succeeded", "train": "running", "train[0]": "succeeded", ...}}

``nodes`` holds every node of the run's graph (a map node once, under its own name, with the
status of its items taken together) and, unless the run has more than :data:`MAX_CALLS`
calls, every recorded call by its node id. Statuses are those the graph draws: ``succeeded``,
``failed``, ``running``, ``pending``, ``skipped``.

Only task records tell what finished (the engine writes them in batches as calls end), so a
node with no record yet is ``running`` when the run is and everything it reads has succeeded,
else ``pending``; in a run that ended it is ``skipped`` (failed) or ``pending`` (interrupted,
lost). :func:`node_statuses` is the same reading for the run page's first drawing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Final

from flowkit.runview import RunView
from flowkit.taskview import TaskView
from flowkit.ui.nodeids import map_node

#: Above this many calls the JSON names graph nodes only (a 100k-item map stays small).
MAX_CALLS: Final = 2000


def status_doc(run: RunView) -> dict[str, Any]:
    """The JSON document of ``run``'s status (reads its header and task records)."""
    tasks = run.tasks
    nodes = node_statuses(run, tasks)
    if len(tasks) <= MAX_CALLS:
        nodes.update((t.node, _call_status(t)) for t in tasks)
    return {"status": run.status, "summary": summary(run, tasks), "nodes": nodes}


def summary(run: RunView, tasks: Iterable[TaskView]) -> dict[str, int]:
    """Calls ``run``, ``cached``, ``failed``: the header's once the run ended, counted from
    the records so far while it runs (the header's counts are those of its last rewrite)."""
    found = run.summary
    if run.status != "running" and all(k in found for k in ("run", "cached", "failed")):
        return {k: found[k] for k in ("run", "cached", "failed")}
    counts = {"run": 0, "cached": 0, "failed": 0}
    for t in tasks:
        if t.cached:
            counts["cached"] += 1
        elif t.status == "succeeded":
            counts["run"] += 1
        elif t.status == "failed":
            counts["failed"] += 1
    return counts


def graph_nodes(run: RunView, tasks: Iterable[TaskView] | None = None) -> list[dict[str, Any]]:
    """The run's graph nodes (``id``, ``task``, ``kind``, ``cache``): from the header's graph,
    or, for a run recorded before flowkit kept it, from its calls (``train[3]`` makes map
    node ``train``)."""
    graph = run.graph
    if graph is not None:
        return list(graph["nodes"])
    seen: dict[str, dict[str, Any]] = {}
    for t in run.tasks if tasks is None else tasks:
        parent = map_node(t.node)
        node_id = t.node if parent is None else parent
        if node_id not in seen:
            kind = "task" if parent is None else "map"
            seen[node_id] = {"id": node_id, "task": t.name, "kind": kind, "cache": False}
    return list(seen.values())


def node_statuses(run: RunView, tasks: Iterable[TaskView] | None = None) -> dict[str, str]:
    """Graph node id -> status (see the module docstring for a node without records)."""
    calls = {t.node: t for t in (run.tasks if tasks is None else tasks)}
    items: dict[str, list[TaskView]] = defaultdict(list)
    for node, view in calls.items():
        if (parent := map_node(node)) is not None:
            items[parent].append(view)
    nodes = graph_nodes(run, calls.values())
    upstream = _upstream(run)
    found: dict[str, str] = {}
    for shape in nodes:  # graph order is the traced order: sources first
        node_id = shape["id"]
        if node_id in calls:
            found[node_id] = _call_status(calls[node_id])
        elif node_id in items:
            found[node_id] = _map_status(run.status, items[node_id], node_id, upstream, calls)
        else:
            found[node_id] = _unrecorded(run.status, upstream.get(node_id, ()), found)
    return found


def _call_status(view: TaskView) -> str:
    status = view.status
    return status if status in ("succeeded", "failed", "skipped") else "pending"


def _map_status(
    run_status: str,
    views: list[TaskView],
    node_id: str,
    upstream: Mapping[str, tuple[str, ...]],
    calls: Mapping[str, TaskView],
) -> str:
    statuses = {_call_status(v) for v in views}
    if "failed" in statuses:
        return "failed"
    if run_status == "running":
        # items may still be running; once a node reading this one has a record, all ended
        readers = [n for n, sources in upstream.items() if node_id in sources]
        if not any(r in calls or any(k.startswith(f"{r}[") for k in calls) for r in readers):
            return "running"
    if statuses == {"skipped"}:
        return "skipped"
    return "succeeded"


def _unrecorded(run_status: str, sources: Iterable[str], found: Mapping[str, str]) -> str:
    if run_status == "running":
        ready = all(found.get(s) == "succeeded" for s in sources)
        return "running" if ready else "pending"
    return "skipped" if run_status in ("failed", "succeeded") else "pending"


def _upstream(run: RunView) -> dict[str, tuple[str, ...]]:
    """Node id -> the nodes it reads (from the graph's edges; none known without a graph)."""
    graph = run.graph
    sources: dict[str, list[str]] = defaultdict(list)
    for edge in graph["edges"] if graph is not None else ():
        sources[edge["target"]].append(edge["source"])
    return {node: tuple(found) for node, found in sources.items()}


__all__ = ["MAX_CALLS", "graph_nodes", "node_statuses", "status_doc", "summary"]

"""One run as a page: :func:`run_page` (``/runs/{id}``, and frozen, ``flowkit report``).

The header (workflow, status, times, backend, the parameters with secrets hidden, the
error), the graph (:mod:`flowkit.ui.graphsvg`) with the items its map nodes expand into, the
timeline (:mod:`flowkit.ui.gantt`) and the task table: one ``tr.task`` per call, except that a
map node shows its failed items and its first :data:`ITEM_ROWS` others (a row says how many
more its item list holds), so a 10,000-call run is a page of a few hundred rows.

With ``report=True`` the page stands alone: CSS and JS inlined (``inline_assets``), links
to the server gone, and every call the table shows embedded as a hidden ``section`` shown
by ``:target`` CSS (clicking a task works from a ``file://`` page with no script and no
server). Nothing in it points outside the file.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import quote

from flowkit.runview import RunView
from flowkit.taskview import TaskView
from flowkit.ui.gantt import gantt_svg
from flowkit.ui.graphsvg import Href, collect, dom_id, draw, map_lists, task_href
from flowkit.ui.live import summary
from flowkit.ui.nodeids import map_node
from flowkit.ui.preview import cut
from flowkit.ui.taskpage import Context, task_section
from flowkit.ui.templating import render

#: Rows of one map node's items in the task table (its failed items are always shown).
ITEM_ROWS: Final = 200
#: Characters of one parameter's value shown.
PARAM_CHARS: Final = 300


def run_page(run: RunView, *, report: bool = False) -> str:
    """The whole page of ``run`` (see the module docstring)."""
    tasks = run.tasks
    shown, hidden = table_rows(tasks)
    embedded = {t.node for t in shown}
    href: Href = task_href(run.id)
    if report:  # links within the file, to the calls it embeds

        def href(node: str) -> str | None:
            return f"#{dom_id('task-', node)}" if node in embedded else None

    nodes, edges = collect(run, tasks)
    context = {
        "run": run,
        "report": report,
        "inline_assets": report,
        "live_run_id": run.id if run.status == "running" and not report else None,
        "status": run.status,
        "summary": summary(run, tasks),
        "params": params(run),
        "workflow_href": f"/workflows/{quote(run.workflow, safe='')}",
        "graph": draw(nodes, edges, href=href),
        "map_lists": map_lists(nodes, href=href),
        "gantt": gantt_svg(run, tasks),
        "rows": [_row(t, href) for t in shown],
        "hidden": hidden,
        "sections": _sections(run, tasks, shown, href) if report else [],
    }
    return render("run.html", **context)


def table_rows(tasks: Sequence[TaskView]) -> tuple[list[TaskView], dict[str, int]]:
    """The calls the task table shows (in run order) and, per map node, how many it leaves
    to the node's item list."""
    per_node: dict[str, int] = defaultdict(int)
    hidden: dict[str, int] = defaultdict(int)
    shown = []
    for t in tasks:
        node = map_node(t.node)
        if node is not None and t.status != "failed":
            per_node[node] += 1
            if per_node[node] > ITEM_ROWS:
                hidden[node] += 1
                continue
        shown.append(t)
    return shown, dict(hidden)


def _row(t: TaskView, href: Href) -> dict[str, Any]:
    attempts = t.attempts
    cpus = [a.cpu for a in attempts if a.cpu is not None]
    rss = [a.peak_rss for a in attempts if a.peak_rss is not None]
    return {
        "node": t.node,
        "task": t.name,
        "status": t.status,
        "attempts": len(attempts),
        "duration": t.duration,
        "cpu": sum(cpus) if cpus else None,
        "peak_rss": max(rss) if rss else None,
        "cached": t.cached,
        "reused": t.reused_from,
        "href": href(t.node),
        "error": t.error,
    }


def _sections(
    run: RunView, tasks: Sequence[TaskView], shown: Sequence[TaskView], href: Href
) -> list[dict[str, Any]]:
    context = Context(run, tasks)
    return [
        {
            "id": dom_id("task-", t.node),
            "node": t.node,
            "html": task_section(run, t, href=href, context=context),
        }
        for t in shown
    ]


# -- parameters --------------------------------------------------------------------------------


def params(run: RunView) -> list[tuple[str, str]]:
    """The workflow's inputs as the header records them, as text: a secret (anywhere in a
    value) as ``secret``, a stored input as its size; nothing is loaded."""
    inputs = run.header.get("inputs") if run.damage is None else None
    if not isinstance(inputs, dict):
        return []
    return [(str(k), cut(_param_text(v), PARAM_CHARS)) for k, v in inputs.items()]


def _param_text(value: Any, depth: int = 0) -> str:
    """A header's input as JSON-like text, its markers (:mod:`flowkit.header_inputs`)
    replaced: ``{"$secret": true}`` by ``secret``, ``{"$artifact": ...}`` by its size,
    ``{"$repr": ...}`` by the repr; a value nested too deep is cut."""
    if depth > 20:
        return "…"
    if isinstance(value, dict):
        if len(value) == 1:
            ((mark, inner),) = value.items()
            if mark == "$secret":
                return "secret"
            if mark == "$artifact":
                size = inner.get("size") if isinstance(inner, dict) else None
                what = f"{size:,} bytes" if type(size) is int else "an object"
                return f"stored in the store ({what})"
            if mark == "$repr":
                return str(inner)
        inner_text = ", ".join(
            f"{json.dumps(str(k), ensure_ascii=False)}: {_param_text(v, depth + 1)}"
            for k, v in value.items()
        )
        return "{" + inner_text + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_param_text(v, depth + 1) for v in value) + "]"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


__all__ = ["ITEM_ROWS", "params", "run_page", "table_rows"]

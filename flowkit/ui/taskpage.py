"""One call of a run as a page: :func:`task_page` (``/runs/{id}/tasks/{node}``), and the same
detail as a section of the report (:func:`task_section`).

The page shows the call's inputs (each token, the call that produced it when this run
has it, and the value previewed when it is that call's output), its outputs with a
:func:`~flowkit.ui.preview.preview` each, its attempts, logs
(``pre.logs``, one per attempt that printed anything; a huge log shows its head and tail),
the traceback of a failure (``pre.traceback``), why a cached task's call missed the cache
(``#miss-reason``, :mod:`flowkit.ui.missreason`) and the task's cards (``#cards``).

Values (outputs, and inputs that are an upstream output) are loaded here and only here, one
at a time, only when the record says they are at
most :data:`MAX_LOAD` bytes; a value that cannot be loaded (gone, damaged, of a class this
process does not trust) is shown as that error, not as a failed page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

from markupsafe import Markup

from flowkit.runview import RunView
from flowkit.store import Artifact
from flowkit.taskview import NoOutputError, TaskView
from flowkit.ui.cards import cards_html
from flowkit.ui.graphsvg import task_href
from flowkit.ui.missreason import Memo, MissReason, miss_reason
from flowkit.ui.nodeids import graph_node
from flowkit.ui.preview import preview, short
from flowkit.ui.templating import env, render

#: Bytes of an output loaded for its preview (the record says each output's size).
MAX_LOAD: Final = 16 * 2**20
#: Characters of one attempt's log shown: its head and tail, half each.
MAX_LOG: Final = 200_000


Href = Callable[[str], "str | None"]


def task_page(run: RunView, node: str) -> str:
    """The whole page of call ``node`` of ``run``; :class:`~flowkit.runview.UnknownNodeError`
    when the run has no such call (the app answers 404)."""
    task = run[node]
    detail = task_detail(run, task, href=task_href(run.id))
    run_href = f"/runs/{quote(run.id, safe='')}"
    return render("task.html", run=run, run_href=run_href, d=detail, live_run_id=None)


def task_section(run: RunView, task: TaskView, *, href: Href, context: Context) -> Markup:
    """The call's detail without the page around it (a section of the report)."""
    detail = task_detail(run, task, href=href, context=context, links=False)
    html = env().get_template("task_detail.html").render(d=detail, standalone=False)
    return Markup(html)  # safe: rendered with autoescape on


class Context:
    """What the details of several calls of one run share, worked out once: which call
    produced each digest, which graph nodes are cached."""

    def __init__(self, run: RunView, tasks: Sequence[TaskView] | None = None) -> None:
        self.run = run
        self.memo = Memo(run.store)
        self._tasks = run.tasks if tasks is None else tasks
        self._producers: dict[str, tuple[str, str, Any]] | None = None
        self.calls = {t.node for t in self._tasks}
        graph = run.graph
        self.cached_nodes: dict[str, bool] | None = (
            None if graph is None else {n["id"]: bool(n["cache"]) for n in graph["nodes"]}
        )
        self.sources: dict[tuple[str, str], str] = {}
        for e in graph["edges"] if graph is not None else ():
            self.sources.setdefault((e["target"], e["param"]), e["source"])

    @property
    def producers(self) -> dict[str, tuple[str, str, Any]]:
        """Digest -> the node whose output it is, the output's name and its artifact (read
        from every call's record)."""
        if self._producers is None:
            found: dict[str, tuple[str, str, Any]] = {}
            for t in self._tasks:
                outputs = t.record.get("outputs")
                if t.status != "succeeded" or not isinstance(outputs, dict):
                    continue
                for name, art in outputs.items():
                    digest = _digest(art)
                    if digest is not None:
                        found.setdefault(digest, (t.node, str(name), art))
            self._producers = found
        return self._producers

    def cached_task(self, node: str) -> bool | None:
        if self.cached_nodes is None:
            return None
        return self.cached_nodes.get(graph_node(node))


def task_detail(
    run: RunView,
    task: TaskView,
    *,
    href: Href,
    context: Context | None = None,
    links: bool = True,
) -> dict[str, Any]:
    """Everything the task templates show about one call, as plain values and Markup."""
    context = context or Context(run)
    attempts = task.attempts
    reason: MissReason | None = miss_reason(
        run.store, task, cached_task=context.cached_task(task.node), memo=context.memo
    )
    return {
        "node": task.node,
        "name": task.name,
        "status": task.status,
        "cached": task.cached,
        "reused_from": task.reused_from,
        "started": task.started,
        "duration": task.duration,
        "key": task.key,
        "error": task.error,
        "inputs": _inputs(task, context, href),
        "outputs": _outputs(task),
        "attempts": [
            {
                "n": a.n,
                "status": a.status,
                "started": a.started,
                "duration": a.duration,
                "cpu": a.cpu,
                "peak_rss": a.peak_rss,
                "worker": a.worker,
                "error": a.error,
                "logs": _cut_log(a.logs) if a.has_logs else None,
            }
            for a in attempts
        ],
        "traceback": task.traceback,
        "miss": reason,
        "cards": cards_html(task.cards, links=links),
    }


def _inputs(task: TaskView, context: Context, href: Href) -> list[dict[str, Any]]:
    """Each input that came from the store: its token, the call that produced it and, when
    that call's output is this very value, a preview of it."""
    node_of_call = graph_node(task.node)
    rows = []
    for param, token in task.inputs.items():
        produced = context.producers.get(token)
        source = produced[0] if produced else context.sources.get((node_of_call, param))
        row: dict[str, Any] = {
            "param": param,
            "token": token,
            "source": source,
            "href": href(source) if source in context.calls else None,
            "preview": None,
            "error": None,
        }
        if produced is not None:
            node, name, art = produced
            _preview_stored(row, context.run[node], name, art)
        rows.append(row)
    return rows


def _preview_stored(row: dict[str, Any], task: TaskView, name: str, art: Any) -> None:
    """Fill ``row``'s ``preview`` (or ``error``) with output ``name`` of ``task``, whose
    artifact is ``art``: loaded only when the record says it is at most :data:`MAX_LOAD`
    bytes."""
    try:
        artifact = Artifact.from_dict(art)
    except ValueError as exc:
        row["error"] = f"the record names a malformed artifact: {short(str(exc))}"
        return
    row["size"] = artifact.size
    if artifact.size > MAX_LOAD:
        row["error"] = f"not loaded: {artifact.size:,} bytes is more than the page loads"
        return
    try:
        row["preview"] = preview(task.load(name))
    except Exception as exc:  # gone, damaged, untrusted class, a serializer's own error
        row["error"] = f"cannot be loaded: {short(str(exc), 600)}"


def _outputs(task: TaskView) -> dict[str, Any]:
    """``rows`` (name, digest, size, preview) or ``note``: why there is nothing to show."""
    found = task.record.get("outputs")
    if task.status != "succeeded":
        return {"rows": [], "note": f"no outputs: the call is {task.status}"}
    if not isinstance(found, dict) or not found:
        try:
            task.outputs  # noqa: B018 -- raises, saying why nothing was kept
        except (NoOutputError, Exception) as exc:  # OutputNotKeptError, ObjectCorrupt
            return {"rows": [], "note": str(exc)}
        return {"rows": [], "note": "no outputs recorded"}
    rows = []
    for name, art in found.items():
        rows.append(_output_row(task, str(name), art))
    return {"rows": rows, "note": None}


def _output_row(task: TaskView, name: str, art: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name, "digest": None, "size": None, "error": None}
    if art is None:
        row["error"] = "not kept (it could not be stored, or its task said keep=False)"
        return row
    row["digest"] = _digest(art)
    _preview_stored(row, task, name, art)
    return row


def _digest(art: Any) -> str | None:
    if not isinstance(art, dict):
        return None
    digest = art.get("digest")
    if isinstance(digest, str):
        return digest
    try:  # an inline artifact: its digest is computed from its bytes
        return Artifact.from_dict(art).digest
    except ValueError:
        return None


def _cut_log(text: str) -> Mapping[str, Any]:
    if len(text) <= MAX_LOG:
        return {"text": text, "cut": 0}
    half = MAX_LOG // 2
    return {"text": text[:half], "tail": text[-half:], "cut": len(text) - 2 * half}


__all__ = ["MAX_LOAD", "Context", "task_detail", "task_page", "task_section"]

"""The workflow page (``/workflows/{name}``): its runs over time, its recent runs, and the
graph of its latest run.

The chart is drawn here as inline SVG (``svg#duration-chart``): x is the start time, y the
duration, and each run a ``circle.point`` coloured by status, with ``data-run-id``,
``data-status``, a ``<title>`` tooltip, and a link to the run. A run with no duration yet
(running, lost) sits on the x axis. Run headers only are read (the newest
:data:`MAX_RUNS` of the workflow, through the runs page's :class:`HeaderCache`); the latest
run's graph is drawn by :func:`flowkit.ui.graphsvg.graph_svg`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from markupsafe import Markup, escape

from flowkit import runs
from flowkit.runview import RunView
from flowkit.store import Store
from flowkit.ui.graphsvg import graph_svg
from flowkit.ui.runlist import HeaderCache
from flowkit.ui.templating import format_duration, format_time, status_class

MAX_RUNS: Final = 500  # points on the chart
RECENT: Final = 20  # rows in the table

_W, _H = 900, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 16, 36


def workflow_runs(store: Store, name: str, cache: HeaderCache) -> tuple[list[RunView], bool]:
    """The newest :data:`MAX_RUNS` runs of workflow ``name`` (newest first), and whether it
    has more."""
    found: list[RunView] = []
    for run_id in runs.ids(store):
        view = cache.view(store, run_id)
        if view.workflow == name:
            if len(found) == MAX_RUNS:
                return found, True
            found.append(view)
    return found, False


def page_context(views: list[RunView], name: str, more: bool) -> dict[str, Any]:
    """What ``workflow.html`` needs for workflow ``name`` with runs ``views`` (not empty)."""
    latest = views[0]
    return {
        "name": name,
        "shown": views,
        "more": more,
        "recent": views[:RECENT],
        "latest": latest,
        "chart": duration_chart(views),
        "graph": latest_graph(latest),
    }


def latest_graph(run: RunView) -> Markup:
    """``run``'s graph, from its whole header (the header cache keeps only the fields the
    runs table shows, not the graph)."""
    return graph_svg(runs.view(run.store, run.id))


def duration_chart(views: Sequence[RunView]) -> Markup:
    """``svg#duration-chart``: one ``.point`` per run (x: start, y: duration)."""
    timed = [v for v in views if v.started is not None]
    starts = [v.started for v in timed if v.started is not None]
    durations = [d for v in timed if (d := v.duration) is not None and d >= 0]
    x0, x1 = (min(starts), max(starts)) if starts else (0.0, 1.0)
    y1 = max(durations, default=0.0) or 1.0
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def x(t: float) -> float:
        return _LEFT + (plot_w / 2 if x1 == x0 else (t - x0) / (x1 - x0) * plot_w)

    def y(d: float | None) -> float:
        return _TOP + plot_h - (0 if d is None or d < 0 else min(d, y1) / y1 * plot_h)

    parts = [_axes(x0, x1, y1, plot_w, plot_h)]
    for v in reversed(timed):  # oldest first, so the newest is drawn on top
        assert v.started is not None
        parts.append(_point(v, x(v.started), y(v.duration)))
    body = Markup("").join(parts)
    return Markup(
        '<svg id="duration-chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        'viewBox="0 0 {w} {h}" preserveAspectRatio="xMinYMin meet" aria-label="duration of '
        'each run by start time">{body}</svg>'
    ).format(w=_W, h=_H, body=body)


def _axes(x0: float, x1: float, y1: float, plot_w: float, plot_h: float) -> Markup:
    base, right = _TOP + plot_h, _LEFT + plot_w
    lines = [
        Markup('<line class="axis" x1="{l}" y1="{b}" x2="{r}" y2="{b}"/>').format(
            l=_LEFT, b=base, r=right
        ),
        Markup('<line class="axis" x1="{l}" y1="{t}" x2="{l}" y2="{b}"/>').format(
            l=_LEFT, t=_TOP, b=base
        ),
    ]
    for frac in (0.5, 1.0):
        at = base - frac * plot_h
        lines.append(
            Markup(
                '<line class="grid" x1="{l}" y1="{y:.1f}" x2="{r}" y2="{y:.1f}"/>'
                '<text class="axis-label" x="{tx}" y="{ty:.1f}" text-anchor="end">{label}</text>'
            ).format(l=_LEFT, r=right, y=at, tx=_LEFT - 6, ty=at + 4, label=_seconds(frac * y1))
        )
    lines.append(
        Markup('<text class="axis-label" x="{x}" y="{y}" text-anchor="end">0</text>').format(
            x=_LEFT - 6, y=base + 4
        )
    )
    below = base + 22
    lines.append(
        Markup('<text class="axis-label" x="{x}" y="{y}">{t}</text>').format(
            x=_LEFT, y=below, t=format_time(x0)
        )
    )
    if x1 != x0:
        lines.append(
            Markup('<text class="axis-label" x="{x}" y="{y}" text-anchor="end">{t}</text>').format(
                x=right, y=below, t=format_time(x1)
            )
        )
    return Markup("").join(lines)


def _seconds(value: float) -> str:
    """An axis label: ``250 ms`` below a second (runs of a few ms are common), else as the
    tables say durations."""
    return f"{value * 1000:.3g} ms" if value < 1 else format_duration(value)


def _point(view: RunView, cx: float, cy: float) -> Markup:
    tip = f"{view.id}\n{view.status} · started {format_time(view.started)}"
    tip += f" · {format_duration(view.duration)}"
    if view.error:
        tip += f"\n{view.error[:300]}"
    return Markup(
        '<a href="/runs/{id}"><circle class="point {cls}" data-run-id="{id}" '
        'data-status="{status}" cx="{cx:.1f}" cy="{cy:.1f}" r="5"><title>{tip}</title>'
        "</circle></a>"
    ).format(
        id=view.id,
        cls=status_class(view.status),
        status=view.status,
        cx=cx,
        cy=cy,
        tip=escape(tip),
    )


__all__ = ["MAX_RUNS", "RECENT", "duration_chart", "latest_graph", "page_context", "workflow_runs"]

"""A run's timeline as inline SVG: :func:`gantt_svg` (``svg#gantt``).

Every attempt of every call is a ``rect.bar`` (``data-node``, class ``status-<status>``,
a ``<title>`` tooltip naming the node and the duration) on a shared time axis, in the lane
of the worker that ran it (:attr:`flowkit.taskview.AttemptView.worker`, one ``text.lane``
each). Attempts with no worker recorded (older runs) are packed greedily into as few lanes
as never overlap; calls served from the cache or reused have no attempt and are drawn from
their own times in "cache" lanes.

A large run stays small: above :data:`COLLAPSE` bars, the bars of one node (a map's items
count as their map node) with one status that touch in the same lane (less than a pixel
apart) are merged into one bar with ``data-count``: 10,000 calls on 8 threads draw a few
hundred rectangles. The SVG is built as one string, no template per bar.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from markupsafe import Markup, escape

from flowkit.runview import RunView
from flowkit.taskview import TaskView
from flowkit.ui.nodeids import graph_node
from flowkit.ui.templating import format_duration

LABEL_W: Final = 210
CHART_W: Final = 900
LANE_H: Final = 22
BAR_H: Final = 14
AXIS_H: Final = 26
PAD: Final = 8
#: Above this many bars, touching bars of one node are merged.
COLLAPSE: Final = 2000
#: Lanes packed for attempts without a worker (and for cache hits), each.
MAX_PACKED: Final = 32
LANE_CHARS: Final = 30


@dataclass(slots=True)
class Bar:
    """One attempt (or one cache hit) on the timeline."""

    node: str
    start: float
    end: float
    status: str
    lane: str
    attempt: int = 0  # 0: a call served from the cache (or reused)
    count: int = 1


def bars(run: RunView, tasks: Sequence[TaskView] | None = None) -> list[Bar]:
    """Every attempt of the run's calls (and every cache hit) with its lane."""
    tasks = run.tasks if tasks is None else tasks
    now = _latest(run, tasks)
    found: list[Bar] = []
    unplaced: list[Bar] = []
    hits: list[Bar] = []
    for t in tasks:
        attempts = t.attempts
        if not attempts:
            if t.started is not None:
                end = t.ended if t.ended is not None else t.started
                status = "cached" if t.cached else t.status
                hits.append(Bar(t.node, t.started, end, status, "cache"))
            continue
        for a in attempts:
            if a.started is None:
                continue
            if a.ended is not None:
                end, status = a.ended, a.status
            else:  # still running (or lost): up to the latest time known
                end, status = max(now, a.started), "running"
            bar = Bar(t.node, a.started, end, status, a.worker or "", a.n)
            (found if a.worker else unplaced).append(bar)
    _pack(unplaced, "lane")
    _pack(hits, "cache")
    return found + unplaced + hits


def _latest(run: RunView, tasks: Iterable[TaskView]) -> float:
    ends = [t.ended for t in tasks if t.ended is not None]
    starts = [t.started for t in tasks if t.started is not None]
    if run.ended is not None:
        ends.append(run.ended)
    return max(ends + starts, default=0.0)


def _pack(found: list[Bar], prefix: str) -> None:
    """Lanes for bars without a worker: each bar in the lane that freed first, when free;
    else a new lane (at most :data:`MAX_PACKED`, then the lane that frees first)."""
    found.sort(key=lambda b: b.start)
    free: list[tuple[float, int]] = []  # (end, lane number)
    for bar in found:
        if free and (free[0][0] <= bar.start or len(free) >= MAX_PACKED):
            _, lane = heapq.heappop(free)
        else:
            lane = len(free) + 1
        heapq.heappush(free, (max(bar.end, bar.start), lane))
        bar.lane = f"{prefix} {lane}"


def merged(found: list[Bar], scale: float) -> list[Bar]:
    """Bars of one node and status that touch in one lane (under a pixel apart at
    ``scale`` pixels per second), merged; a map item counts as its map node."""
    groups: dict[tuple[str, str, str], list[Bar]] = defaultdict(list)
    for bar in found:
        groups[(bar.lane, graph_node(bar.node), bar.status)].append(bar)
    out: list[Bar] = []
    for (lane, _, status), group in groups.items():
        group.sort(key=lambda b: b.start)
        cur: Bar | None = None
        for bar in group:
            if cur is not None and (bar.start - cur.end) * scale < 1.0:
                cur.end = max(cur.end, bar.end)
                cur.count += bar.count
                continue
            if cur is not None:
                out.append(cur)
            cur = Bar(bar.node, bar.start, bar.end, status, lane, bar.attempt)
        if cur is not None:
            out.append(cur)
    for bar in out:
        if bar.count > 1:  # named by its node: a map's items merged
            bar.node = graph_node(bar.node)
    return out


def gantt_svg(run: RunView, tasks: Sequence[TaskView] | None = None) -> Markup:
    """The run's timeline as ``svg#gantt`` (see the module docstring)."""
    found = bars(run, tasks)
    if not found:
        return Markup('<p class="empty" id="gantt-empty">no call has started yet</p>')
    t0 = min(b.start for b in found)
    t1 = max(b.end for b in found)
    span = max(t1 - t0, 1e-3)
    scale = CHART_W / span
    if len(found) > COLLAPSE:
        found = merged(found, scale)
    lanes = _lane_order(found)
    height = AXIS_H + len(lanes) * LANE_H + PAD
    width = LABEL_W + CHART_W + PAD * 2
    parts = [
        f'<svg id="gantt" class="gantt" role="img" aria-label="timeline of the run\'s calls" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
    ]
    parts += _axis(span, scale, height)
    for i, lane in enumerate(lanes):
        y = AXIS_H + i * LANE_H
        label = lane if len(lane) <= LANE_CHARS else "…" + lane[-(LANE_CHARS - 1) :]
        parts.append(
            f'<text class="lane" x="{PAD}" y="{y + LANE_H / 2 + 4:.1f}">'
            f"<title>{escape(lane)}</title>{escape(label)}</text>"
        )
    row = {lane: i for i, lane in enumerate(lanes)}
    for bar in found:
        parts.append(_bar(bar, t0, scale, row[bar.lane]))
    parts.append("</svg>")
    return Markup("".join(parts))  # safe: every name went through escape()


def _lane_order(found: Sequence[Bar]) -> list[str]:
    """Worker lanes by their first start, then packed lanes, then cache lanes."""
    first: dict[str, float] = {}
    for bar in found:
        if bar.lane not in first or bar.start < first[bar.lane]:
            first[bar.lane] = bar.start

    def rank(lane: str) -> tuple[int, float, str]:
        group = 2 if lane.startswith("cache ") else 1 if lane.startswith("lane ") else 0
        return (group, first[lane], lane)

    return sorted(first, key=rank)


def _bar(bar: Bar, t0: float, scale: float, row: int) -> str:
    x = LABEL_W + PAD + (bar.start - t0) * scale
    w = max((bar.end - bar.start) * scale, 1.0)
    y = AXIS_H + row * LANE_H + (LANE_H - BAR_H) / 2
    took = format_duration(bar.end - bar.start)
    if bar.count > 1:
        tip = f"{bar.node}: {bar.count:,} calls, {bar.status}, {took} in all"
        extra = f' data-count="{bar.count}"'
    elif bar.attempt:
        tip = f"{bar.node} attempt {bar.attempt}: {bar.status}, {took}"
        extra = f' data-attempt="{bar.attempt}"'
    else:
        tip = f"{bar.node}: {bar.status} (served without running), {took}"
        extra = ""
    status = escape(bar.status)
    return (
        f'<rect class="bar status-{status}" data-node="{escape(bar.node)}"{extra} '
        f'x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{BAR_H}">'
        f"<title>{escape(tip)}</title></rect>"
    )


def _axis(span: float, scale: float, height: int) -> list[str]:
    step = nice_step(span / 8)
    parts = [
        f'<line class="axis" x1="{LABEL_W + PAD}" y1="{AXIS_H - 6}" '
        f'x2="{LABEL_W + PAD + CHART_W}" y2="{AXIS_H - 6}"/>'
    ]
    k = 0
    while k * step <= span * 1.0001 and k <= 100:
        x = LABEL_W + PAD + k * step * scale
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{AXIS_H - 6}" x2="{x:.1f}" y2="{height - PAD}"/>'
            f'<text class="axis-label tick" x="{x:.1f}" y="{AXIS_H - 10}" '
            f'text-anchor="middle">{escape(_tick(k * step))}</text>'
        )
        k += 1
    return parts


def nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``raw`` (tick spacing)."""
    if not raw > 0 or not math.isfinite(raw):
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * power >= raw:
            return float(m * power)
    return 10 * power  # pragma: no cover


def _tick(seconds: float) -> str:
    if seconds == 0:
        return "0"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:g}s"
    return format_duration(seconds)


__all__ = ["COLLAPSE", "Bar", "bars", "gantt_svg", "merged", "nice_step"]

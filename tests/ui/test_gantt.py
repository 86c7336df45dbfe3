"""The timeline (:mod:`flowkit.ui.gantt`): one bar per attempt in its worker's lane, packed
lanes when no worker was recorded, cache hits in their own lanes, ticks on the axis, and a
10,000-call run merged into few bars; the SVG is well-formed and escapes node names."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from flowkit.records import AttemptRecord, TaskRecord
from flowkit.runview import RunView
from flowkit.store import Store
from flowkit.taskview import TaskView
from flowkit.ui.gantt import COLLAPSE, bars, gantt_svg, nice_step

HOSTILE = '<script>alert(1)</script> " &'


def _run(tmp_path: Path, records: list[TaskRecord]) -> tuple[RunView, list[TaskView]]:
    store = Store(str(tmp_path / "store"))
    run = RunView(
        store, "r1", {"workflow": "w", "status": "succeeded", "started": 0.0, "ended": 100.0}
    )
    return run, [TaskView(r.to_dict(), store, "r1", True) for r in records]


def _call(
    node: str, start: float, end: float, worker: str | None, *, failed_first: bool = False
) -> TaskRecord:
    tries = []
    if failed_first:
        tries.append(AttemptRecord(1, start, start + 0.5, "failed", "boom", worker=worker))
    tries.append(
        AttemptRecord(len(tries) + 1, start + (0.5 if failed_first else 0), end, worker=worker)
    )
    return TaskRecord(
        name=node.split("[")[0],
        node=node,
        status="succeeded",
        attempts=len(tries),
        started=start,
        ended=end,
        tries=tries,
    )


def _rects(svg: str) -> list[ET.Element]:
    return [r for r in ET.fromstring(svg).iter("rect") if "bar" in (r.get("class") or "")]


def test_attempts_in_worker_lanes_with_ticks(tmp_path: Path) -> None:
    records = [
        _call("load", 10.0, 11.0, "vm:1:w-1"),
        _call("train[0]", 11.0, 13.0, "vm:1:w-1", failed_first=True),
        _call("train[1]", 11.0, 12.0, "vm:1:w-2"),
        _call(HOSTILE, 13.0, 14.0, "vm:1:<w3>"),
    ]
    run, tasks = _run(tmp_path, records)
    svg = str(gantt_svg(run, tasks))
    root = ET.fromstring(svg)
    assert root.get("id") == "gantt"
    rects = _rects(svg)
    assert len(rects) == 5  # one per attempt: train[0] has two
    assert {r.get("data-node") for r in rects} == {"load", "train[0]", "train[1]", HOSTILE}
    assert (
        next(r for r in rects if "status-failed" in (r.get("class") or "")).get("data-node")
        == "train[0]"
    )
    lanes = [t.itertext() for t in root.iter("text") if t.get("class") == "lane"]
    assert len(lanes) == 3
    assert "<script>" not in svg and "&lt;w3&gt;" in svg
    ticks = [t for t in root.iter("text") if "tick" in (t.get("class") or "")]
    assert len(ticks) >= 3 and ticks[0].text == "0"
    titles = [r.find("title").text for r in rects]  # type: ignore[union-attr]
    assert any(t and t.startswith("train[1] attempt 1: succeeded, 1.00s") for t in titles)


def test_without_workers_calls_are_packed_and_cache_hits_get_their_lanes(tmp_path: Path) -> None:
    records = [
        _call("a", 0.0, 2.0, None),
        _call("b", 1.0, 3.0, None),  # overlaps a: a second lane
        _call("c", 2.5, 4.0, None),  # fits after a in the first lane
        TaskRecord(name="d", node="d", status="succeeded", cached=True, started=4.0, ended=4.01),
    ]
    run, tasks = _run(tmp_path, records)
    found = {b.node: b.lane for b in bars(run, tasks)}
    assert found == {"a": "lane 1", "b": "lane 2", "c": "lane 1", "d": "cache 1"}
    svg = str(gantt_svg(run, tasks))
    assert "status-cached" in svg and "served without running" in svg


def test_ten_thousand_calls_merge_into_few_bars_quickly(tmp_path: Path) -> None:
    records = [_call("load", 0.0, 1.0, "h:1:w-0")]
    records += [
        _call(f"sq[{i}]", 1.0 + (i // 8) * 0.01, 1.0 + (i // 8) * 0.01 + 0.009, f"h:1:w-{i % 8}")
        for i in range(10_000)
    ]
    run, tasks = _run(tmp_path, records)
    svg = str(gantt_svg(run, tasks))
    rects = _rects(svg)
    assert len(rects) < COLLAPSE
    assert sum(int(r.get("data-count") or 1) for r in rects) == 10_001
    assert {r.get("data-node") for r in rects} == {"load", "sq"}
    assert len(svg) < 1_000_000


def test_nothing_started_is_a_note(tmp_path: Path) -> None:
    run, tasks = _run(tmp_path, [TaskRecord(name="a", node="a")])
    assert "no call has started" in str(gantt_svg(run, tasks))


def test_nice_steps() -> None:
    assert [nice_step(x) for x in (0.3, 1.0, 1.5, 3.0, 7.0, 42.0)] == [
        0.5,
        1.0,
        2.0,
        5.0,
        10.0,
        50.0,
    ]
    assert nice_step(0.0) == 1.0 and nice_step(float("nan")) == 1.0

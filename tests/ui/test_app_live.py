"""The status JSON of ``/api/runs/{id}/status`` (:mod:`flowkit.ui.live`) on planted runs: a
graph whose nodes have records or not yet, a map whose items are still coming, a run that
ended, one with more calls than the JSON lists one by one, and one recorded before runs kept
their graph. Also: the run and task pages answer 503 while their modules are not built.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from flowkit import runs
from flowkit.lifecycle import this_host
from flowkit.store import Store
from flowkit.ui import live
from flowkit.ui.app import create_app

RUN_ID = "20990101T000000.000000-abcdef"
# load -> train (a map) -> best -> report; extra reads load too
GRAPH = {
    "nodes": [
        {"id": "load", "task": "load", "kind": "task", "cache": False},
        {"id": "train", "task": "train", "kind": "map", "cache": True},
        {"id": "best", "task": "best", "kind": "task", "cache": False},
        {"id": "report", "task": "report", "kind": "task", "cache": False},
        {"id": "extra", "task": "extra", "kind": "task", "cache": False},
    ],
    "edges": [
        {"source": "load", "target": "train", "param": "data"},
        {"source": "train", "target": "best", "param": "models"},
        {"source": "best", "target": "report", "param": "model"},
        {"source": "load", "target": "extra", "param": "data"},
    ],
    "inputs": ["n"],
    "output": ["report"],
}


def record(node: str, status: str = "succeeded", cached: bool = False) -> dict[str, Any]:
    name = node.split("[")[0]
    now = time.time()
    return {"name": name, "node": node, "status": status, "cached": cached, "attempts": 1,
            "started": now, "ended": now + 0.1}  # fmt: skip


def plant(
    path: Path,
    status: str,
    records: list[dict[str, Any]],
    graph: Any = GRAPH,
    pid: int = os.getpid(),
) -> runs.RunView:
    store = Store(str(path))
    store.check()
    header: dict[str, Any] = {
        "id": RUN_ID,
        "workflow": "pipeline",
        "status": status,
        "started": time.time(),
        "ended": None if status == "running" else time.time() + 1,
        "pid": pid,
        "host": this_host(),
        "heartbeat": time.time(),
        "inputs": {},
        "summary": {"run": 0, "cached": 0, "failed": 0},
    }
    if graph is not None:
        header["graph"] = graph
    store.write_run(RUN_ID, header)
    store.write_task_records(RUN_ID, 0, records)
    return runs.get(RUN_ID, store=str(path))


def test_a_running_run_nodes_ready_run_the_rest_wait(tmp_path: Path) -> None:
    items = [record("train[0]"), record("train[1]", cached=True)]
    run = plant(tmp_path, "running", [record("load"), *items])
    assert live.node_statuses(run) == {
        "load": "succeeded",
        "train": "running",  # items recorded, nothing reading it has a record yet
        "best": "pending",
        "report": "pending",
        "extra": "running",  # everything it reads succeeded
    }
    doc = live.status_doc(run)
    assert doc["summary"] == {"run": 2, "cached": 1, "failed": 0}  # from the records so far
    assert doc["nodes"]["train[1]"] == "succeeded"


def test_a_map_is_done_once_a_reader_has_a_record_and_failed_if_an_item_failed(
    tmp_path: Path,
) -> None:
    done = [record("load"), record("train[0]"), record("train[1]"), record("best")]
    assert live.node_statuses(plant(tmp_path, "running", done))["train"] == "succeeded"
    failing = [record("load"), record("train[0]"), record("train[1]", "failed")]
    statuses = live.node_statuses(plant(tmp_path, "running", failing))
    assert statuses["train"] == "failed" and statuses["best"] == "pending"


@pytest.mark.parametrize(
    ("status", "unrecorded"),
    [("failed", "skipped"), ("interrupted", "pending"), ("lost", "pending")],
)
def test_nodes_without_records_in_a_run_that_ended(
    tmp_path: Path, status: str, unrecorded: str
) -> None:
    planted = "running" if status == "lost" else status
    run = plant(tmp_path, planted, [record("load"), record("train[0]", "failed")], pid=999_999_999)
    assert run.status == status  # a running header whose pid is gone is lost
    statuses = live.node_statuses(run)
    assert statuses["train"] == "failed"
    assert statuses["best"] == statuses["report"] == statuses["extra"] == unrecorded


def test_a_run_recorded_before_graphs_were_kept_gets_its_nodes_from_its_calls(
    tmp_path: Path,
) -> None:
    run = plant(tmp_path, "succeeded", [record("load"), record("sq[0]"), record("sq[1]")], None)
    assert live.node_statuses(run) == {"load": "succeeded", "sq": "succeeded"}
    nodes = live.graph_nodes(run)
    assert [(n["id"], n["kind"]) for n in nodes] == [("load", "task"), ("sq", "map")]


def test_a_big_run_lists_its_graph_nodes_only(tmp_path: Path) -> None:
    items = [record(f"train[{i}]") for i in range(live.MAX_CALLS + 1)]
    run = plant(tmp_path, "succeeded", [record("load"), *items, record("best")])
    doc = live.status_doc(run)
    assert set(doc["nodes"]) == {"load", "train", "best", "report", "extra"}
    assert doc["summary"] == {"run": 0, "cached": 0, "failed": 0}  # the header's, once ended


def test_the_status_route_serves_the_document(tmp_path: Path) -> None:
    plant(tmp_path, "running", [record("load")])
    with TestClient(create_app(str(tmp_path))) as c:
        r = c.get(f"/api/runs/{RUN_ID[:20]}/status")
    assert r.status_code == 200 and r.json()["nodes"]["train"] == "running"

"""A run announced as ``submitted`` (``flowkit submit`` writes its header before the Ray job
starts it) is adopted by ``fk.run(run_id=...)``; any other run of that id is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import flowkit as fk
from flowkit.records import new_run_id
from flowkit.store import Store


@fk.task
def double(x: int) -> int:
    return 2 * x


@fk.workflow
def flow(x: int = 2) -> int:
    return double(x)


def _announce(store: Store, run_id: str, **extra: Any) -> None:
    header = {
        "id": run_id,
        "workflow": "flow",
        "status": "submitted",
        "started": 1.0,
        "tags": {"ray_job": "flowkit-" + run_id, "team": "ml"},
        **extra,
    }
    store.write_run(run_id, header)


def test_a_submitted_run_is_adopted_and_keeps_its_tags(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    store.check()
    run_id = new_run_id()
    _announce(store, run_id)
    assert fk.runs.get(run_id, store=store).status == "submitted"
    assert [v.id for v in fk.runs.list(store=store, status="submitted")] == [run_id]
    run = fk.run(flow, store=store, run_id=run_id, tags={"team": "infra"}, x=4)
    assert run.output == 8
    seen = fk.runs.get(run_id, store=store)
    assert seen.status == "succeeded"
    # the run's own tags win over the announced ones; the others are kept
    assert seen.tags == {"ray_job": "flowkit-" + run_id, "team": "infra"}
    # adopted once: the finished run is not adopted again
    with pytest.raises(fk.FlowkitError, match="already in the store"):
        fk.run(flow, store=store, run_id=run_id)


@pytest.mark.parametrize("status", ["running", "succeeded", "failed", "lost", None, 7])
def test_a_run_of_any_other_status_is_refused(tmp_path: Path, status: Any) -> None:
    store = Store(str(tmp_path / "s"))
    store.check()
    run_id = new_run_id()
    _announce(store, run_id, status=status)
    with pytest.raises(fk.FlowkitError, match="already in the store"):
        fk.run(flow, store=store, run_id=run_id)
    assert store.read_doc(f"runs/{run_id}/run.json").get("status") == status  # untouched


def test_a_submitted_header_beside_task_records_is_refused(tmp_path: Path) -> None:
    """A folder holding more than the announcement has seen a run: never adopted."""
    store = Store(str(tmp_path / "s"))
    store.check()
    run_id = new_run_id()
    _announce(store, run_id)
    store.write_task_records(run_id, 0, [])
    with pytest.raises(fk.FlowkitError, match="already in the store"):
        fk.run(flow, store=store, run_id=run_id)


@pytest.mark.parametrize("tags", ["ray_job=x", ["a"], {"a": 1}, {1: "a"}])
def test_planted_tags_in_an_announcement_are_ignored_not_fatal(tmp_path: Path, tags: Any) -> None:
    store = Store(str(tmp_path / "s"))
    store.check()
    run_id = new_run_id()
    _announce(store, run_id, tags=tags)
    run = fk.run(flow, store=store, run_id=run_id)
    assert run.status == "succeeded"
    assert all(isinstance(v, str) for v in fk.runs.get(run_id, store=store).tags.values())

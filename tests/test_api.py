"""``fk.run``: arguments, defaults from the environment, the Run record, and calling a workflow."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import flowkit as fk
from flowkit.records import AttemptRecord, Run, TaskRecord, new_run_id


@fk.task
def double(x: int) -> int:
    return 2 * x


@fk.task(cache=True)
def cached_inc(x: int) -> int:
    return x + 1


@fk.task
def explode(x: int) -> int:
    raise ArithmeticError(f"cannot handle {x}")


@fk.workflow
def pipeline(x: int, extra: int = 0) -> int:
    return double(cached_inc(x))


@fk.workflow
def failing(x: int) -> int:
    return double(explode(x))


@pytest.fixture(autouse=True)
def no_env_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWKIT_STORE", raising=False)
    monkeypatch.delenv("FLOWKIT_BACKEND", raising=False)


# -- arguments ---------------------------------------------------------------------------------


def test_run_returns_the_record(tmp_path: Path) -> None:
    run = fk.run(pipeline, x=3, store=str(tmp_path / "s"))
    assert isinstance(run, Run)
    assert run.output == 8
    assert run.status == "succeeded" and run.error is None
    assert run.workflow == "pipeline" and run.backend == "local"
    assert run.inputs == {"x": 3, "extra": 0}  # defaults included
    assert run.ended is not None and run.duration is not None
    assert run.duration == run.ended - run.started >= 0
    assert run.summary() == {"run": 2, "cached": 0, "failed": 0}


def test_task_records(tmp_path: Path) -> None:
    run = fk.run(pipeline, x=3, store=str(tmp_path / "s"))
    inc, dbl = run.tasks
    assert isinstance(inc, TaskRecord)
    assert (inc.name, inc.node, inc.status, inc.cached, inc.attempts, inc.error) == (
        "cached_inc", "cached_inc", "succeeded", False, 1, None,
    )  # fmt: skip
    assert isinstance(inc.key, str) and len(inc.key) >= 32
    assert isinstance(dbl.key, str) and dbl.key != inc.key  # kept calls are keyed (resume)
    for rec in run.tasks:
        assert rec.started is not None and rec.ended is not None
        assert run.started <= rec.started <= rec.ended <= (run.ended or 0)
        assert rec.duration == rec.ended - rec.started
    again = fk.run(pipeline, x=3, store=str(tmp_path / "s"))
    assert [t.cached for t in again.tasks] == [True, False]
    assert again.tasks[0].key == inc.key
    assert again.summary() == {"run": 1, "cached": 1, "failed": 0}


def test_run_ids_are_unique_and_sortable(tmp_path: Path) -> None:
    runs = [fk.run(pipeline, x=i, store=str(tmp_path / "s")) for i in range(3)]
    ids = [r.id for r in runs]
    assert len(set(ids)) == 3
    assert sorted(ids) == ids
    assert len({new_run_id() for _ in range(1000)}) == 1000
    listed = [h["id"] for h in fk.Store(str(tmp_path / "s")).list_runs()]
    assert listed == ids[::-1]  # newest first


def test_not_a_workflow(tmp_path: Path) -> None:
    with pytest.raises(fk.FlowkitError, match="expects a workflow"):
        fk.run(double, x=1, store=str(tmp_path / "s"))  # type: ignore[arg-type]


def test_bad_cache_mode(tmp_path: Path) -> None:
    with pytest.raises(fk.FlowkitError, match=r"cache='sometimes'.*True, False or 'refresh'"):
        fk.run(pipeline, x=1, store=str(tmp_path / "s"), cache="sometimes")


@pytest.mark.parametrize("form", ["path", "file-url", "store-object"])
def test_store_forms(tmp_path: Path, form: str) -> None:
    root = tmp_path / "data"
    store: Any = {
        "path": str(root),
        "file-url": f"file://{root}",
        "store-object": fk.Store(str(root)),
    }[form]
    run = fk.run(pipeline, x=1, store=store)
    assert (root / "runs" / run.id / "run.json").exists()
    assert fk.run(pipeline, x=1, store=store).tasks[0].cached


def test_memory_store() -> None:
    url = f"memory://fk-api-{os.getpid()}-{new_run_id()}"
    first = fk.run(pipeline, x=1, store=url)
    second = fk.run(pipeline, x=1, store=url)
    assert second.tasks[0].cached and second.output == first.output == 4
    header, _ = fk.Store(url).read_run(second.id)
    assert header["status"] == "succeeded"


def test_a_folder_that_is_not_a_store_is_refused_before_running(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(fk.StoreError, match="not a flowkit store"):
        fk.run(pipeline, x=1, store=str(tmp_path / "photos"))


def test_backend_instance(tmp_path: Path) -> None:
    run = fk.run(
        pipeline, x=2, store=str(tmp_path / "s"), backend=fk.backends.ThreadsBackend(max_workers=2)
    )
    assert run.output == 6 and run.backend == "threads"


# -- failures ----------------------------------------------------------------------------------


def test_failed_run_is_saved_and_named_in_the_error(tmp_path: Path) -> None:
    ends: list[Run] = []

    class Ends(fk.Callback):
        def on_run_end(self, run: Run) -> None:
            ends.append(run)

    with pytest.raises(fk.TaskFailedError) as info:
        fk.run(failing, x=7, store=str(tmp_path / "s"), callbacks=[Ends()])
    err = info.value
    (run,) = ends
    assert err.run_id == run.id and run.status == "failed"
    assert run.error is not None and "cannot handle 7" in run.error
    assert [(t.name, t.status) for t in run.tasks] == [("explode", "failed")]
    assert "ArithmeticError: cannot handle 7" in (run.tasks[0].error or "")
    header, tasks = fk.Store(str(tmp_path / "s")).read_run(err.run_id)
    assert header["status"] == "failed" and header["ended"] is not None
    assert [(t["name"], t["status"]) for t in tasks] == [("explode", "failed")]


# -- environment defaults and calling a workflow ------------------------------------------------


def test_defaults_without_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = fk.run(pipeline, x=1)
    assert run.backend == "local"
    assert (tmp_path / ".flowkit" / "runs" / run.id / "run.json").exists()


def test_environment_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWKIT_STORE", str(tmp_path / "env-store"))
    monkeypatch.setenv("FLOWKIT_BACKEND", "threads")
    run = fk.run(pipeline, x=1)
    assert run.backend == "threads"
    assert (tmp_path / "env-store" / "runs" / run.id).is_dir()
    assert not (tmp_path / ".flowkit").exists()
    # explicit arguments win over the environment
    explicit = fk.run(pipeline, x=1, backend="local", store=str(tmp_path / "other"))
    assert explicit.backend == "local" and (tmp_path / "other" / "runs" / explicit.id).is_dir()


def test_unknown_backend_in_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWKIT_BACKEND", "warp-drive")
    with pytest.raises(fk.BackendNotFoundError, match="warp-drive"):
        fk.run(pipeline, x=1, store=str(tmp_path / "s"))


def test_calling_a_workflow_runs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWKIT_STORE", str(tmp_path / "s"))
    monkeypatch.setenv("FLOWKIT_BACKEND", "threads")
    assert pipeline(5) == fk.run(pipeline, x=5).output == 12
    assert pipeline(x=5, extra=1) == 12
    headers = fk.Store(str(tmp_path / "s")).list_runs()
    assert len(headers) == 3 and {h["backend"] for h in headers} == {"threads"}
    assert {json.dumps(h["inputs"], sort_keys=True) for h in headers} == {
        '{"extra": 0, "x": 5}',
        '{"extra": 1, "x": 5}',
    }
    with pytest.raises(fk.TaskFailedError):
        failing(1)
    with pytest.raises(fk.TypeMismatchError):
        pipeline("five")  # type: ignore[arg-type]


# -- records round-trip --------------------------------------------------------------------------


def test_records_round_trip() -> None:
    rec = TaskRecord(name="t", node="t[3]", key="k", status="succeeded", cached=True, attempts=2,
                     started=1.0, ended=3.5, error=None)  # fmt: skip
    d = rec.to_dict()
    assert "duration" not in d and rec.duration == 2.5  # derived: not written
    assert TaskRecord.from_dict(json.loads(json.dumps(d))) == rec
    run = Run(id="r", workflow="w", inputs={"a": (1, 2), "b": object()}, tasks=[rec])
    header = json.loads(json.dumps(run.to_dict()))
    assert header["inputs"]["a"] == [1, 2] and header["inputs"]["b"].startswith("<object")
    assert header["duration"] is None and header["summary"] == {"run": 0, "cached": 1, "failed": 0}


@fk.task
def echo_store(store: str) -> str:
    return store


@fk.workflow
def named_store(store: str) -> str:
    return echo_store(store)


def test_an_input_named_like_a_run_option_goes_in_inputs(tmp_path: Path) -> None:
    run = fk.run(named_store, inputs={"store": "eu-west"}, store=str(tmp_path / "s"))
    assert run.output == "eu-west"


def test_a_record_says_the_calls_start_and_end_once() -> None:
    first = AttemptRecord(1, 1.0, 2.0, status="failed", error="E: x", traceback="tb", logs="a\n")
    second = AttemptRecord(2, 2.5, 3.25, logs="b\n", cpu=0.1234567, peak_rss=1 << 20)
    rec = TaskRecord(name="t", node="t", status="succeeded", attempts=2, started=1.0,
                     ended=3.25, tries=[first, second])  # fmt: skip
    d = json.loads(json.dumps(rec.to_dict()))
    assert "started" not in d["tries"][0] and "ended" not in d["tries"][1]
    back = TaskRecord.from_dict(d)
    assert back.tries[0] == first and back.tries[1].started == 2.5 and back.tries[1].ended == 3.25
    assert back.tries[1].cpu == 0.123457  # to the microsecond
    assert back.logs == "a\nb\n" and back.traceback == "tb"


@fk.task
def which_run(n: int) -> str:
    return fk.current_run_id() or "none"


@fk.workflow
def which_runs(ns: list[int]) -> list[str]:
    return which_run.map(n=ns)


@pytest.mark.parametrize("backend", ["local", "threads", "processes"])
def test_a_task_knows_its_run(tmp_path: Path, backend: str) -> None:
    run = fk.run(which_runs, ns=[1, 2], store=str(tmp_path), backend=backend)
    assert run.output == [run.id, run.id]
    assert fk.current_run_id() is None and which_run(1) == "none"  # outside a run: None

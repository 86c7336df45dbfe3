"""A started fire is announced in the store before its process runs (``submitted``, with its
pid and log), so a process that dies before it starts the run shows as ``lost`` instead of
leaving no trace; a run that starts adopts the announcement and its tags."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

import flowkit as fk
from flowkit.automation import announce
from flowkit.automation import launch as launch_mod
from flowkit.automation.launch import Launch
from flowkit.cli import main
from flowkit.records import new_run_id
from flowkit.store import Store

GOOD = """
import flowkit as fk

@fk.task
def double(x: int) -> int:
    return 2 * x

@fk.workflow
def w(x: int = 1) -> int:
    return double(x)
"""


@fk.task
def one() -> int:
    return 1


@fk.workflow
def noop() -> int:
    return one()


def _settled(store: str, run_id: str, *, timeout: float = 120.0) -> fk.runs.RunView:
    """The run once its status is no longer submitted or running (bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = fk.runs.get(run_id, store=store)
        if seen.status not in ("submitted", "running") or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def _launch(tmp_path: Path, target: str, **params: str) -> Launch:
    return Launch(
        target=target,
        run_id=new_run_id(),
        store=str(tmp_path / "s"),
        params=params,
        tags={"schedule": "nightly"},
    )


def test_a_process_that_dies_before_the_run_starts_shows_as_lost_with_its_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.py").write_text("raise ImportError('this file no longer imports')\n")
    launch = _launch(tmp_path, f"{tmp_path / 'broken.py'}:w")
    Store(launch.store).check()
    launch_mod.start(launch, log_dir=tmp_path / "logs")
    seen = _settled(launch.store, launch.run_id)
    assert seen.status == "lost"
    assert seen.tags == {"schedule": "nightly"} and seen.workflow == "w"
    log_path = seen.header["log"]
    assert log_path == str(tmp_path / "logs" / f"{launch.run_id}.log")
    assert "this file no longer imports" in Path(log_path).read_text()
    assert main(["runs", "show", launch.run_id, "--store", launch.store]) == 0
    shown = capsys.readouterr().out
    assert "lost" in shown and log_path in shown


def test_a_run_that_starts_adopts_its_announcement(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(GOOD)
    launch = _launch(tmp_path, f"{tmp_path / 'good.py'}:w", x="21")
    Store(launch.store).check()
    launch_mod.start(launch, log_dir=tmp_path / "logs")
    first = fk.runs.get(launch.run_id, store=launch.store)  # there at once
    assert first.status in ("submitted", "running", "succeeded")
    seen = _settled(launch.store, launch.run_id)
    assert (seen.status, seen.output, seen.tags) == ("succeeded", 42, {"schedule": "nightly"})


def test_a_process_that_cannot_be_started_marks_the_run_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    launch = _launch(tmp_path, f"{tmp_path / 'good.py'}:w")
    Store(launch.store).check()
    with pytest.raises(OSError, match="Too many open files"):
        launch_mod.start(launch, log_dir=tmp_path / "logs")
    seen = fk.runs.get(launch.run_id, store=launch.store)
    assert seen.status == "failed" and "Too many open files" in (seen.error or "")


def test_an_announcement_never_overwrites_a_run_already_there(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    store.check()
    done = fk.run(noop, store=store)
    launch = Launch(target="x.py:w", run_id=done.id, store=store.url)
    assert announce.announce_local(store, launch, "/dev/null") is False
    announce.started(store, done.id, 12345)  # not submitted: left alone
    announce.not_started(store, done.id, "boom")
    kept = fk.runs.get(done.id, store=store)
    assert (kept.status, kept.header.get("pid")) == ("succeeded", done.pid)

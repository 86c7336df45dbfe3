"""``flowkit runs logs RUN --follow``: each call's logs as it is recorded, until the run ends
(a run in another process, held mid-way by a flag file; no timing assumed)."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flowkit.cli import main
from flowkit.records import new_run_id
from flowkit.store import Store

WF = """
import os
import time

import flowkit as fk


@fk.task
def first(flag: str) -> int:
    print("first says one")
    return 1


@fk.task
def second(x: int, flag: str) -> int:
    while not os.path.exists(flag):  # held until the test has seen the first call's logs
        time.sleep(0.02)
    print("second says two")
    return x + 1


@fk.workflow
def held(flag: str) -> int:
    return second(first(flag), flag)
"""

GUARD = 120.0  # seconds: only for a broken follower, never reached when it works


def _lines(stream: object) -> queue.Queue[str | None]:
    found: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stream:  # type: ignore[attr-defined]
            found.put(line)
        found.put(None)

    threading.Thread(target=read, daemon=True).start()
    return found


def _until(found: queue.Queue[str | None], text: str) -> list[str]:
    seen: list[str] = []
    while True:
        line = found.get(timeout=GUARD)
        if line is None:
            pytest.fail(f"the follower ended before printing {text!r}: {seen}")
        seen.append(line)
        if text in line:
            return seen


def test_follow_prints_calls_as_they_finish_and_stops_with_the_run(tmp_path: Path) -> None:
    (tmp_path / "wf.py").write_text(WF)
    store, flag, run_id = str(tmp_path / "s"), str(tmp_path / "flag"), new_run_id()
    env = {**os.environ, "FLOWKIT_STORE": store}
    flowkit = [sys.executable, "-m", "flowkit"]
    run = subprocess.Popen(
        [*flowkit, "run", "wf.py", "--run-id", run_id, "--flag", flag, "-q"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    follower = None
    try:
        deadline = time.monotonic() + GUARD
        while not os.path.exists(os.path.join(store, "runs", run_id, "run.json")):
            assert run.poll() is None and time.monotonic() < deadline, run.stderr
            time.sleep(0.05)
        follower = subprocess.Popen(
            [*flowkit, "runs", "logs", run_id, "--follow"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        found = _lines(follower.stdout)
        before = _until(found, "first says one")
        assert not any("two" in line for line in before)
        assert Store(store).read_run(run_id)[0]["status"] == "running"  # still held
        Path(flag).touch()
        after = _until(found, "second says two")
        assert "[second]\n" in after
        assert found.get(timeout=GUARD) is None  # it stops once the run has ended
        assert follower.wait(GUARD) == 0
        assert run.wait(GUARD) == 0
    finally:
        Path(flag).touch()
        for proc in (follower, run):
            if proc is None:
                continue
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


def test_follow_and_attempt_do_not_mix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "logs", "r", "n", "--attempt", "1", "--follow"]) == 2
    assert "drop --attempt" in capsys.readouterr().err

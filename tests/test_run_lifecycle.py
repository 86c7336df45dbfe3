"""A run's life as readers see it: interrupted by SIGINT or SIGTERM with every finished call
recorded, lost when its process is killed, a heartbeat while it runs.

The runs are real processes running a workflow whose second call waits for a file that never
comes; the test signals them once the first call's record is in the store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flowkit import lifecycle
from flowkit.store import Store

FLOW = """
import sys, time
import flowkit as fk

@fk.task
def quick(n: int) -> int:
    return n + 1

@fk.task
def stuck(n: int) -> int:
    with open(sys.argv[2], "w") as f:
        f.write("started")
    while True:
        time.sleep(0.05)

@fk.workflow
def wf(n: int) -> int:
    return stuck(quick(n))

fk.run(wf, n=1, store=sys.argv[1])
"""

GUARD = 60.0  # seconds: a guard against hanging, never an assertion on speed


def start(tmp_path: Path) -> tuple[subprocess.Popen[str], Store, Path]:
    script = tmp_path / "flow.py"
    script.write_text(textwrap.dedent(FLOW))
    started = tmp_path / "started"
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWKIT_")}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store), str(started)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + GUARD
    while not started.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the stuck task never started"
        time.sleep(0.05)
    return proc, Store(store), started


def the_run(store: Store) -> tuple[dict[str, object], list[dict[str, object]]]:
    (header,) = store.list_runs()
    return store.read_run(str(header["id"]))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signalled_run_is_interrupted_with_its_finished_calls(tmp_path: Path, sig: int) -> None:
    proc, store, _ = start(tmp_path)
    proc.send_signal(sig)
    proc.communicate(timeout=GUARD)
    assert proc.returncode != 0
    header, tasks = the_run(store)
    assert header["status"] == "interrupted"
    assert {(t["node"], t["status"]) for t in tasks} >= {("quick", "succeeded")}
    assert header["pid"] == proc.pid and header["host"] == lifecycle.this_host()


def test_a_killed_run_is_lost_and_listed_as_such(tmp_path: Path) -> None:
    proc, store, _ = start(tmp_path)
    header, _ = the_run(store)
    assert header["status"] == "running"  # alive: its pid answers
    proc.kill()
    proc.communicate(timeout=GUARD)
    header, _ = the_run(store)
    assert header["status"] == "lost"
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "flowkit",
            "runs",
            "list",
            "--store",
            str(store.root),
            "--status",
            "lost",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=GUARD,
        check=True,
    )
    assert [h["id"] for h in json.loads(listed.stdout)] == [header["id"]]


def test_status_seen_by_readers() -> None:
    now = 1_000_000.0
    here, gone = lifecycle.this_host(), 2**22 + 12345  # a pid above the default pid_max
    alive = {"status": "running", "host": here, "pid": os.getpid(), "heartbeat": now - 1}
    assert lifecycle.seen_status(alive, now) == "running"
    assert lifecycle.seen_status({**alive, "pid": gone}, now) == "lost"
    elsewhere = {**alive, "host": "another-machine", "pid": gone}
    assert lifecycle.seen_status(elsewhere, now) == "running"  # cannot see its pid: trust the beat
    silent = {**elsewhere, "heartbeat": now - lifecycle.LOST_AFTER_SECONDS - 1}
    assert lifecycle.seen_status(silent, now) == "lost"
    old = {"status": "running", "started": now - 3600}  # a header without the new fields
    assert lifecycle.seen_status(old, now) == "lost"
    for done in ("succeeded", "failed", "interrupted"):
        assert lifecycle.seen_status({**silent, "status": done}, now) == done


def test_the_heartbeat_rewrites_the_header(tmp_path: Path) -> None:
    beats: list[float] = []
    with lifecycle.Heartbeat(lambda: beats.append(time.time()), every=0.01):
        deadline = time.monotonic() + GUARD
        while len(beats) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(beats) >= 3
    count = len(beats)
    time.sleep(0.05)
    assert len(beats) == count  # stopped with the block

"""Observing what tasks and runs did: files in a per-test folder (attempts, marks) and a
callback that records every event.

Files, never shared memory, so the same checks hold for in-process, threaded and
multi-process backends (workers must see the driver's filesystem).
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from flowkit.callbacks import Callback, Output
from flowkit.records import Run, TaskRecord

_RENDEZVOUS_TIMEOUT = 10.0  # only reached when two "concurrent" calls do not overlap


def record_attempt(folder: str, key: str) -> int:
    """Append the current time to ``folder/key.attempts``; return this attempt's number."""
    path = os.path.join(folder, f"{key}.attempts")
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{time.time()!r}\n")
    return len(attempt_times(folder, key))


def attempt_times(folder: str, key: str) -> list[float]:
    """The times recorded by :func:`record_attempt` for ``key``, in order."""
    path = os.path.join(folder, f"{key}.attempts")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [float(line) for line in f if line.strip()]


def mark(folder: str, name: str) -> None:
    """Create ``folder/name.mark`` (atomically, so a reader never sees it half-written)."""
    tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(repr(time.time()))
    os.replace(tmp, os.path.join(folder, f"{name}.mark"))


def is_marked(folder: str, name: str) -> bool:
    return os.path.exists(os.path.join(folder, f"{name}.mark"))


def wait_for_mark(folder: str, name: str, timeout: float) -> bool:
    """Poll for ``folder/name.mark``; True when it appeared within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not is_marked(folder, name):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


class Recorder(Callback):
    """A callback that keeps every event as a tuple, for assertions."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_run_start(self, run: Run) -> None:
        self.events.append(("run_start", run.id))

    def on_task_start(self, record: TaskRecord) -> None:
        self.events.append(("start", record.node))

    def on_task_end(self, record: TaskRecord, output: Output) -> None:
        self.events.append(("end", record.node, record.cached, output.value))

    def on_task_error(self, record: TaskRecord, error: BaseException) -> None:
        self.events.append(("error", record.node, error))

    def on_run_end(self, run: Run) -> None:
        self.events.append(("run_end", run.id, run.status))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[0] == kind]


def records_named(run: Run, name: str) -> list[TaskRecord]:
    """The task records of ``run`` for task ``name``, in call order."""
    return [t for t in run.tasks if t.name == name]

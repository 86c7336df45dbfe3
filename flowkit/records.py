"""What a run leaves behind: one :class:`TaskRecord` per task call and one :class:`Run`.

Both are plain data; they round-trip through JSON (``to_dict`` / ``from_dict``) so the
store can keep them and ``flowkit runs show`` can read them back in another process.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

TaskStatus = Literal["pending", "running", "succeeded", "failed", "skipped"]
# "interrupted": stopped by SIGINT/SIGTERM (every finished call recorded); "lost": found
# "running" by a reader whose process is gone (see flowkit.lifecycle), never written by a run.
RunStatus = Literal["running", "succeeded", "failed", "interrupted", "lost"]


@dataclass(slots=True)
class TaskRecord:
    """One call of one task. ``node`` is the graph node id (``train[3]`` for a map item)."""

    name: str
    node: str
    key: str | None = None
    status: TaskStatus = "pending"
    cached: bool = False
    attempts: int = 0
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    outputs: list[str | None] | None = None  # artifact digests of the outputs kept in the store

    @property
    def duration(self) -> float | None:
        """Seconds from the first attempt's start to the end, or None while running."""
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started

    def to_dict(self) -> dict[str, Any]:
        # Written by hand: dataclasses.asdict deep-copies, far slower on this hot path
        # (benchmarks/RESULTS.md, Design measurements).
        return {
            "name": self.name,
            "node": self.node,
            "key": self.key,
            "status": self.status,
            "cached": self.cached,
            "attempts": self.attempts,
            "started": self.started,
            "ended": self.ended,
            "duration": self.duration,
            "error": self.error,
            "outputs": self.outputs,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskRecord:
        d = {k: v for k, v in d.items() if k != "duration"}
        return cls(**d)


def new_run_id() -> str:
    """Unique and sortable: UTC time to the microsecond, then random hex."""
    t = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(t))
    return f"{stamp}.{int(t % 1 * 1e6):06d}-{os.urandom(3).hex()}"


@dataclass(slots=True)
class Run:
    """The record of one workflow run, as returned by :func:`flowkit.run`."""

    id: str
    workflow: str
    status: RunStatus = "running"
    output: Any = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    tasks: list[TaskRecord] = field(default_factory=list)
    error: str | None = None
    backend: str = ""
    # who runs it, and when it last said it was alive (flowkit.lifecycle)
    host: str = ""
    pid: int = 0
    heartbeat: float | None = None

    @property
    def duration(self) -> float | None:
        """Wall seconds of the run, or None while it is running."""
        return None if self.ended is None else self.ended - self.started

    def summary(self) -> dict[str, int]:
        """Counts of tasks run, cached and failed."""
        return {
            "run": sum(1 for t in self.tasks if t.status == "succeeded" and not t.cached),
            "cached": sum(1 for t in self.tasks if t.cached),
            "failed": sum(1 for t in self.tasks if t.status == "failed"),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able header (without ``output``, which lives in the store as an artifact)."""
        return {
            "id": self.id,
            "workflow": self.workflow,
            "status": self.status,
            "started": self.started,
            "ended": self.ended,
            "duration": self.duration,
            "inputs": {k: _jsonable(v) for k, v in self.inputs.items()},
            "error": self.error,
            "backend": self.backend,
            "summary": self.summary(),
            "host": self.host,
            "pid": self.pid,
            "heartbeat": self.heartbeat,
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)  # 'nan', 'inf': JSON documents hold finite numbers only
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return repr(v)

"""What a run leaves behind: one :class:`TaskRecord` per task call and one :class:`Run`.

Both are plain data; they round-trip through JSON (``to_dict`` / ``from_dict``) so the
store can keep them and ``flowkit runs show`` can read them back in another process.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

TaskStatus = Literal["pending", "running", "succeeded", "failed", "skipped"]
# "interrupted": stopped by SIGINT/SIGTERM (every finished call recorded); "lost": found
# "running" by a reader whose process is gone (see flowkit.lifecycle), never written by a run.
RunStatus = Literal["running", "succeeded", "failed", "interrupted", "lost"]


@dataclass(slots=True)
class AttemptRecord:
    """One attempt of one task call, as the worker saw it.

    ``logs`` is what the attempt printed (stdout and stderr) and logged (``logging`` records),
    in order, as text; a large log is kept as an object and ``logs_ref`` names its artifact
    (``logs`` then holds its first and last lines). ``cpu`` is CPU seconds of the attempt's
    thread (process on Ray), ``peak_rss`` the worker's peak resident set in bytes, where the
    platform gives them; ``worker`` names the worker (``host:pid:thread``); ``cards`` are the
    panels the attempt made (:mod:`flowkit.card`).
    """

    n: int
    started: float
    ended: float | None = None
    status: Literal["succeeded", "failed"] = "succeeded"
    error: str | None = None
    traceback: str | None = None
    logs: str = ""
    logs_ref: dict[str, Any] | None = None
    cpu: float | None = None
    peak_rss: int | None = None
    worker: str | None = None
    cards: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that say something (a run record may hold 100k of these)."""
        # attribute by attribute, not a loop of getattr: this runs once per call of a run
        d: dict[str, Any] = {"n": self.n, "started": _us(self.started), "ended": _us(self.ended)}
        if self.status != "succeeded":
            d["status"] = self.status
        if self.error:
            d["error"] = self.error
        if self.traceback:
            d["traceback"] = self.traceback
        if self.logs:
            d["logs"] = self.logs
        if self.logs_ref:
            d["logs_ref"] = self.logs_ref
        if self.peak_rss:
            d["peak_rss"] = self.peak_rss
        if self.worker:
            d["worker"] = self.worker
        if self.cards:
            d["cards"] = self.cards
        if self.cpu is not None:
            d["cpu"] = _us(self.cpu)  # microseconds: the clock's noise below compresses badly
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttemptRecord:
        return cls(**{k: v for k, v in d.items() if k in _ATTEMPT_FIELDS})


_ATTEMPT_FIELDS = frozenset(AttemptRecord.__slots__)

#: A call that is only kept (its task does not cache) is recorded with the first 160 bits of
#: its key, which is what ``fk.run(resume=...)`` matches on: a whole key is 32 bytes of
#: entropy per record that gzip cannot shrink (a 100k-item map's record: 3.2 MB of 5.9). A
#: cached call keeps its whole key, the name of its cache entry.
SHORT_KEY_CHARS = 40


def short_key(key: str) -> str:
    """The part of a call key that records of calls only kept hold, and resume matches."""
    return key[:SHORT_KEY_CHARS]


def _us(t: float | None) -> float | None:
    """A time as records write it: to the microsecond (the digits below are clock noise that
    a 100k-item map's record would pay for). ``round(t * 1e6) / 1e6``, not ``round(t, 6)``:
    the same number, six times faster."""
    return None if t is None else round(t * 1e6) / 1e6


@dataclass(slots=True)
class TaskRecord:
    """One call of one task. ``node`` is the graph node id (``train[3]`` for a map item).

    ``inputs`` maps each parameter whose value came from the store (an upstream output, a
    stored workflow input) to its token (:mod:`flowkit.keys`); ``outputs`` maps each output's
    name (``"0"`` for a single output, the field names of a NamedTuple, ``"0"``, ``"1"``... of
    a tuple) to its artifact (``Artifact.to_dict(compact=True)``: a small value is inline) or
    None when it was not kept: together they are the lineage. ``reused_from`` names the run
    whose call this one reused (``fk.run(resume=...)``). ``identity`` is the task's identity
    (:func:`flowkit.keys.identity`, its cache folder) for a call of a cached task. ``attempts``
    counts the attempts; ``tries`` holds them.
    """

    name: str
    node: str
    key: str | None = None
    status: TaskStatus = "pending"
    cached: bool = False
    attempts: int = 0
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    outputs: dict[str, dict[str, Any] | None] | None = None
    inputs: dict[str, str] | None = None
    reused_from: str | None = None
    identity: str | None = None
    tries: list[AttemptRecord] = field(default_factory=list)

    @property
    def duration(self) -> float | None:
        """Seconds from the first attempt's start to the end, or None while running."""
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started

    @property
    def logs(self) -> str:
        """The captured output of every attempt, in order."""
        return "".join(t.logs for t in self.tries)

    @property
    def traceback(self) -> str | None:
        """The traceback of the last failed attempt, or None."""
        for t in reversed(self.tries):
            if t.traceback:
                return t.traceback
        return None

    def to_dict(self) -> dict[str, Any]:
        # Written by hand: dataclasses.asdict deep-copies, far slower on this hot path
        # (benchmarks/RESULTS.md, Design measurements). Empty fields are left out: a
        # 100k-item map's record must stay small.
        d: dict[str, Any] = {
            "name": self.name,
            "node": self.node,
            "status": self.status,
            "attempts": self.attempts,
            "started": _us(self.started),
            "ended": _us(self.ended),
        }
        if self.key is not None:
            d["key"] = self.key
        if self.cached:
            d["cached"] = True
        if self.error is not None:
            d["error"] = self.error
        if self.outputs is not None:
            d["outputs"] = self.outputs
        if self.inputs:
            d["inputs"] = self.inputs
        if self.reused_from is not None:
            d["reused_from"] = self.reused_from
        if self.identity is not None:
            d["identity"] = self.identity
        if self.tries:
            d["tries"] = self._tries_dicts(d["started"], d["ended"])
        return d

    def _tries_dicts(self, started: float | None, ended: float | None) -> list[dict[str, Any]]:
        tries = [t.to_dict() for t in self.tries]
        # the first attempt starts and the last ends with the call: said once (a 100k-item
        # map's record must stay small); from_dict fills them in again
        if tries[0]["started"] == started:
            del tries[0]["started"]
        if tries[-1]["ended"] == ended:
            del tries[-1]["ended"]
        return tries

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskRecord:
        """Rebuild a record (fields this flowkit does not know are ignored)."""
        kw = {k: v for k, v in d.items() if k in _TASK_FIELDS}
        kw["tries"] = [AttemptRecord.from_dict(t) for t in attempt_dicts(d)]
        return cls(**kw)


def attempt_dicts(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The attempts of a task record as written (``TaskRecord.to_dict``), each whole again:
    the first attempt's start and the last one's end are said once, by the record."""
    tries = record.get("tries")
    found = [dict(t) for t in tries if isinstance(t, dict)] if isinstance(tries, list) else []
    if found:
        found[0].setdefault("started", record.get("started"))
        found[-1].setdefault("ended", record.get("ended"))
    return found


_TASK_FIELDS = frozenset(TaskRecord.__slots__) - {"tries"}


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
    # how the store keeps it: the inputs as written in the header (large values as
    # {"$artifact": ...}, secrets as {"$secret": true}; None: written as they are), the
    # stored output's artifact, and the run whose calls this one reused
    recorded_inputs: dict[str, Any] | None = None
    output_artifact: dict[str, Any] | None = None
    resumed_from: str | None = None
    keep: bool = True
    # the traced graph as plain data (flowkit.graph.Graph.shape): what the UI draws
    graph: dict[str, Any] | None = None
    # who or what started it: {"schedule": "nightly", "fire_time": "..."} (fk.run(tags=...))
    tags: dict[str, str] = field(default_factory=dict)
    # the maps with min_success that had failed items: node id -> {"items": n, "min_success":
    # r, "failed": [indices]} (flowkit.tolerance); each failed item has its own task record
    tolerated: dict[str, dict[str, Any]] = field(default_factory=dict)

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
        """JSON-able header (the output is named by its artifact, kept in the store)."""
        inputs = self.recorded_inputs
        if inputs is None:
            inputs = {k: _jsonable(v) for k, v in self.inputs.items()}
        d = {
            "id": self.id,
            "workflow": self.workflow,
            "status": self.status,
            "started": self.started,
            "ended": self.ended,
            "duration": self.duration,
            "inputs": inputs,
            "error": self.error,
            "backend": self.backend,
            "summary": self.summary(),
            "host": self.host,
            "pid": self.pid,
            "heartbeat": self.heartbeat,
            "keep": self.keep,
        }
        if self.output_artifact is not None:
            d["output"] = self.output_artifact
        if self.resumed_from is not None:
            d["resumed_from"] = self.resumed_from
        if self.graph is not None:
            d["graph"] = self.graph
        if self.tags:
            d["tags"] = dict(self.tags)
        if self.tolerated:
            d["tolerated"] = {k: dict(v) for k, v in self.tolerated.items()}
        return d


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

"""The engine's units of work: one :class:`Call` per task call, and the :class:`Failure` that
ends a run.

A call carries what :func:`flowkit.runner.run_call` receives (the task's runtime, one argument
template per parameter, the flat inputs, the input tokens already known) and the record the
run keeps of it. :func:`new_call` builds one from a node's bindings and, for a map item, the
item of each mapped argument. :func:`retryable` is the policy for another attempt.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowkit.arguments import Template, Templates, whole_input
from flowkit.backend import AttemptTimeout
from flowkit.errors import (
    GraphError,
    SerializationError,
    StoreError,
    TaskFailedError,
    TaskSerializationError,
    TaskTimeoutError,
    TypeMismatchError,
)
from flowkit.graph import Binding, Node
from flowkit.records import AttemptRecord, TaskRecord
from flowkit.runner import Prepared, TaskRuntime
from flowkit.secret import mask
from flowkit.taskspec import TaskSpec
from flowkit.values import BindingItem, HandleItem, MapItem, Values

_NOT_RETRIED = (TypeMismatchError, SerializationError, GraphError)


def retryable(exc: BaseException) -> bool:
    """Whether another attempt may succeed: never for a type or graph error, and for a store
    fault only when it is transient (a timeout or throttling, not a full disk or a denied write)."""
    if isinstance(exc, _NOT_RETRIED):
        return False
    if isinstance(exc, StoreError):
        return bool(getattr(exc, "transient", False))
    return True


def failed_attempt(n: int, exc: BaseException) -> AttemptRecord:
    """The record of attempt ``n`` that raised ``exc``: its full traceback (formatted on the
    worker when it came from one) and what the worker said of the attempt (``flowkit_attempt``:
    times, logs, CPU, peak RSS), when it got that far (a timeout or a lost worker did not)."""
    info = getattr(exc, "flowkit_attempt", None)
    if not isinstance(info, dict):
        info = {}
    tb = getattr(exc, "remote_traceback", None)
    if not isinstance(tb, str):
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    now = time.time()
    return AttemptRecord(
        n,
        info.get("started", now),
        info.get("ended", now),
        status="failed",
        error=mask(f"{type(exc).__name__}: {exc}"),
        traceback=mask(tb),
        logs=info.get("logs") or "",
        logs_ref=info.get("logs_ref"),
        cpu=info.get("cpu"),
        peak_rss=info.get("peak_rss"),
        worker=info.get("worker"),
        cards=info.get("cards"),
    )


@dataclass(slots=True, eq=False)
class Call:
    """One task call: its inputs, its record, and the attempts made so far.

    ``known`` holds the input tokens known from upstream outputs; after a driver-side cache
    miss it becomes the call's :class:`~flowkit.runner.Prepared` key. ``map_index`` is the
    item's position in a map node's output (None for a plain task node).
    """

    node: Node
    rt: TaskRuntime
    templates: Templates
    flat: list[Any]
    known: dict[str, str] | Prepared
    record: TaskRecord
    map_index: int | None = None
    attempt: int = 0

    @property
    def spec(self) -> TaskSpec:
        return self.node.task


def new_call(
    node: Node,
    rt: TaskRuntime,
    record: TaskRecord,
    values: Values,
    items: Mapping[str, MapItem] | None = None,
    map_index: int | None = None,
) -> Call:
    """The call of ``node`` (of one map item when ``items`` gives the mapped arguments')."""
    flat: list[Any] = []
    templates: list[tuple[str, Template]] = []
    known: dict[str, str] = {}
    for name, b in node.bindings:
        item = items.get(name) if items is not None else None
        tmpl: Template
        digest: str | None
        if item is None or isinstance(item, BindingItem):
            source: Binding = b if item is None else item.binding
            tmpl, digest = values.template(source, flat), values.digest(source)
        elif isinstance(item, HandleItem):
            flat.append(item.handle)
            tmpl, digest = whole_input(len(flat) - 1), item.digest
        else:  # a value in the driver: its item is the Constant the call passes
            tmpl, digest = item, None
        templates.append((name, tmpl))
        if digest is not None:
            known[name] = digest
    if known:  # lineage: the inputs that came from the store, by token
        record.inputs = known
    return Call(node, rt, tuple(templates), flat, known, record, map_index)


@dataclass(frozen=True, slots=True)
class Failure:
    """What failed a run: a call whose retries are spent (``record`` set), or a graph error
    found while running (``record`` None: raised as it is)."""

    record: TaskRecord | None
    task: str
    error: BaseException

    def to_exception(self, run_id: str) -> BaseException:
        """The exception ``fk.run`` raises for this failure."""
        rec, exc = self.record, self.error
        if rec is None:
            return exc
        timed_out = isinstance(exc, (AttemptTimeout, TimeoutError))
        cls: type[TaskFailedError] = TaskTimeoutError if timed_out else TaskFailedError
        if isinstance(exc, SerializationError):
            cls = TaskSerializationError  # `except fk.SerializationError` catches it too
        remote_tb = getattr(exc, "remote_traceback", None)
        if remote_tb is None:
            remote_tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        what = "timed out" if timed_out else "failed"
        # masked like the records: the error may quote a secret the task was given (the
        # task's own exception, the __cause__, is the caller's to show or not)
        return cls(
            mask(
                f"task `{self.task}` (node `{rec.node}`) {what} after {rec.attempts} "
                f"attempt(s) in run {run_id}: {type(exc).__name__}: {exc}"
            ),
            task=self.task,
            node=rec.node,
            attempts=rec.attempts,
            run_id=run_id,
            remote_traceback=mask(remote_tb),
        )


__all__ = ["Call", "Failure", "failed_attempt", "new_call", "retryable"]

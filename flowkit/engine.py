"""The engine: one ready-set loop over a graph, parameterised by a backend's ``submit``.

State and policy (the dask ``get_async`` model):

* Each graph node waits for a count of unfinished upstream nodes. When the count reaches
  zero the node is *scheduled*: a task node becomes one call, a map node expands into one
  call per item (the list lengths are known by then), and a dynamic node runs its body in
  the driver and splices the sub-graph it builds into the running graph.
* Ready calls are submitted while fewer than ``backend.capacity`` are in flight. Futures
  report completion by putting themselves on a queue; the loop is the only thing that
  touches engine state, so backends never call back into the engine.
* Retries, exponential back-off and timeouts are decided here, identically for every
  backend. A failed call (retries spent) stops new submissions; calls already in flight
  are drained (their results are still recorded and cached), then the run fails.
* Values stay where the backend keeps them: the engine holds *handles* and fetches into
  the driver only the workflow's output, a map's input list, a dynamic task's inputs, and
  what a callback asks for.
* Task records are written to the store in batches as tasks finish, so a killed run leaves
  a readable record of what it did.
"""

from __future__ import annotations

import heapq
import logging
import queue
import time
import traceback
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from flowkit import codehash
from flowkit.backend import AttemptTimeout, Backend, Submission, capabilities_of
from flowkit.callbacks import CallbackGroup, Output
from flowkit.errors import (
    FlowkitError,
    GraphError,
    SerializationError,
    StoreError,
    TaskFailedError,
    TaskSerializationError,
    TaskTimeoutError,
    TypeMismatchError,
)
from flowkit.graph import (
    Binding,
    Graph,
    ListOf,
    Node,
    OutputRef,
    refs_in,
)
from flowkit.isolation import private
from flowkit.promise import Builder
from flowkit.records import Run, TaskRecord
from flowkit.runlog import RunLog
from flowkit.runner import (
    Meta,
    Prepared,
    TaskRuntime,
    Template,
    lookup_call,
    make_runtime,
    run_batch,
    run_call,
)
from flowkit.store import Store
from flowkit.task import TaskDef
from flowkit.values import MapResult, Values
from flowkit.workflow import check_output

log = logging.getLogger(__name__)

CacheMode = bool | str  # True | False | "refresh"
_NOT_RETRIED = (TypeMismatchError, SerializationError, GraphError)


def _retryable(exc: BaseException) -> bool:
    """Whether another attempt may succeed: never for a type or graph error, and for a store
    fault only when it is transient (a timeout or throttling, not a full disk or a denied write)."""
    if isinstance(exc, _NOT_RETRIED):
        return False
    if isinstance(exc, StoreError):
        return bool(getattr(exc, "transient", False))
    return True


# Map items are sent in batches of up to this many calls when the backend keeps values in the
# driver and there is far more ready work than capacity: one hand-off per batch, not per call.
_MAX_BATCH = 64


# One item of a mapped argument:
# ("binding", Binding, None) | ("handle", h, digest) | ("value", v, None)
_Item = tuple[str, Any, str | None]


class _Call:
    """One submission unit: a task call with its inputs and its record."""

    __slots__ = (
        "attempt",
        "flat",
        "known",
        "map_index",
        "node",
        "record",
        "rt",
        "task",
        "templates",
    )

    def __init__(
        self,
        node: Node,
        rt: TaskRuntime,
        templates: tuple[tuple[str, Template], ...],
        flat: list[Any],
        known: dict[str, str],
        record: TaskRecord,
        map_index: int | None = None,
    ) -> None:
        self.node = node
        self.task: TaskDef[Any, Any] = node.task
        self.rt = rt
        self.templates = templates
        self.flat = flat
        # input tokens known from upstream outputs; after a driver-side miss, the call's key
        self.known: dict[str, str] | Prepared = known
        self.record = record
        self.attempt = 0
        self.map_index = map_index


class Engine:
    """Runs one graph once. Create, then call :meth:`execute`."""

    def __init__(
        self,
        graph: Graph,
        inputs: dict[str, Any],
        backend: Backend,
        store: Store,
        cache: CacheMode,
        callbacks: CallbackGroup,
        run: Run,
    ) -> None:
        self.graph = graph
        self.inputs = inputs
        self.backend = backend
        self.store = store
        self.cache = cache
        self.callbacks = callbacks
        self.run = run
        self.nodes: dict[str, Node] = dict(graph.nodes)
        self.remaining: dict[str, int] = {}
        self.dependents: dict[str, list[str]] = {}
        self.done: set[str] = set()
        self.awaiting_alias: set[str] = set()
        self.map_left: dict[str, int] = {}
        self.runtimes: dict[int, TaskRuntime] = {}
        self._specs: dict[int, Submission] = {}  # per task: what the backend is told
        self.ready: deque[_Call] = deque()
        self.inflight: dict[Future[Any], _Call | list[_Call]] = {}
        caps = capabilities_of(backend)
        self.values_in_driver = caps.values_in_driver
        self.splits_values = caps.splits_values
        self.batch_maps = self.values_in_driver or self.splits_values
        # Calls that truly run at once (workers, cluster CPUs): batches leave at least two
        # per worker, so batching never idles one.
        self.parallelism = caps.parallelism
        self.completions: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        self.retry_at: list[tuple[float, int, _Call]] = []
        self.deadlines: list[tuple[float, int, Future[Any]]] = []
        self.seq = 0
        # A backend that stops late calls itself (counting running time, not queueing) owns
        # the clock; otherwise the engine's deadline, counted from submission, applies.
        self.enforced_by_backend = caps.enforces_timeout
        # (record, task name, exception) of the first call that failed for good
        self.failure: tuple[TaskRecord | None, str, BaseException] | None = None
        self.log = RunLog(store, run.id)
        self.values = Values(inputs, backend)

    # -- the loop -------------------------------------------------------------------------

    def execute(self) -> Any:
        """Run every node; return the workflow output (fetched) or raise TaskFailedError."""
        codehash.forget_objects()  # the code of values' classes is read afresh in each run
        try:
            self._add_nodes(list(self.nodes.values()))
            self._loop()
            if self.failure is not None:
                self._skip_unfinished()
        finally:
            self.log.close()
        if self.failure is not None:
            self._raise_failure()
        return self.values.value(self.graph.output) if self.graph.output is not None else None

    def _loop(self) -> None:
        capacity = max(1, self.backend.capacity)
        while True:
            while self.ready and len(self.inflight) < capacity and self.failure is None:
                call = self.ready.popleft()
                if self._served_in_driver(call):
                    continue
                batch = self._take_batch(call, capacity) if self.batch_maps else None
                if batch is None:
                    self._submit(call)
                else:
                    self._submit_batch(batch)
            if not self.inflight:
                if self.retry_at and self.failure is None:
                    time.sleep(max(0.0, self.retry_at[0][0] - time.monotonic()))
                    self._release_retries()
                    continue
                return
            try:
                fut = self.completions.get(timeout=self._next_wake())
            except queue.Empty:
                fut = None
            if fut is not None:
                done = self.inflight.pop(fut, None)
                if isinstance(done, list):
                    self._finish_batch(done, fut)
                elif done is not None:
                    self._finish(done, fut)
            self._expire_deadlines()
            self._release_retries()

    def _skip_unfinished(self) -> None:
        """After a failure, calls that never ran or whose retry was abandoned end as skipped."""
        now = time.time()
        for rec in self.run.tasks:
            if rec.status in ("pending", "running"):
                rec.status = "skipped"
                rec.ended = now if rec.started is not None else None
                self.log.add(rec)

    def _next_wake(self) -> float | None:
        wakes = [t for t, *_ in self.retry_at[:1]] + [t for t, *_ in self.deadlines[:1]]
        return max(0.0, min(wakes) - time.monotonic()) if wakes else None

    def _start_attempt(self, call: _Call) -> None:
        call.attempt += 1
        rec = call.record
        rec.attempts = call.attempt
        if call.attempt == 1:
            rec.started = time.time()
            rec.status = "running"
            self.callbacks.emit("on_task_start", rec)

    def _served_in_driver(self, call: _Call) -> bool:
        """A cached call's hit, looked up before submission when handles are values."""
        if (
            not self.values_in_driver
            or call.attempt
            or not call.rt.use_cache
            or isinstance(call.known, Prepared)
        ):
            return False
        try:
            found = lookup_call(call.rt, call.templates, call.known, call.flat)
        except Exception:  # the worker will compute the key again and report the error
            log.debug("driver-side cache lookup of %s failed", call.record.node, exc_info=True)
            return False
        if found is None:
            return False
        if isinstance(found, Prepared):
            call.known = found  # a miss: the worker stores under this key, looking up nothing
            return False
        self._start_attempt(call)
        self._succeeded(call, *found)
        return True

    def _take_batch(self, first: _Call, capacity: int) -> list[_Call] | None:
        """Consecutive first attempts of one map node to send together, or None.

        Only when there is much more ready work than capacity (so no parallelism is lost)
        and no timeout applies (a timeout is per call)."""
        if first.map_index is None or first.attempt or first.task.timeout is not None:
            return None
        size = min(_MAX_BATCH, (len(self.ready) + 1) // (self.parallelism * 2))
        if size < 2 or not self._batchable(first):
            return None
        batch = [first]
        while len(batch) < size and self.ready:
            nxt = self.ready[0]
            if nxt.node is not first.node or nxt.attempt or not self._batchable(nxt):
                break
            batch.append(self.ready.popleft())
        return batch if len(batch) > 1 else None

    def _batchable(self, call: _Call) -> bool:
        # A backend that splits values still resolves only top-level handles: a call whose
        # inputs are handles cannot travel inside a batch there.
        return self.values_in_driver or not call.flat

    def _submit_batch(self, calls: list[_Call]) -> None:
        for call in calls:
            self._start_attempt(call)
        first = calls[0]
        spec = Submission(
            first.task.name, first.task.resources, None, static_args=1, split_values=len(calls)
        )
        work = [(c.templates, c.known, c.flat) for c in calls]
        try:
            fut = self.backend.submit(run_batch, (first.rt, work), spec)
        except Exception as e:  # a backend that refuses the batch fails its calls
            fut = Future()
            fut.set_exception(e)
        self.inflight[fut] = calls
        fut.add_done_callback(self.completions.put)

    def _submit(self, call: _Call) -> None:
        self._start_attempt(call)
        task = call.task
        spec = self._specs.get(id(task))
        if spec is None:
            spec = self._specs[id(task)] = Submission(
                task.name, task.resources, task.timeout, static_args=1
            )
        try:
            fut = self.backend.submit(
                run_call, (call.rt, call.templates, call.known, *call.flat), spec
            )
        except Exception as e:  # a backend that refuses a call fails that call
            fut = Future()
            fut.set_exception(e)
        self.inflight[fut] = call
        if task.timeout is not None and not fut.done() and not self.enforced_by_backend:
            self.seq += 1
            heapq.heappush(self.deadlines, (time.monotonic() + task.timeout, self.seq, fut))
        fut.add_done_callback(self.completions.put)

    def _expire_deadlines(self) -> None:
        now = time.monotonic()
        while self.deadlines and self.deadlines[0][0] <= now:
            _, _, fut = heapq.heappop(self.deadlines)
            call = self.inflight.pop(fut, None)
            if not isinstance(call, _Call):
                continue  # finished in time (batches carry no deadline)
            fut.cancel()
            err = AttemptTimeout(
                f"task `{call.task.name}` attempt {call.attempt} ran past its timeout of "
                f"{call.task.timeout} s"
            )
            self._failed_attempt(call, err)

    def _release_retries(self) -> None:
        now = time.monotonic()
        while self.retry_at and self.retry_at[0][0] <= now:
            self.ready.append(heapq.heappop(self.retry_at)[2])

    # -- completion -----------------------------------------------------------------------

    def _finish_batch(self, calls: list[_Call], fut: Future[Any]) -> None:
        exc = fut.exception()
        if exc is not None:
            for call in calls:
                self._failed_attempt(call, exc)
            return
        outcomes, values = fut.result()
        for call, outcome, value in zip(calls, outcomes, values, strict=True):
            if isinstance(outcome, Meta):
                self._succeeded(call, outcome, value)
            else:
                self._failed_attempt(call, outcome)

    def _finish(self, call: _Call, fut: Future[Any]) -> None:
        exc = fut.exception()
        if exc is not None:
            self._failed_attempt(call, exc)
            return
        meta, handle = fut.result()
        self._succeeded(call, meta, handle)

    def _succeeded(self, call: _Call, meta: Meta, handle: Any) -> None:
        assert isinstance(meta, Meta)
        rec = call.record
        if call.attempt == 1:
            rec.started = meta.started  # the worker's clock: queueing is not the task's time
        rec.ended = meta.ended
        rec.status = "succeeded"
        rec.key = meta.key
        rec.cached = meta.cached
        if meta.objects:
            rec.outputs = list(meta.objects)
        self.log.add(rec)
        if self.callbacks.callbacks:  # (an Output per call costs, with nobody listening)
            self.callbacks.emit(
                "on_task_end",
                rec,
                Output(lambda: self.backend.fetch(handle), call.task.return_type),
            )
        node_id = call.node.id
        if call.map_index is None:
            self.values.results[node_id] = handle
            self.values.digests[node_id] = meta.digests
            self._complete(node_id)
            return
        mres: MapResult = self.values.results[node_id]
        mres.handles[call.map_index] = handle
        mres.digests[call.map_index] = meta.digests[0] if not call.rt.multi_output else None
        self.map_left[node_id] -= 1
        if self.map_left[node_id] == 0:
            self._complete(node_id)

    def _failed_attempt(self, call: _Call, exc: BaseException) -> None:
        task = call.task
        if call.attempt <= task.retries and _retryable(exc):
            delay = task.retry_delay * (2 ** (call.attempt - 1))
            log.warning(
                "task `%s` (node `%s`) attempt %d failed (%s: %s); retrying in %.2f s",
                task.name,
                call.record.node,
                call.attempt,
                type(exc).__name__,
                exc,
                delay,
            )
            self.seq += 1
            heapq.heappush(self.retry_at, (time.monotonic() + delay, self.seq, call))
            return
        rec = call.record
        rec.ended = time.time()
        rec.status = "failed"
        rec.error = f"{type(exc).__name__}: {exc}"
        self.log.add(rec)
        self.callbacks.emit("on_task_error", rec, exc)
        if self.failure is None:
            self.failure = (rec, task.name, exc)

    def _raise_failure(self) -> None:
        assert self.failure is not None
        rec, task_name, exc = self.failure
        if rec is None:
            raise exc
        timed_out = isinstance(exc, (AttemptTimeout, TimeoutError))
        cls: type[TaskFailedError] = TaskTimeoutError if timed_out else TaskFailedError
        if isinstance(exc, SerializationError):
            cls = TaskSerializationError  # `except fk.SerializationError` catches it too
        remote_tb = getattr(exc, "remote_traceback", None)
        if remote_tb is None:
            remote_tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        what = "timed out" if timed_out else "failed"
        raise cls(
            f"task `{task_name}` (node `{rec.node}`) {what} after {rec.attempts} "
            f"attempt(s) in run {self.run.id}: {type(exc).__name__}: {exc}",
            task=task_name,
            node=rec.node,
            attempts=rec.attempts,
            run_id=self.run.id,
            remote_traceback=remote_tb,
        ) from exc

    # -- scheduling -----------------------------------------------------------------------

    def _add_nodes(self, nodes: Sequence[Node]) -> None:
        """Register nodes (in topological order) and schedule those with nothing to wait for."""
        for node in nodes:
            waits = [u for u in node.upstream() if u not in self.done]
            self.remaining[node.id] = len(waits)
            for u in waits:
                self.dependents.setdefault(u, []).append(node.id)
        for node in nodes:
            if self.remaining[node.id] == 0:
                self._schedule(node)

    def _complete(self, node_id: str) -> None:
        self.done.add(node_id)
        for dep in self.dependents.pop(node_id, ()):
            self.remaining[dep] -= 1
            if self.remaining[dep] == 0:
                if dep in self.awaiting_alias:
                    self.awaiting_alias.discard(dep)
                    self._complete(dep)
                else:
                    self._schedule(self.nodes[dep])

    def _schedule(self, node: Node) -> None:
        if self.failure is not None:
            return
        if node.dynamic:
            self._run_dynamic(node)
        elif node.mapped:
            self._expand_map(node)
        else:
            self.ready.append(self._make_call(node, dict(node.bindings)))

    def _runtime(self, task: TaskDef[Any, Any]) -> TaskRuntime:
        rt = self.runtimes.get(id(task))
        if rt is None:
            rt = self.runtimes[id(task)] = make_runtime(task, self.store, self.cache, self.run.id)
        return rt

    def _new_record(self, task: TaskDef[Any, Any], node_id: str) -> TaskRecord:
        rec = TaskRecord(name=task.name, node=node_id)
        self.run.tasks.append(rec)
        return rec

    def _make_call(
        self,
        node: Node,
        bindings: dict[str, Binding],
        items: dict[str, _Item] | None = None,
        map_index: int | None = None,
    ) -> _Call:
        flat: list[Any] = []
        templates: list[tuple[str, Template]] = []
        known: dict[str, str] = {}
        for name, b in bindings.items():
            tmpl: Template
            if items is not None and name in items:
                kind, payload, digest = items[name]
                if kind == "handle":
                    flat.append(payload)
                    tmpl = ("h", len(flat) - 1, None)
                elif kind == "value":
                    tmpl = ("v", payload)
                else:
                    tmpl, digest = self.values.template(payload, flat), self.values.digest(payload)
            else:
                tmpl = self.values.template(b, flat)
                digest = self.values.digest(b)
            templates.append((name, tmpl))
            if digest is not None:
                known[name] = digest
        node_id = node.id if map_index is None else f"{node.id}[{map_index}]"
        return _Call(
            node,
            self._runtime(node.task),
            tuple(templates),
            flat,
            known,
            self._new_record(node.task, node_id),
            map_index,
        )

    def _expand_map(self, node: Node) -> None:
        bindings = dict(node.bindings)
        items: dict[str, list[_Item]] = {}
        for name in node.mapped:
            items[name] = self._map_items(bindings[name])
        lengths = {name: len(v) for name, v in items.items()}
        if len(set(lengths.values())) > 1:
            self.failure = (
                None,
                node.name,
                GraphError(
                    f"task `{node.name}`.map at {node.location}: mapped lists have unequal "
                    f"lengths {lengths}; pass lists of equal length"
                ),
            )
            return
        n = next(iter(lengths.values()))
        self.values.results[node.id] = MapResult(n)
        self.map_left[node.id] = n
        if n == 0:
            self._complete(node.id)
            return
        for i in range(n):
            per_item = {name: items[name][i] for name in node.mapped}
            self.ready.append(self._make_call(node, bindings, per_item, i))

    def _map_items(self, b: Binding) -> list[_Item]:
        """The items of a mapped argument: sub-bindings, handles (kept where they are), or
        values (a list produced by one task is fetched to learn its length)."""
        b = self.values.unalias(b)
        if isinstance(b, ListOf):
            return [("binding", item, None) for item in b.items]
        if isinstance(b, OutputRef) and isinstance(self.values.results.get(b.node), MapResult):
            m: MapResult = self.values.results[b.node]
            return [("handle", h, d) for h, d in zip(m.handles, m.digests, strict=True)]
        return [("value", v, None) for v in self.values.value(b)]

    # -- dynamic --------------------------------------------------------------------------

    def _run_dynamic(self, node: Node) -> None:
        task: TaskDef[Any, Any] = node.task
        rec = self._new_record(task, node.id)
        rec.started = time.time()
        rec.status = "running"
        self.callbacks.emit("on_task_start", rec)
        kwargs = {name: self.values.value(b) for name, b in node.bindings}
        for attempt in range(1, task.retries + 2):
            rec.attempts = attempt
            builder = Builder(self.graph.name, prefix=f"{node.id}/")
            try:
                with builder:
                    returned = task.fn(**{k: private(v) for k, v in kwargs.items()})
                output = builder.binding_of(returned)
                check_output(
                    builder,
                    f"{self.graph.name}` dynamic task `{task.name}",
                    task.return_type,
                    output,
                    returned,
                )
                break
            except Exception as e:
                flowkit_error = isinstance(e, FlowkitError) and not isinstance(e, StoreError)
                if attempt > task.retries or flowkit_error or not _retryable(e):
                    rec.status, rec.ended, rec.error = (
                        "failed",
                        time.time(),
                        f"{type(e).__name__}: {e}",
                    )
                    self.log.add(rec)
                    self.callbacks.emit("on_task_error", rec, e)
                    self.failure = (rec, task.name, e)
                    return
                time.sleep(task.retry_delay * 2 ** (attempt - 1))
        rec.status, rec.ended = "succeeded", time.time()
        self.log.add(rec)
        self.callbacks.emit("on_task_end", rec, Output(lambda: returned, task.return_type))
        self.nodes.update(builder.nodes)
        self.values.aliases[node.id] = output
        waits = {r.node for r in refs_in(output)} - self.done
        self._add_nodes(list(builder.nodes.values()))
        waits -= self.done
        if not waits:
            self._complete(node.id)
            return
        self.awaiting_alias.add(node.id)
        self.remaining[node.id] = len(waits)
        for w in waits:
            self.dependents.setdefault(w, []).append(node.id)


def execute(
    graph: Graph,
    inputs: dict[str, Any],
    backend: Backend,
    store: Store,
    cache: CacheMode,
    callbacks: CallbackGroup,
    run: Run,
) -> Any:
    """Run ``graph`` with ``inputs`` on ``backend``; returns the output value."""
    return Engine(graph, inputs, backend, store, cache, callbacks, run).execute()


__all__ = ["CacheMode", "Engine", "execute"]

"""The engine: one ready-set loop over a graph, parameterised by a backend's ``submit``.

Policy (the dask ``get_async`` model):

* Each graph node waits for a count of unfinished upstream nodes. When the count reaches
  zero the node is *scheduled*: a task node becomes one call, a map node expands into one
  call per item (the list lengths are known by then), and a dynamic node runs its body in
  the driver and splices the sub-graph it builds into the running graph.
* Ready calls are submitted while fewer than ``backend.capacity`` are in flight
  (:mod:`flowkit.submitter`: driver-side cache hits, batches of map items, single calls);
  a run with limits (``concurrency=``, pools, a CPU budget) holds calls back in its gate
  (:mod:`flowkit.limits`) until a slot frees.
  Futures report completion by putting themselves on a queue; the loop is the only thing
  that touches engine state, so backends never call back into the engine.
* Retries, exponential back-off and timeouts are decided here, identically for every
  backend, on one clock (:mod:`flowkit.retryclock`). A failed call (retries spent) stops new
  submissions; calls already in flight are drained (their results are still recorded and
  cached), then the run fails and what never ran is recorded as skipped. An item of a map
  with ``min_success`` that fails is None instead, until too many have (:mod:`flowkit.tolerance`).
* Values stay where the backend keeps them: the engine holds *handles* and fetches into
  the driver only the workflow's output, a map's input list, a dynamic task's inputs, and
  what a callback asks for.
* Task records are written to the store in batches as tasks finish, so a killed run leaves
  a readable record of what it did.

State (the attributes of :class:`Engine`; only the loop's thread touches them):

* ``nodes`` — node id -> node: the graph's, plus the sub-graphs dynamic nodes spliced in.
* ``remaining`` — node id -> how many of its upstream nodes are not done yet.
* ``dependents`` — node id -> the nodes waiting for it (dropped once it is done).
* ``done`` — the ids of finished nodes (their values are in ``values``).
* ``awaiting_alias`` — dynamic nodes whose body ran, waiting for their sub-graph's output.
* ``map_left`` — map node id -> how many of its items have not succeeded yet.
* ``runtimes`` — per task: the :class:`~flowkit.runner.TaskRuntime` every call ships.
* ``ready`` — calls to submit, in order (first attempts and released retries).
* ``submitter.inflight`` — future -> the call (or batch of calls) it will complete.
* ``completions`` — futures that completed, put there by the futures' own callbacks.
* ``clock`` — calls and dynamic nodes waiting out a back-off, futures with a deadline.
* ``failure`` — the first call that failed for good (or a graph error found while running);
  once set, nothing new is scheduled or submitted.
* ``values`` — handles, digests and dynamic aliases of finished nodes (:mod:`flowkit.values`).
* ``log`` — task records not yet written to the store (:mod:`flowkit.runlog`).
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, ParamSpec

from flowkit import codehash, dyncache, limits
from flowkit.backend import AttemptTimeout, Backend, capabilities_of
from flowkit.callbacks import CallbackGroup, Output
from flowkit.calls import Call, Failure, failed_attempt, new_call, retryable
from flowkit.dynamic import DynamicRun, Traced, may_retry, trace_body
from flowkit.errors import GraphError, TaskFailedError
from flowkit.graph import Graph, Literal, Node, OutputRef, refs_in
from flowkit.records import AttemptRecord, Run, TaskRecord, short_key
from flowkit.resume import Reuse
from flowkit.retryclock import Clock, RetryClock
from flowkit.runlog import RunLog
from flowkit.runner import CacheMode, Meta, Prepared, TaskRuntime, check_return, make_runtime
from flowkit.secret import mask
from flowkit.store import Store
from flowkit.submitter import Submitter
from flowkit.taskspec import TaskSpec, map_length
from flowkit.tolerance import MapTolerance
from flowkit.values import SKIPPED, MapItem, MapResult, Values

log = logging.getLogger(__name__)
P = ParamSpec("P")


class Engine:
    """Runs one graph once. Create, then call :meth:`execute`. ``clock`` is for tests."""

    def __init__(
        self,
        graph: Graph,
        inputs: dict[str, Any],
        backend: Backend,
        store: Store,
        cache: CacheMode,
        callbacks: CallbackGroup,
        run: Run,
        *,
        keep: bool = True,
        reuse: Reuse | None = None,
        clock: Clock | None = None,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        self.graph, self.backend, self.store = graph, backend, store
        self.cache, self.callbacks, self.run = cache, callbacks, run
        self.keep, self.reuse = keep, reuse
        self.nodes: dict[str, Node] = dict(graph.nodes)
        self.remaining: dict[str, int] = {}
        self.dependents: dict[str, list[str]] = {}
        self.done: set[str] = set()
        self.awaiting_alias: set[str] = set()
        self.map_left: dict[str, int] = {}
        self.runtimes: dict[int, TaskRuntime] = {}
        self.ready: deque[Call] = deque()
        self.completions: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        self.clock: RetryClock[Call | DynamicRun, Future[Any]] = RetryClock(clock)
        self.submitter = Submitter(backend, capabilities_of(backend), self.clock, self.completions)
        self.failure: Failure | None = None
        self.by_node: dict[str, TaskRecord] = {}  # records of plain (not map item) calls
        self.log = RunLog(store, run.id)
        self.values = Values(inputs, backend)
        self.dyn_keys: dict[str, Prepared] = {}  # cached dynamic nodes that missed: their keys
        self.limits = dict(limits or {})  # pool -> calls in flight (fk.run(limits=...))
        self.tolerance: dict[str, MapTolerance] = {}  # map node id -> its failed items

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
            error = self.failure.to_exception(self.run.id)
            if error is self.failure.error:
                raise error
            raise error from self.failure.error
        if self.graph.output is None:
            return None
        output = self.values.value(self.graph.output)
        self.run.output_artifact = self._output_artifact(output)
        return output

    def _output_artifact(self, output: Any) -> dict[str, Any] | None:
        """The stored workflow output: the artifact its task call already kept, else the value
        put now (a list of map outputs, a literal, outputs regrouped); None if unstorable."""
        assert self.graph.output is not None
        b = self.values.unalias(self.graph.output)
        rec = self.by_node.get(b.node) if isinstance(b, OutputRef) else None
        if isinstance(b, OutputRef) and rec is not None and rec.outputs:
            task = self.nodes[b.node].task
            if b.index is not None or not task.multi_output:  # one output, not a regrouped tuple
                kept = rec.outputs.get(task.outputs[b.index or 0][0])
                if kept is not None:
                    return kept
        what = f"the output of workflow `{self.graph.name}`"
        try:
            return self.store.put(output, what=what).to_dict(compact=True)
        except Exception as e:  # the run succeeded: an unstorable output is just not kept
            log.warning("%s is not kept in the store (%s)", what, e)
            return None

    def _loop(self) -> None:
        capacity = max(1, self.backend.capacity)
        inflight = self.submitter.inflight
        while True:
            while self.ready and len(inflight) < capacity and self.failure is None:
                self._send(self.ready.popleft())
            if not inflight:
                if self.clock.has_retries and self.failure is None:
                    self.clock.sleep_until_retry()
                    self._release_retries()
                    continue
                return
            fut = self.clock.wait(self.completions)
            if fut is not None:
                done = inflight.pop(fut, None)
                if done is not None:
                    if self.submitter.gate is not None:
                        self._landed(done)
                    self._finished(done, fut)
            self._expire_deadlines()
            self._release_retries()

    def _send(self, call: Call) -> None:
        """Hand one ready call on: a hit served in the driver, a batch, or a single call."""
        sub = self.submitter
        hit = sub.hit_in_driver(call)
        if hit is not None:
            self._start_attempt(call)
            self._succeeded(call, *hit)
            return
        if sub.gate is not None and not sub.gate.admit(call):
            return  # held: the gate hands it back when a slot frees (_landed)
        batch = sub.take_batch(call, self.ready)
        if batch is None:
            self._start_attempt(call)
            sub.submit(call)
            return
        for c in batch:
            self._start_attempt(c)
        sub.submit_batch(batch)

    def _skip_unfinished(self) -> None:
        """After a failure, calls that never ran or whose retry was abandoned end as skipped."""
        now = time.time()
        for rec in self.run.tasks:
            if rec.status in ("pending", "running"):
                rec.status = "skipped"
                rec.ended = now if rec.started is not None else None
                self.log.add(rec)

    def _start_attempt(self, call: Call) -> None:
        call.attempt += 1
        rec = call.record
        rec.attempts = call.attempt
        if call.attempt == 1:
            rec.started = time.time()
            rec.status = "running"
            self.callbacks.emit("on_task_start", rec)

    def _expire_deadlines(self) -> None:
        now = self.clock.now()
        while (fut := self.clock.due_deadline(now)) is not None:
            call = self.submitter.inflight.pop(fut, None)
            if not isinstance(call, Call):
                continue  # finished in time (batches carry no deadline)
            if self.submitter.gate is not None:
                self._landed(call)  # abandoned: its slot frees now
            fut.cancel()
            err = AttemptTimeout(
                f"task `{call.rt.name}` attempt {call.attempt} ran past its timeout of "
                f"{call.spec.options.timeout} s"
            )
            self._failed_attempt(call, err)

    def _landed(self, done: Call | list[Call]) -> None:
        """A call (or batch) left flight: free its slots; calls that now fit go first."""
        assert self.submitter.gate is not None
        spec = done.spec if isinstance(done, Call) else done[0].spec
        back = self.submitter.gate.release(spec)
        if back:
            self.ready.extendleft(reversed(back))

    def _release_retries(self) -> None:
        now = self.clock.now()
        while (item := self.clock.due_retry(now)) is not None:
            if isinstance(item, Call):
                self.ready.append(item)
            elif self.failure is None:
                self._attempt_dynamic(item)

    # -- completion -----------------------------------------------------------------------

    def _finished(self, done: Call | list[Call], fut: Future[Any]) -> None:
        exc = fut.exception()
        if isinstance(done, Call):
            if exc is not None:
                self._failed_attempt(done, exc)
            else:
                meta, handle = fut.result()
                self._succeeded(done, meta, handle)
            return
        if exc is not None:  # the whole batch failed (the backend refused it, a lost worker)
            for call in done:
                self._failed_attempt(call, exc)
            return
        outcomes, values = fut.result()
        for call, outcome, value in zip(done, outcomes, values, strict=True):
            if isinstance(outcome, Meta):
                self._succeeded(call, outcome, value)
            else:
                self._failed_attempt(call, outcome)

    def _succeeded(self, call: Call, meta: Meta, handle: Any) -> None:
        assert isinstance(meta, Meta)
        rec = call.record
        if call.attempt == 1:
            rec.started = meta.started  # the worker's clock: queueing is not the task's time
        rec.ended = meta.ended
        rec.status = "succeeded"
        key = meta.key
        rec.key = key if key is None or call.rt.use_cache else short_key(key)
        rec.cached = meta.cached
        rec.outputs = meta.outputs
        if meta.reused_from is not None:
            rec.reused_from = meta.reused_from
        if not meta.cached:
            rec.tries.append(
                AttemptRecord(
                    call.attempt,
                    meta.started,
                    meta.ended,
                    logs=meta.logs,
                    logs_ref=meta.logs_ref,
                    cpu=meta.cpu,
                    peak_rss=meta.peak_rss,
                    worker=meta.worker,
                    cards=meta.cards,
                )
            )
        self.log.add(rec)
        if self.callbacks.callbacks:  # (an Output per call costs, with nobody listening)
            self.callbacks.emit(
                "on_task_end", rec, Output(lambda: self.backend.fetch(handle), call.rt.return_type)
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

    def _failed_attempt(self, call: Call, exc: BaseException) -> None:
        call.record.tries.append(failed_attempt(call.attempt, exc))
        spec = call.spec
        if call.attempt <= spec.options.retries and retryable(exc):
            delay = spec.retry_delay(call.attempt)
            log.warning(
                "task `%s` (node `%s`) attempt %d failed (%s: %s); retrying in %.2f s",
                spec.name,
                call.record.node,
                call.attempt,
                type(exc).__name__,
                exc,
                delay,
            )
            self.clock.retry_after(call, delay)
            return
        self._failed_for_good(call.record, spec, exc, call)

    def _failed_for_good(
        self, rec: TaskRecord, spec: TaskSpec, exc: BaseException, call: Call | None = None
    ) -> None:
        rec.ended = time.time()
        rec.status = "failed"
        rec.error = mask(f"{type(exc).__name__}: {exc}")  # records never hold a secret
        self.log.add(rec)
        self.callbacks.emit("on_task_error", rec, exc)
        if call is not None and call.map_index is not None and call.node.min_success is not None:
            self._failed_item(call, exc)
        elif self.failure is None:
            self.failure = Failure(rec, spec.name, exc)

    def _failed_item(self, call: Call, exc: BaseException) -> None:
        """An item of a tolerant map failed for good: None in its place, or the run fails
        once fewer than ``min_success`` of the items can succeed."""
        node_id, index = call.node.id, call.map_index
        assert index is not None
        tol = self.tolerance[node_id]
        within = tol.tolerate(index)
        self.run.tolerated[node_id] = tol.record()
        if not within:
            if self.failure is None:
                self.failure = Failure(None, call.spec.name, self._too_few(tol, call, exc))
            return
        mres: MapResult = self.values.results[node_id]
        mres.handles[index] = None  # the value None (flowkit.backend.fetch_many)
        mres.digests[index] = None
        self.map_left[node_id] -= 1
        if self.map_left[node_id] == 0:
            self._complete(node_id)

    def _too_few(self, tol: MapTolerance, call: Call, exc: BaseException) -> TaskFailedError:
        remote = getattr(exc, "remote_traceback", None)
        err = TaskFailedError(
            mask(f"{tol.message()} (run {self.run.id}; the last: {type(exc).__name__}: {exc})"),
            task=call.spec.name,
            node=call.record.node,
            attempts=call.record.attempts,
            run_id=self.run.id,
            remote_traceback=None if remote is None else mask(remote),
        )
        err.__cause__ = exc
        return err

    # -- scheduling -----------------------------------------------------------------------

    def _add_nodes(self, nodes: Sequence[Node]) -> None:
        """Register nodes (in topological order) and schedule those with nothing to wait for."""
        self._gate(nodes)
        for node in nodes:
            self._wait_for(node.id, [u for u in node.upstream() if u not in self.done])
        # Taken before scheduling: a node done at once (an empty map, a skipped branch)
        # schedules its dependents itself, which must not be scheduled a second time here.
        for node in [n for n in nodes if self.remaining[n.id] == 0]:
            self._schedule(node)

    def _gate(self, nodes: Sequence[Node]) -> None:
        """The run's gate with these nodes' tasks in it (None while nothing is limited); a
        task that could never be admitted fails the run before any of its calls."""
        sub = self.submitter
        in_flight = (d.spec if isinstance(d, Call) else d[0].spec for d in sub.inflight.values())
        try:
            sub.gate = limits.gate_for(nodes, self.limits, sub.caps.cpu_budget, sub.gate, in_flight)
        except GraphError as e:
            if self.failure is None:
                self.failure = Failure(None, self.graph.name, e)

    def _wait_for(self, node_id: str, upstream: Sequence[str]) -> None:
        self.remaining[node_id] = len(upstream)
        for u in upstream:
            self.dependents.setdefault(u, []).append(node_id)

    def _complete(self, node_id: str) -> None:
        if node_id in self.dyn_keys:
            self._cache_dynamic(node_id)
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
        if node.guards and self._skip_branch(node):
            return
        if node.dynamic:
            self._run_dynamic(node)
        elif node.mapped:
            self._expand_map(node)
        else:
            self.ready.append(self._new_call(node))

    def _skip_branch(self, node: Node) -> bool:
        """True for a node of an ``fk.cond`` branch not taken (:mod:`flowkit.conditional`):
        it is recorded as skipped and done, holding no value."""
        try:
            if self.values.runs(node.guards):
                return False
        except Exception as e:  # a predicate that cannot be read as a bool
            self.failure = Failure(None, node.name, e)
            return True
        rec = self._new_record(node.task, node.id)
        rec.status = "skipped"
        self.log.add(rec)
        self.values.results[node.id] = SKIPPED
        self._complete(node.id)
        return True

    def _skipped_items(self, node: Node, n: int) -> set[int]:
        try:
            return self.values.skipped_items(node.guards, n)
        except Exception as e:
            self.failure = Failure(None, node.name, e)
            return set(range(n))

    def _skip_item(self, node: Node, i: int) -> None:
        rec = self._new_record(node.task, f"{node.id}[{i}]")
        rec.status = "skipped"
        self.log.add(rec)
        self.map_left[node.id] -= 1
        if self.map_left[node.id] == 0:
            self._complete(node.id)

    def _runtime(self, task: TaskSpec) -> TaskRuntime:
        rt = self.runtimes.get(id(task))
        if rt is None:
            rt = self.runtimes[id(task)] = make_runtime(
                task,
                self.store,
                self.cache,
                self.run.id,
                keep=self.keep,
                reuse=self.reuse.of(task) if self.reuse is not None else None,
                resumed_from=self.reuse.run_id if self.reuse is not None else None,
            )
        return rt

    def _new_record(self, task: TaskSpec, node_id: str) -> TaskRecord:
        rec = TaskRecord(name=task.name, node=node_id)
        self.run.tasks.append(rec)
        return rec

    def _new_call(
        self, node: Node, items: dict[str, MapItem] | None = None, map_index: int | None = None
    ) -> Call:
        node_id = node.id if map_index is None else f"{node.id}[{map_index}]"
        rt = self._runtime(node.task)
        rec = self._new_record(node.task, node_id)
        if rt.use_cache:  # readers find the call's cache entry under the task's identity
            rec.identity = rt.identity
        if map_index is None:
            self.by_node[node_id] = rec
        return new_call(node, rt, rec, self.values, items, map_index)

    def _expand_map(self, node: Node) -> None:
        bindings = dict(node.bindings)
        items = {name: self.values.map_items(bindings[name]) for name in node.mapped}
        try:
            n = map_length(node.name, node.location, {k: len(v) for k, v in items.items()})
        except GraphError as e:
            self.failure = Failure(None, node.name, e)
            return
        self.values.results[node.id] = MapResult(n)
        self.map_left[node.id] = n
        if node.min_success is not None:
            self.tolerance[node.id] = MapTolerance(node.id, node.min_success, n)
        if n == 0:
            self._complete(node.id)
            return
        skipped = self._skipped_items(node, n) if node.guards else set()
        for i in range(n):
            if i in skipped:  # fk.cond.map: this item's predicate picked the other branch
                self._skip_item(node, i)
                continue
            per_item = {name: items[name][i] for name in node.mapped}
            self.ready.append(self._new_call(node, per_item, i))

    # -- dynamic --------------------------------------------------------------------------

    def _run_dynamic(self, node: Node) -> None:
        rec = self._new_record(node.task, node.id)
        rec.started = time.time()
        rec.status = "running"
        self.callbacks.emit("on_task_start", rec)
        kwargs = {name: self.values.value(b) for name, b in node.bindings}
        if node.task.options.cache and self._cached_dynamic(node, rec, kwargs):
            return
        self._attempt_dynamic(DynamicRun(node, rec, kwargs))

    def _cached_dynamic(self, node: Node, rec: TaskRecord, kwargs: dict[str, Any]) -> bool:
        """``@fk.dynamic(cache=True)`` (:mod:`flowkit.dyncache`): True when the node was served
        from the cache (done, its body not run); on a miss its key waits for the output."""
        rt = self._runtime(node.task)
        known = {p: d for p, b in node.bindings if (d := self.values.digest(b)) is not None}
        try:
            found = dyncache.lookup(rt, kwargs, known)
        except Exception as e:  # the body runs; only the cache is lost
            log.warning("dynamic task `%s`: cache lookup failed (%s)", node.name, e)
            return False
        rec.identity = rt.identity
        if isinstance(found, Prepared):
            rec.key = found.key
            self.dyn_keys[node.id] = found
            return False
        if found is None:
            return False
        meta, value = found
        rec.status, rec.cached, rec.key, rec.ended = "succeeded", True, meta.key, time.time()
        rec.outputs = meta.outputs
        self.log.add(rec)
        self.callbacks.emit("on_task_end", rec, Output(lambda: value, node.task.return_type))
        self.values.aliases[node.id] = Literal(value)
        self._complete(node.id)
        return True

    def _cache_dynamic(self, node_id: str) -> None:
        """A cached dynamic node's sub-graph output is done: store it under the node's key."""
        prepared = self.dyn_keys.pop(node_id)
        rt = self._runtime(self.nodes[node_id].task)
        try:
            value = self.values.value(OutputRef(node_id))
            check_return(rt, value)
        except Exception as e:
            log.warning("dynamic task `%s`: its output is not cached (%s)", rt.name, e)
            return
        dyncache.record(rt, prepared, value)

    def _attempt_dynamic(self, run: DynamicRun) -> None:
        """One attempt of a dynamic body; a failure waits out its back-off on the clock."""
        run.attempt += 1
        run.record.attempts = run.attempt
        spec = run.node.task
        try:
            traced = trace_body(self.graph.name, run)
        except Exception as e:
            if may_retry(run, e):
                self.clock.retry_after(run, spec.retry_delay(run.attempt))
            else:
                self._failed_for_good(run.record, spec, e)
            return
        rec = run.record
        rec.status, rec.ended = "succeeded", time.time()
        self.log.add(rec)
        returned = traced.returned
        self.callbacks.emit("on_task_end", rec, Output(lambda: returned, spec.return_type))
        self._splice(run.node.id, traced)

    def _splice(self, node_id: str, traced: Traced) -> None:
        """Run a dynamic node's sub-graph; the node is done when its output is."""
        self.nodes.update(traced.nodes)
        self.values.aliases[node_id] = traced.output
        waits = {r.node for r in refs_in(traced.output)} - self.done
        self._add_nodes(list(traced.nodes.values()))
        waits -= self.done
        if not waits:
            self._complete(node_id)
            return
        self.awaiting_alias.add(node_id)
        self._wait_for(node_id, list(waits))


def _run_once(engine: Callable[P, Engine]) -> Callable[P, Any]:
    """A function taking the engine's own arguments (typed by them, not a copy of the list)
    that runs one graph once."""

    def execute(*args: P.args, **kwargs: P.kwargs) -> Any:
        """Run ``graph`` with ``inputs`` on ``backend``; returns the output value (the
        arguments are :class:`Engine`'s)."""
        return engine(*args, **kwargs).execute()

    return execute


#: ``execute(graph, inputs, backend, store, cache, callbacks, run)``: run a graph once.
execute = _run_once(Engine)


__all__ = ["CacheMode", "Engine", "execute"]

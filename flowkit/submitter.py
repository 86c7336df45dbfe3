"""The submitter: how a ready call reaches the backend, and the futures in flight.

Three ways, tried in this order by the engine:

* **a hit served in the driver** (:meth:`Submitter.hit_in_driver`) — when handles are values
  (``values_in_driver``), a keyed call's key is looked up (in the cache and the run being
  resumed) before submitting: a hit costs no hand-off to a worker. On a miss the key goes
  with the call, so the worker neither hashes its inputs nor looks up again.
* **a batch** (:meth:`Submitter.take_batch`, :meth:`Submitter.submit_batch`) — consecutive
  first attempts of one map node travel as one call of :func:`flowkit.runner.run_batch`
  when the backend can hand the values back one by one and there is much more ready work
  than parallelism (so no worker idles for it);
* **one call** (:meth:`Submitter.submit`) — everything else; the engine's deadline starts
  at submission when the task has a timeout the backend does not enforce itself.

A backend that raises from ``submit`` fails the call (or the batch's calls) like a failed
future. Completed futures are put on the engine's completion queue.

Before a call is handed on, the run's :class:`~flowkit.limits.Gate` (``Submitter.gate``, None
when nothing in the run is limited) may hold it back: a task's ``concurrency``, a pool's
limit, the backend's CPU budget. It is the driver's doing, so every backend gets it.
"""

from __future__ import annotations

import logging
import queue
from collections import deque
from concurrent.futures import Future
from typing import Any

from flowkit.backend import Backend, Capabilities, Submission
from flowkit.calls import Call
from flowkit.limits import Gate
from flowkit.retryclock import RetryClock
from flowkit.runner import Meta, Prepared, lookup_call, run_batch, run_call

log = logging.getLogger(__name__)

# Map items are sent in batches of up to this many calls: one hand-off per batch, not per call.
MAX_BATCH = 64

InFlight = Call | list[Call]


class Submitter:
    """Submits calls to one backend for one run; ``inflight`` maps each future to its call(s)."""

    def __init__(
        self,
        backend: Backend,
        caps: Capabilities,
        clock: RetryClock[Any, Future[Any]],
        completions: queue.SimpleQueue[Future[Any]],
    ) -> None:
        self.backend = backend
        self.caps = caps
        self.clock = clock
        self.completions = completions
        self.inflight: dict[Future[Any], InFlight] = {}
        self._batch_maps = caps.values_in_driver or caps.splits_values
        self._submissions: dict[int, Submission] = {}  # per task runtime: what the backend is told
        self.gate: Gate[Call] | None = None  # set by the engine when the run has limits

    def hit_in_driver(self, call: Call) -> tuple[Meta, Any] | None:
        """A first attempt's cache hit, looked up here when handles are values; else None."""
        if (
            not self.caps.values_in_driver
            or call.attempt
            or not (call.rt.use_cache or call.rt.reuse)
            or isinstance(call.known, Prepared)
        ):
            return None
        try:
            found = lookup_call(call.rt, call.templates, call.known, call.flat)
        except Exception:  # the worker will compute the key again and report the error
            log.debug("driver-side cache lookup of %s failed", call.record.node, exc_info=True)
            return None
        if isinstance(found, Prepared):
            call.known = found  # a miss: the worker stores under this key, looking up nothing
            return None
        return found

    def take_batch(self, first: Call, ready: deque[Call]) -> list[Call] | None:
        """``first`` and the next ready calls to send with it as one batch, or None.

        Only first attempts of one map node, only when no timeout applies (a timeout is per
        call), and only when there is much more ready work than parallelism."""
        if not self._batch_maps or first.map_index is None or first.attempt:
            return None
        if first.spec.options.timeout is not None:
            return None
        size = min(MAX_BATCH, (len(ready) + 1) // (self.caps.parallelism * 2))
        if size < 2 or not self._batchable(first):
            return None
        batch = [first]
        while len(batch) < size and ready:
            nxt = ready[0]
            if nxt.node is not first.node or nxt.attempt or not self._batchable(nxt):
                break
            batch.append(ready.popleft())
        return batch if len(batch) > 1 else None

    def _batchable(self, call: Call) -> bool:
        # A backend that splits values still resolves only top-level handles: a call whose
        # inputs are handles cannot travel inside a batch there.
        return self.caps.values_in_driver or not call.flat

    def submit_batch(self, calls: list[Call]) -> None:
        first = calls[0]
        spec = Submission(
            first.rt.name,
            first.spec.options.resources,
            None,
            static_args=1,
            split_values=len(calls),
        )
        work = [(c.templates, c.record.node, c.known, c.flat) for c in calls]
        self._track(self._submit(run_batch, (first.rt, work), spec), calls)

    def submit(self, call: Call) -> None:
        spec = self._submission(call)
        args = (call.rt, call.templates, call.record.node, call.known, *call.flat)
        fut = self._submit(run_call, args, spec)
        timeout = spec.timeout
        if timeout is not None and not fut.done() and not self.caps.enforces_timeout:
            self.clock.expire_after(fut, timeout)
        self._track(fut, call)

    def _submission(self, call: Call) -> Submission:
        spec = self._submissions.get(id(call.rt))
        if spec is None:
            opts = call.spec.options
            spec = Submission(call.rt.name, opts.resources, opts.timeout, static_args=1)
            self._submissions[id(call.rt)] = spec
        return spec

    def _submit(self, fn: Any, args: tuple[Any, ...], spec: Submission) -> Future[Any]:
        try:
            return self.backend.submit(fn, args, spec)
        except Exception as e:  # a backend that refuses a call fails that call
            fut: Future[Any] = Future()
            fut.set_exception(e)
            return fut

    def _track(self, fut: Future[Any], what: InFlight) -> None:
        self.inflight[fut] = what
        fut.add_done_callback(self.completions.put)


__all__ = ["MAX_BATCH", "InFlight", "Submitter"]

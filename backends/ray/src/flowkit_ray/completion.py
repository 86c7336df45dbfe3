"""Completing futures from Ray without a thread per call.

Each call's small ``meta`` return gets a completion callback from Ray
(``ObjectRef._on_completed``, the mechanism behind Ray's public ``ObjectRef.future()``).
Ray runs such callbacks on its own I/O thread, where blocking (``ray.get``) or heavy work
would stall every other result, so the callback only queues the result; one completer
thread per backend sets the future's result and runs the engine's done-callbacks.
This is as fast as ``ObjectRef.future()`` and faster than a thread polling ``ray.wait``
over the pending refs (benchmarks/RESULTS.md, "Design measurements").

``RayFuture.cancel()`` cancels the Ray task (``force=True`` kills the worker process, the
only way to stop a call stuck in C code) and marks the future cancelled.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future, InvalidStateError
from typing import Any

import ray

from flowkit_ray.errors import user_exception

logger = logging.getLogger(__name__)


class RayFuture(Future[tuple[Any, Any]]):
    """Resolves to ``(meta, value_ref)`` (``(meta, [value_ref, ...])`` for a split batch);
    ``cancel()`` stops the Ray task."""

    def __init__(self, meta_ref: ray.ObjectRef[Any], value_ref: Any) -> None:
        super().__init__()
        self.meta_ref: ray.ObjectRef[Any] | None = meta_ref
        self.value_ref = value_ref

    def cancel(self) -> bool:
        ref = self.meta_ref
        if self.done() or ref is None:
            return False
        try:
            ray.cancel(ref, force=True)
        except Exception as e:  # already finished or the connection is gone
            logger.debug("ray.cancel(%s) failed: %s", ref, e)
        return super().cancel()


_STOP = object()


class Completer:
    """Owns the completer thread and the set of futures still pending."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Any, Any]] = queue.SimpleQueue()
        self.pending: set[RayFuture] = set()
        self._thread = threading.Thread(target=self._run, name="flowkit-ray-completer", daemon=True)
        self._thread.start()

    def watch(self, fut: RayFuture) -> None:
        """Complete ``fut`` when its meta object is ready."""
        self.pending.add(fut)
        put = self._queue.put
        ref = fut.meta_ref
        assert ref is not None
        ref._on_completed(lambda result: put((fut, result)))

    def _run(self) -> None:
        get = self._queue.get
        while True:
            fut, result = get()
            if fut is _STOP:
                return
            self._complete(fut, result)

    def _complete(self, fut: RayFuture, result: Any) -> None:
        self.pending.discard(fut)
        fut.meta_ref = None  # the meta object can be freed now
        try:
            if isinstance(result, BaseException):
                fut.set_exception(user_exception(result))
            else:
                fut.set_result((result, fut.value_ref))
        except InvalidStateError:
            pass  # cancelled meanwhile: the engine has already moved on
        except Exception:  # a done-callback of the engine raised; keep completing others
            logger.exception("completing a Ray future failed")

    def close(self, reason: BaseException) -> None:
        """Cancel and fail every pending future, then stop the thread."""
        for fut in list(self.pending):
            fut.cancel()
            if not fut.done():
                try:
                    fut.set_exception(reason)
                except InvalidStateError:
                    pass
        self.pending.clear()
        self._queue.put((_STOP, None))
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)

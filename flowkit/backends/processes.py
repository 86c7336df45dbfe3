"""``processes``: calls run in a pool of worker processes (``concurrent.futures``).

This backend is also the template for writing one (see ``docs/backends.md``): it is
short, implements every member of the contract, and passes
:class:`flowkit.testing.BackendContract` (``tests/test_backends.py``). What it shows:

* **Handles are values.** A worker sends ``(meta, value)`` back by pickling, so the value is
  in the driver's memory when the future resolves: the handle *is* the value,
  ``fetch(handle)`` returns it, and ``capabilities.values_in_driver`` is True (the engine then
  serves cache hits in the driver and may batch small map items).
* **Shipping code.** ``fn`` and its arguments are pickled with ``cloudpickle`` in the driver
  (tasks defined in ``__main__`` or a notebook travel by value; importable ones by name,
  which the worker imports), and the worker unpickles and calls them.
* **Timeouts on the worker.** Each worker runs calls on its main thread, so ``SIGALRM`` stops
  a late call in place (:mod:`flowkit.backends.alarm`) and the clock counts running time
  only: ``capabilities.enforces_timeout`` is True and the engine keeps no clock.
  ``future.cancel()`` (which the engine calls only when it times calls itself) stops calls
  still queued; a running one cannot be stopped from outside.
* **Errors with their traceback.** An exception keeps its type; the worker attaches the
  traceback text as ``remote_traceback`` (it is lost in pickling otherwise).
* **The store check.** Workers are other processes: a ``memory://`` store (one process's
  memory) is refused in ``check_store``.

Workers start with ``forkserver`` (``spawn`` where it is missing): forking a driver that
runs threads can deadlock a child. As with any ``multiprocessing`` code, a script that uses
this backend must guard its entry point with ``if __name__ == "__main__":``, because each
worker imports the main module. The fork server imports ``preload`` modules (flowkit's
runner by default) once, so each worker does not import them again; the first backend to
start the fork server in a process decides its preloads.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType
from typing import Any

import cloudpickle

from flowkit.backend import BackendBase, Capabilities, Submission
from flowkit.backends.alarm import call_with_alarm
from flowkit.errors import StoreError


def _start_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class ProcessesBackend(BackendBase):
    """Run calls on ``max_workers`` processes (default: the CPU count, at least 2)."""

    name = "processes"
    capabilities = Capabilities(values_in_driver=True, enforces_timeout=True)

    def __init__(self, max_workers: int | None = None, preload: Sequence[str] = ()) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"ProcessesBackend(max_workers={max_workers}): must be >= 1")
        self.max_workers = max_workers or max(2, os.cpu_count() or 1)
        self.preload = ("__main__", "flowkit.runner", *preload)
        self._pool: ProcessPoolExecutor | None = None
        self._depth = 0  # nested `with` blocks share one pool

    @property
    def capacity(self) -> int:
        # Twice the pool: a worker finds its next call queued when it finishes one.
        return self.max_workers * 2

    @property
    def parallelism(self) -> int:
        return self.max_workers

    def __enter__(self) -> ProcessesBackend:
        if self._depth == 0:
            ctx = multiprocessing.get_context(_start_method())
            if isinstance(ctx, multiprocessing.context.ForkServerContext):
                ctx.set_forkserver_preload(list(self.preload))  # no-op once it runs
            self._pool = ProcessPoolExecutor(self.max_workers, mp_context=ctx)
        self._depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0 and self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def submit(
        self, fn: Callable[..., tuple[Any, Any]], args: Sequence[Any], spec: Submission
    ) -> Future[tuple[Any, Any]]:
        if self._pool is None:
            raise RuntimeError("ProcessesBackend used outside its `with` block")
        # Arguments hold no handles to resolve: handles are values here.
        payload = cloudpickle.dumps((fn, tuple(args)))
        return self._pool.submit(_run_on_worker, payload, spec.name, spec.timeout)

    def fetch(self, handle: Any) -> Any:
        return handle  # the value came back with the future

    def check_store(self, url: str) -> None:
        if url.rsplit("::", 1)[-1].startswith("memory://"):
            raise StoreError(
                f"store {url!r} lives in the driver's memory, which the worker processes of "
                "the `processes` backend cannot see; use a directory or object storage"
            )


def _run_on_worker(payload: bytes, name: str, timeout: float | None) -> tuple[Any, Any]:
    """In a worker process: unpickle the call, run it (under its timeout), return
    ``(meta, value)``; an exception carries its traceback text as ``remote_traceback``."""
    fn, args = cloudpickle.loads(payload)
    try:
        if timeout is None:
            result: tuple[Any, Any] = fn(*args)
        else:
            late = f"task `{name}` ran past its timeout of {timeout} s in a worker process"
            result = call_with_alarm(fn, args, timeout, late)
    except Exception as e:
        if getattr(e, "remote_traceback", None) is None:
            e.remote_traceback = traceback.format_exc()  # type: ignore[attr-defined]
        raise
    return result

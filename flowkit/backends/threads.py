"""``threads``: a thread pool in the driver process.

Good for I/O-bound tasks and for libraries that release the GIL (numpy, pyarrow,
scikit-learn). A call that times out cannot be killed (Python threads cannot be
interrupted); the engine stops waiting for it and its result is ignored.

``Resources.cpus`` is honoured: ``max_workers`` is the CPU budget (``cpu_budget``) and the
engine admits a call only when its cpus fit beside those of the calls in flight
(:mod:`flowkit.limits`); ``gpus`` and ``memory`` are recorded only.

While the pool runs, native thread pools (BLAS, OpenMP) are limited to ``blas_threads``
(default 1) when numpy is loaded and ``threadpoolctl`` is installed: N tasks that each start
one BLAS thread per core oversubscribe the machine (seen 50x slower on 2 cores), which is why
Ray sets ``OMP_NUM_THREADS=1`` on its workers too. ``blas_threads=None`` leaves them alone.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

from flowkit.backend import BackendBase, Capabilities, Submission


class ThreadsBackend(BackendBase):
    """Run calls on ``max_workers`` threads (default: the CPU count, at least 4)."""

    name = "threads"
    # Handles are the values: cache hits are served in the driver, small map items batched.
    capabilities = Capabilities(values_in_driver=True)

    def __init__(self, max_workers: int | None = None, blas_threads: int | None = 1) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"ThreadsBackend(max_workers={max_workers}): must be >= 1")
        self.max_workers = max_workers or max(4, os.cpu_count() or 1)
        self.blas_threads = blas_threads
        self._pool: ThreadPoolExecutor | None = None
        self._limits = contextlib.ExitStack()
        self._depth = 0  # nested `with` blocks share one pool; the outermost exit closes it

    @property
    def parallelism(self) -> int:
        """Calls that run at once: one per thread."""
        return self.max_workers

    @property
    def cpu_budget(self) -> float:
        """The CPUs calls are admitted against (``Resources.cpus``): one per thread. The
        engine holds back a call until its cpus fit beside those of the calls in flight, and
        refuses, at run start, a task asking for more than the whole budget."""
        return float(self.max_workers)

    @property
    def capacity(self) -> int:
        # A little more than the pool size keeps every worker busy between completions.
        return self.max_workers * 2

    def __enter__(self) -> ThreadsBackend:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="flowkit")
            self._limit_native_threads()
        self._depth += 1
        return self

    def _limit_native_threads(self) -> None:
        if self.blas_threads is None or self.max_workers < 2 or "numpy" not in sys.modules:
            return  # without numpy loaded there is no BLAS pool to oversubscribe
        try:
            from threadpoolctl import threadpool_limits  # optional: ships with scikit-learn
        except ImportError:
            return
        self._limits.enter_context(threadpool_limits(limits=self.blas_threads))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth = max(0, self._depth - 1)
        if self._depth == 0 and self._pool is not None:
            # Calls abandoned after a timeout may still be running: do not wait for them.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            self._limits.close()

    def submit(
        self, fn: Callable[..., tuple[Any, Any]], args: Sequence[Any], spec: Submission
    ) -> Future[tuple[Any, Any]]:
        if self._pool is None:
            raise RuntimeError("ThreadsBackend used outside its `with` block")
        ctx = contextvars.copy_context()  # tasks see the caller's context variables
        return self._pool.submit(ctx.run, fn, *args)

    def fetch(self, handle: Any) -> Any:
        return handle

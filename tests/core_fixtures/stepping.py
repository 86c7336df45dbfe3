"""A synchronous backend and a fake clock that drive the engine's loop one step at a time.

:class:`StepBackend` queues every submitted call and runs one, in submission order, each time
the engine waits for a completion (through :class:`StepClock`). Nothing runs in another
thread, time moves only when the engine sleeps or waits with nothing left to run, so a test
sees the loop's state machine deterministically: what was submitted, in which order, with
which attempts and back-offs.
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from flowkit.backend import BackendBase, Capabilities, Submission
from flowkit.retryclock import Clock


class StepBackend(BackendBase):
    """Runs one queued call per :meth:`step`, oldest first; calls of tasks named in ``hang``
    never run (their futures stay pending until the engine cancels them)."""

    name = "step"

    def __init__(
        self,
        capacity: int = 1,
        *,
        capabilities: Capabilities | None = None,
        hang: Sequence[str] = (),
    ) -> None:
        self._capacity = capacity
        self.capabilities = capabilities or Capabilities()  # type: ignore[misc]
        self.hang = set(hang)
        self.queued: deque[tuple[Future[Any], Callable[..., Any], Sequence[Any]]] = deque()
        self.hanging: list[Future[Any]] = []
        self.submitted: list[Submission] = []  # every submission, in order

    @property
    def capacity(self) -> int:
        return self._capacity

    def submit(self, fn: Callable[..., Any], args: Sequence[Any], spec: Submission) -> Future[Any]:
        fut: Future[Any] = Future()
        self.submitted.append(spec)
        if spec.name in self.hang:
            self.hanging.append(fut)
        else:
            self.queued.append((fut, fn, args))
        return fut

    def step(self) -> bool:
        """Run the oldest queued call (its future completes now); False when none is queued."""
        while self.queued:
            fut, fn, args = self.queued.popleft()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except Exception as e:
                fut.set_exception(e)
            return True
        return False

    def fetch(self, handle: Any) -> Any:
        return handle


class StepClock(Clock):
    """Fake monotonic time that moves only when the engine sleeps, or waits while nothing can
    complete; waiting runs the backend's next call instead of blocking."""

    def __init__(self, backend: StepBackend) -> None:
        self.backend = backend
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def wait(self, completions: queue.SimpleQueue[Any], timeout: float | None) -> Any:
        if completions.empty() and not self.backend.step():
            if timeout is None:
                raise AssertionError("the engine waits for a call that can never complete")
            self.t += timeout
        try:
            return completions.get_nowait()
        except queue.Empty:
            return None

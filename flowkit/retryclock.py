"""The engine's clock: attempts waiting out their back-off, and attempts that must end in time.

Two heaps ordered by due time (``Clock.now()`` seconds), ties kept in arrival order:

* **retries** — items (task calls, dynamic nodes) whose attempt failed, due when their
  back-off has passed; the engine then sends them again;
* **deadlines** — futures of attempts the engine times out itself, due at submission plus
  the task's timeout; the engine then cancels them and counts the attempt as failed.

The engine waits for its next completion through :meth:`RetryClock.wait`, which returns early
when a retry or a deadline comes due, then asks what is due. Time comes from a :class:`Clock`,
so tests can drive it.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import time
from typing import Generic, TypeVar

R = TypeVar("R")  # what waits to be retried
D = TypeVar("D")  # what has a deadline
T = TypeVar("T")


class Clock:
    """Real time (monotonic seconds); a test passes a subclass that it advances itself."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def wait(self, completions: queue.SimpleQueue[T], timeout: float | None) -> T | None:
        """The next item put on ``completions``, or None when ``timeout`` seconds pass first
        (``timeout`` None: wait as long as it takes)."""
        try:
            return completions.get(timeout=timeout)
        except queue.Empty:
            return None


class RetryClock(Generic[R, D]):
    """The retry and deadline heaps of one run (see the module docstring)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self._retries: list[tuple[float, int, R]] = []
        self._deadlines: list[tuple[float, int, D]] = []
        self._seq = itertools.count()  # orders equal due times by arrival; items never compare

    def now(self) -> float:
        return self.clock.now()

    def retry_after(self, item: R, delay: float) -> None:
        """``item`` is due again in ``delay`` seconds."""
        heapq.heappush(self._retries, (self.clock.now() + delay, next(self._seq), item))

    def expire_after(self, item: D, timeout: float) -> None:
        """``item`` (an attempt's future) is due to be timed out in ``timeout`` seconds."""
        heapq.heappush(self._deadlines, (self.clock.now() + timeout, next(self._seq), item))

    @property
    def has_retries(self) -> bool:
        return bool(self._retries)

    def due_retry(self, now: float) -> R | None:
        """The earliest retry due at ``now`` (taken off the heap), or None."""
        if self._retries and self._retries[0][0] <= now:
            return heapq.heappop(self._retries)[2]
        return None

    def due_deadline(self, now: float) -> D | None:
        """The earliest deadline passed at ``now`` (taken off the heap), or None."""
        if self._deadlines and self._deadlines[0][0] <= now:
            return heapq.heappop(self._deadlines)[2]
        return None

    def wait_limit(self) -> float | None:
        """Seconds until the next retry or deadline is due (0 if one is), None if none waits."""
        heads = [h[0][0] for h in (self._retries, self._deadlines) if h]
        return max(0.0, min(heads) - self.clock.now()) if heads else None

    def wait(self, completions: queue.SimpleQueue[T]) -> T | None:
        """The next completion, or None when a retry or a deadline comes due first."""
        return self.clock.wait(completions, self.wait_limit())

    def sleep_until_retry(self) -> None:
        """Nothing else can happen before the next retry: sleep until it is due."""
        if self._retries:
            self.clock.sleep(max(0.0, self._retries[0][0] - self.clock.now()))


__all__ = ["Clock", "RetryClock"]

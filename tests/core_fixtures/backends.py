"""Small but real backends used to observe the engine through the backend seam."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Any

from flowkit.backend import Submission
from flowkit.backends import LocalBackend, ThreadsBackend


class Box:
    """A value handle that is not the value (like a Ray ObjectRef)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Box({self.value!r})"


class BoxedBackend:
    """Inline and serial like ``local``, but hands out :class:`Box` handles.

    ``submit`` resolves top-level Box arguments (as the contract requires) and refuses any
    Box hidden deeper, so a handle the engine forgot to pass at the top level is caught.
    ``fetched`` counts what the engine brought into the driver. It implements only the
    required members (no ``BackendBase``), as a minimal third-party backend would.
    """

    name = "boxed"

    def __init__(self) -> None:
        self.fetched: list[Any] = []
        self.submitted: list[str] = []

    @property
    def capacity(self) -> int:
        return 1

    def __enter__(self) -> BoxedBackend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def submit(
        self, fn: Callable[..., tuple[Any, Any]], args: Sequence[Any], spec: Submission
    ) -> Future[tuple[Any, Any]]:
        self.submitted.append(spec.name)
        resolved = [a.value if isinstance(a, Box) else a for a in args]
        for a in resolved:
            _refuse_nested_boxes(a)
        fut: Future[tuple[Any, Any]] = LocalBackend().submit(fn, resolved, spec)
        if fut.exception() is None:
            meta, value = fut.result()
            fut = Future()
            fut.set_result((meta, Box(value)))
        return fut

    def fetch(self, handle: Any) -> Any:
        assert isinstance(handle, Box), f"fetch() got {handle!r}, not a handle of this backend"
        self.fetched.append(handle.value)
        return handle.value


def _refuse_nested_boxes(value: Any) -> None:
    if isinstance(value, Box):
        raise AssertionError(f"a handle reached a task call unresolved: {value!r}")
    if isinstance(value, (list, tuple)):
        for v in value:
            _refuse_nested_boxes(v)
    elif isinstance(value, dict):
        for v in value.values():
            _refuse_nested_boxes(v)


class CountingThreads(ThreadsBackend):
    """A thread pool with a fixed capacity that records the most calls in flight at once."""

    def __init__(self, capacity: int) -> None:
        super().__init__(max_workers=capacity)
        self._capacity = capacity
        self._lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.submissions = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def submit(
        self, fn: Callable[..., tuple[Any, Any]], args: Sequence[Any], spec: Submission
    ) -> Future[tuple[Any, Any]]:
        with self._lock:
            self.running += 1
            self.submissions += 1
            self.most = max(self.most, self.running)
        fut = super().submit(fn, args, spec)
        fut.add_done_callback(self._done)
        return fut

    def _done(self, fut: Future[tuple[Any, Any]]) -> None:
        with self._lock:
            self.running -= 1


class RefusingBackend(LocalBackend):
    """Refuses to submit calls of one task (as a backend with no room for its resources would)."""

    def __init__(self, refuse: str) -> None:
        self.refuse = refuse

    def submit(
        self, fn: Callable[..., tuple[Any, Any]], args: Sequence[Any], spec: Submission
    ) -> Future[tuple[Any, Any]]:
        if spec.name == self.refuse:
            raise RuntimeError(f"no worker can run `{spec.name}`")
        return super().submit(fn, args, spec)

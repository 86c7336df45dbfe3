"""``local``: runs each call inline, in the caller's thread, one at a time.

Deterministic and debugger-friendly (``breakpoint()`` in a task just works). A timeout is
enforced with ``SIGALRM`` when running in the main thread, so the task is interrupted in
place; elsewhere the call runs on a helper thread that is abandoned when it times out.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from types import FrameType, TracebackType
from typing import Any

from flowkit.backend import AttemptTimeout, Submission


class LocalBackend:
    """Inline, serial execution in the calling thread."""

    name = "local"
    values_in_driver = True  # handles are the values: small map items may be batched

    @property
    def capacity(self) -> int:
        return 1

    def __enter__(self) -> LocalBackend:
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
        fut: Future[tuple[Any, Any]] = Future()
        try:
            if spec.timeout is None:
                result = fn(*args)
            elif threading.current_thread() is threading.main_thread():
                result = _with_alarm(fn, args, spec)
            else:
                result = _on_helper_thread(fn, args, spec)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            fut.set_exception(e)
        else:
            fut.set_result(result)
        return fut

    def fetch(self, handle: Any) -> Any:
        return handle


def _with_alarm(fn: Callable[..., Any], args: Sequence[Any], spec: Submission) -> Any:
    assert spec.timeout is not None

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise AttemptTimeout(f"task `{spec.name}` ran past its timeout of {spec.timeout} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, spec.timeout)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _on_helper_thread(fn: Callable[..., Any], args: Sequence[Any], spec: Submission) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn(*args)
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=target, name=f"flowkit-local-{spec.name}", daemon=True)
    t.start()
    t.join(spec.timeout)
    if t.is_alive():
        raise AttemptTimeout(f"task `{spec.name}` ran past its timeout of {spec.timeout} s")
    if "error" in box:
        raise box["error"]
    return box["result"]

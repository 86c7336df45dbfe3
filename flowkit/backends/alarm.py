"""Stopping a call in place after a timeout, with ``SIGALRM``: shared by every backend that
runs calls on the main thread of some process (``local`` in the driver, ``processes`` and
Ray on their workers).

At ``timeout`` seconds the alarm raises :class:`~flowkit.backend.AttemptTimeout` inside the
call: blocking system calls are interrupted, pure Python stops at the next bytecode. Code
that never gives control back to Python (a C loop with signals blocked) is not stopped; a
backend whose worker process may be killed passes ``hard_stop_after`` to kill it that many
seconds after the timeout (the driver sees the worker die: a failed attempt).

Signals reach only the main thread, so a backend must check :func:`on_main_thread` first
and do something else elsewhere (``local`` runs the call on a helper thread it abandons).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, TypeVar

from flowkit.backend import AttemptTimeout

T = TypeVar("T")


def on_main_thread() -> bool:
    """Whether the caller may use :func:`call_with_alarm` (signals reach only this thread)."""
    return threading.current_thread() is threading.main_thread()


def call_with_alarm(
    fn: Callable[..., T],
    args: Sequence[Any],
    timeout: float,
    message: str,
    hard_stop_after: float | None = None,
) -> T:
    """``fn(*args)``, interrupted with ``AttemptTimeout(message)`` after ``timeout`` seconds.

    Main thread only. With ``hard_stop_after``, a watchdog kills this process when the call
    has still not returned that many seconds after the alarm. The previous ``SIGALRM``
    handler is restored and the timer disarmed however the call ends.
    """
    if not on_main_thread():
        raise RuntimeError("call_with_alarm() works on the main thread only (SIGALRM)")

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise AttemptTimeout(message)

    watchdog: threading.Timer | None = None
    if hard_stop_after is not None:
        kill = (os.getpid(), signal.SIGKILL)
        watchdog = threading.Timer(timeout + hard_stop_after, os.kill, kill)
        watchdog.daemon = True
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    if watchdog is not None:
        watchdog.start()
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if watchdog is not None:
            watchdog.cancel()

"""What runs on the Ray worker around each call: the per-attempt timeout.

Policy: a call's ``timeout`` counts the time it *runs*, not the time it waits in Ray's
queue for a CPU or a worker process (the engine keeps many more calls in flight than the
cluster has CPUs, and a fresh worker takes about a second to start). So the clock starts
here, on the worker:

* at ``timeout`` a ``SIGALRM`` raises :class:`flowkit.backend.AttemptTimeout` in the call
  (Ray runs tasks on the worker's main thread; blocking calls are interrupted, pure
  Python stops at the next bytecode);
* if the call has still not returned ``HARD_STOP_GRACE`` seconds later (C code that never
  gives control back to Python), a watchdog kills the worker process, which the driver
  sees as ``ray.exceptions.WorkerCrashedError`` -- a failed attempt like any other.

This module is imported on the workers, so ``flowkit-ray`` must be installed there (as
``flowkit`` must be, for the runner).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from flowkit.backend import AttemptTimeout

HARD_STOP_GRACE = 5.0


def run_limited(timeout: float, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, stopped with ``AttemptTimeout`` after ``timeout`` seconds of running."""
    if threading.current_thread() is not threading.main_thread():
        return fn(*args)  # signals only reach the main thread; the driver's cancel remains

    def on_alarm(signum: int, frame: Any) -> None:
        raise AttemptTimeout(f"the call ran past its timeout of {timeout} s on the worker")

    watchdog = threading.Timer(timeout + HARD_STOP_GRACE, os.kill, (os.getpid(), signal.SIGKILL))
    watchdog.daemon = True
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    watchdog.start()
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        watchdog.cancel()

"""What runs on the Ray worker around each call: the per-attempt timeout.

Policy: a call's ``timeout`` counts the time it *runs*, not the time it waits in Ray's
queue for a CPU or a worker process (the engine keeps many more calls in flight than the
cluster has CPUs, and a fresh worker takes about a second to start). So the clock starts
here, on the worker (:func:`flowkit.backends.alarm.call_with_alarm`):

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

from collections.abc import Callable
from typing import Any

from flowkit.backends.alarm import call_with_alarm, on_main_thread

HARD_STOP_GRACE = 5.0


def run_limited(timeout: float, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, stopped with ``AttemptTimeout`` after ``timeout`` seconds of running."""
    if not on_main_thread():
        return fn(*args)  # signals only reach the main thread; the driver's cancel remains
    late = f"the call ran past its timeout of {timeout} s on the worker"
    return call_with_alarm(fn, args, timeout, late, hard_stop_after=HARD_STOP_GRACE)

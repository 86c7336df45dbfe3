"""Per-attempt capture of what a task prints and logs.

The runner wraps every task call in :func:`attempt`::

    with capture.attempt("square[3]") as cap:
        value = fn(**kwargs)
    cap.logs, cap.cpu, cap.peak_rss, cap.wall

* **Per thread.** The first attempt in a process makes ``sys.stdout`` / ``sys.stderr``
  proxies (:mod:`~flowkit.capture.streams`) and wraps the log-record factory
  (:mod:`~flowkit.capture.logrecords`). A write or log record from a thread running an
  attempt goes to that attempt; from any other thread (the driver, a library's thread) it
  passes through untouched. So two tasks on two threads never get each other's lines, and
  the same code captures on a Ray worker.
* **Live.** Each complete captured line is also written at once to the terminal's stderr
  as ``[label] line`` (:mod:`~flowkit.capture.live`): ``set_live(False)`` or
  ``FLOWKIT_QUIET=1`` turns that off.
* **Bounded.** At most :data:`MAX_LOG_BYTES` (8 MiB) of an attempt's log stay in memory: the
  head and the tail, with a ``[... N bytes cut ...]`` line between
  (:mod:`~flowkit.capture.boundedlog`).
* **Cheap.** An attempt that prints nothing costs two identity checks, a thread-local swap
  and two clock reads; its buffer is made at the first write.
* **Secrets.** :func:`set_masker` installs a function every captured text goes through
  (``flowkit.secret.mask``: secret values become ``***``), in the stored log, a failed
  attempt's log and live lines.
* **Failures.** An exception leaving the block carries the attempt as a plain, picklable
  dict ``exc.flowkit_attempt`` (``logs``, ``cpu``, ``peak_rss``, ``wall``).

Not captured: output written to file descriptors directly (C extensions, subprocesses) or
to ``sys.stdout.buffer``, and log records a logger is not enabled for (levels are left as
they are).
"""

from __future__ import annotations

from flowkit.capture.attempts import MAX_LOG_BYTES, Attempt, attempt
from flowkit.capture.live import LiveSink, live_enabled, set_live, set_live_sink
from flowkit.capture.masking import Masker, set_masker
from flowkit.capture.state import local


def current() -> Attempt | None:
    """The attempt running on this thread, if any."""
    active = local.attempt
    return active if isinstance(active, Attempt) else None


def current_run_id() -> str | None:
    """The id of the flowkit run whose task is running on this thread (on any backend: the
    runner passes it to the attempt on the worker), or None outside a task."""
    active = current()
    return None if active is None else active.run_id


__all__ = [
    "MAX_LOG_BYTES",
    "Attempt",
    "LiveSink",
    "Masker",
    "attempt",
    "current",
    "current_run_id",
    "live_enabled",
    "set_live",
    "set_live_sink",
    "set_masker",
]

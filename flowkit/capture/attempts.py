"""One task attempt's capture: :func:`attempt` is the context manager the runner wraps
every call in (see :mod:`flowkit.capture`)."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from flowkit.capture import live, logrecords, masking, streams
from flowkit.capture.boundedlog import BoundedLog
from flowkit.capture.state import Feed, local

#: At most this many bytes of one attempt's log are kept in memory (head and tail).
MAX_LOG_BYTES = 8 * 2**20

#: A complete line is echoed live at its newline; text without one is echoed once this long.
_MAX_PENDING = 64 * 1024


def _probe_thread_time() -> Callable[[], float] | None:
    try:
        time.thread_time()
    except (AttributeError, OSError):  # a platform without per-thread CPU clocks
        return None
    return time.thread_time


_thread_time = _probe_thread_time()


try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

#: The peak RSS read less than this many seconds ago is reused: it is a system call (about
#: 1 us, most of what capture would add to a tiny task), and the peak only grows.
_RSS_FRESH = 0.01
_rss_read: tuple[float, int | None] = (float("-inf"), None)  # (perf_counter, bytes)


def _peak_rss() -> int | None:
    global _rss_read
    now = time.perf_counter()
    at, peak = _rss_read
    if now - at < _RSS_FRESH or resource is None:
        return peak
    kib_or_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = int(kib_or_bytes) if sys.platform == "darwin" else int(kib_or_bytes) * 1024
    _rss_read = (now, peak)
    return peak


class Attempt:
    """What one attempt printed and logged, and what it cost. Used as a context manager;
    the fields are final once it has exited.

    ``logs``: stdout, stderr and log records, in order. ``cpu``: CPU seconds of the calling
    thread (None where the platform has no thread clock). ``wall``: seconds.
    ``peak_rss``: the process's peak resident set size in bytes (None where unavailable),
    read at first access -- the runner reads it right after the call -- or, when the process
    read it less than 10 ms before, that reading; it is process-wide, so on the ``threads``
    backend it includes the other threads.
    """

    __slots__ = (
        "_cpu0",
        "_log",
        "_peak",
        "_peak_read",
        "_pending",
        "_prev",
        "_t0",
        "cards",
        "cpu",
        "label",
        "live",
        "run_id",
        "wall",
    )

    def __init__(self, label: str, live: bool | None = None, run_id: str | None = None) -> None:
        self.label = label
        self.run_id = run_id  # the flowkit run the attempt belongs to (fk.current_run_id)
        self.live = live  # None: decided at the first write (capture.set_live, FLOWKIT_QUIET)
        self.cpu: float | None = None
        self.wall = 0.0
        self._log: BoundedLog | None = None  # allocated at the first write
        self._pending = ""  # text after the last newline, not echoed yet
        self._prev: Feed | None = None
        self._peak: int | None = None
        self._peak_read = False
        self._t0 = self._cpu0 = 0.0
        # fk.card panels (flowkit.card): the list is made at the first card
        self.cards: list[dict[str, Any]] | None = None

    @property
    def worker(self) -> str:
        """Which worker ran the attempt: ``host:pid:thread`` (the UI's timeline lanes)."""
        return _worker_name()

    @property
    def logs(self) -> str:
        if self._log is None:
            return ""
        return masking.scrub(self._log.text())

    @property
    def peak_rss(self) -> int | None:
        if not self._peak_read:
            self._peak, self._peak_read = _peak_rss(), True
        return self._peak

    def __enter__(self) -> Attempt:
        if not streams.installed():
            streams.install()
            logrecords.install()
        self._prev = local.attempt
        local.attempt = self
        self._t0 = time.perf_counter()
        if _thread_time is not None:
            self._cpu0 = _thread_time()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if _thread_time is not None:
            self.cpu = _thread_time() - self._cpu0
        self.wall = time.perf_counter() - self._t0
        local.attempt = self._prev
        if self._pending:
            self._show(self._pending + "\n")
            self._pending = ""
        if exc is not None:
            _describe(exc, self)

    def feed(self, text: str, echo: bool = True) -> None:
        """Add ``text`` to the log (and, live, show its complete lines)."""
        if not text:
            return
        log = self._log
        if log is None:
            log = self._log = BoundedLog(MAX_LOG_BYTES)
        log.append(text)
        if echo:
            if self.live is None:
                self.live = live.live_enabled()
            if self.live:
                self._echo(text)

    def _echo(self, text: str) -> None:
        pending = self._pending + text
        if "\n" not in pending and len(pending) < _MAX_PENDING:
            self._pending = pending
            return
        done, newline, rest = pending.rpartition("\n")
        if not newline:  # a long line with no newline yet: show it as is
            done, rest = pending, ""
        self._pending = rest
        self._show(done + "\n")

    def _show(self, lines: str) -> None:
        """Emit complete lines live, each prefixed with the label."""
        lines = masking.scrub(lines)
        prefix = f"[{self.label}] "
        live.emit("".join(f"{prefix}{line}\n" for line in lines[:-1].split("\n")))

    def __repr__(self) -> str:
        size = 0 if self._log is None else len(self.logs)
        return f"<capture.Attempt {self.label!r}: {size} characters logged>"


def _describe(exc: BaseException, cap: Attempt) -> None:
    """Attach the attempt to the exception (``flowkit_attempt``), so the engine can record
    a failed attempt's logs even when the exception was pickled back from a worker."""
    info: dict[str, Any] = {
        "logs": cap.logs,
        "cpu": cap.cpu,
        "peak_rss": cap.peak_rss,
        "wall": cap.wall,
        "worker": cap.worker,
        "cards": cap.cards,
    }
    try:
        exc.flowkit_attempt = info  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # a slotted or frozen exception type
        pass


class _Worker(threading.local):
    name: str | None = None


_worker = _Worker()
if hasattr(os, "register_at_fork"):  # a forked child is another process: name it anew
    os.register_at_fork(after_in_child=lambda: setattr(_worker, "name", None))


def _worker_name() -> str:
    name = _worker.name
    if name is None:  # once per thread: the host, process and thread do not change
        name = _worker.name = (
            f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"
        )
    return name


def attempt(label: str, live: bool | None = None, run_id: str | None = None) -> Attempt:
    """Capture what the calling thread prints and logs until the block ends::

        with capture.attempt("train") as cap:
            value = fn(**kwargs)
        cap.logs, cap.cpu, cap.peak_rss, cap.wall

    ``label`` prefixes live lines (the node id, e.g. ``square[3]``); ``live`` overrides
    :func:`~flowkit.capture.set_live` for this attempt. An exception from the block
    propagates unchanged, carrying ``flowkit_attempt = {"logs", "cpu", "peak_rss", "wall",
    "worker", "cards"}``.
    """
    return Attempt(label, live, run_id)

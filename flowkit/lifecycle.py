"""A run's life as others see it: a heartbeat while it runs, ``interrupted`` on SIGINT/SIGTERM,
and ``lost`` when the process that ran it is gone.

* While a run goes, a daemon thread rewrites its header every :data:`HEARTBEAT_SECONDS` with a
  fresh ``heartbeat`` time (and the header names its ``host`` and ``pid``).
* SIGTERM during ``fk.run`` (in the main thread) raises :class:`RunInterrupted`, as SIGINT raises
  ``KeyboardInterrupt``: the engine's ``finally`` writes every finished call's record and the
  run ends as ``interrupted``.
* A reader (``flowkit runs list``, :meth:`RunStore.list_runs`) sees a header still saying
  ``running`` as ``lost`` at once when its pid is gone on this host, otherwise once its heartbeat
  is older than :data:`LOST_AFTER_SECONDS` (a killed process, a machine gone).

No flowkit imports but the records: the store is passed in as a callable that writes the header.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

HEARTBEAT_SECONDS = 5.0
LOST_AFTER_SECONDS = 60.0


class RunInterrupted(KeyboardInterrupt):
    """SIGTERM arrived during a run: handled everywhere as Ctrl-C is (backends let it through,
    the engine records what finished)."""


def this_host() -> str:
    return socket.gethostname()


class Heartbeat:
    """Calls ``beat()`` every ``every`` seconds on a daemon thread until stopped."""

    def __init__(self, beat: Callable[[], None], every: float = HEARTBEAT_SECONDS) -> None:
        self._beat = beat
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="flowkit-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._beat()
            except Exception:  # a missed beat must never fail the run
                continue


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`RunInterrupted` in the main thread (elsewhere,
    where handlers cannot be set, nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise RunInterrupted(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (one we may not signal counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def seen_status(header: dict[str, Any], now: float | None = None) -> Any:
    """The status a reader should show: ``lost`` for a ``running`` header whose process is
    gone (its pid on this host) or silent (no heartbeat for :data:`LOST_AFTER_SECONDS`), and
    for a ``submitted`` one whose named process is gone (it never started the run)."""
    status = header.get("status")
    pid, host = header.get("pid"), header.get("host")
    gone = isinstance(pid, int) and pid > 0 and host == this_host() and not pid_alive(pid)
    if status == "submitted":  # announced; its process (if named) died before starting it
        return "lost" if gone else status
    if status != "running":
        return status
    if gone:
        return "lost"
    beat = header.get("heartbeat")
    if not isinstance(beat, (int, float)):
        beat = header.get("started")
    now = time.time() if now is None else now
    if isinstance(beat, (int, float)) and now - beat > LOST_AFTER_SECONDS:
        return "lost"
    return status


__all__ = [
    "HEARTBEAT_SECONDS",
    "LOST_AFTER_SECONDS",
    "Heartbeat",
    "RunInterrupted",
    "pid_alive",
    "seen_status",
    "sigterm_interrupts",
    "this_host",
]

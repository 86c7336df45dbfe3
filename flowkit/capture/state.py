"""The one piece of per-thread state every part of capture reads: the attempt running on
this thread, if any (writes and log records from other threads are not captured)."""

from __future__ import annotations

import threading
from typing import Protocol


class Feed(Protocol):
    """Where a captured thread's text goes (an :class:`~flowkit.capture.attempts.Attempt`)."""

    def feed(self, text: str, echo: bool = True) -> None: ...


class _Local(threading.local):
    # A class attribute, so a thread that never entered an attempt reads None without a
    # getattr default (this is read on every write to sys.stdout / sys.stderr).
    attempt: Feed | None = None


local = _Local()

"""Live output: a captured line is also shown at once on the terminal's stderr, prefixed
``[label] `` so a user still sees progress (and whose progress it is).

On unless turned off: :func:`set_live` for this process, or ``FLOWKIT_QUIET=1`` in the
environment (what ``flowkit run --quiet`` sets, so worker processes it starts inherit it).
A sink (:func:`set_live_sink`) can take the lines instead, e.g. a progress line that must
erase itself before a line is printed and redraw after.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from flowkit.capture import streams
from flowkit.capture.state import local

LiveSink = Callable[[str], object]

_setting: bool | None = None  # None: follow FLOWKIT_QUIET
_sink: LiveSink | None = None
_lock = threading.Lock()  # one line at a time, whole, from any number of threads
_TRUE = {"1", "true", "yes", "on"}


def set_live(on: bool | None) -> bool | None:
    """Show captured lines live (True), not (False), or as ``FLOWKIT_QUIET`` says (None);
    returns the previous setting."""
    global _setting
    previous, _setting = _setting, on
    return previous


def live_enabled() -> bool:
    if _setting is not None:
        return _setting
    return os.environ.get("FLOWKIT_QUIET", "").strip().lower() not in _TRUE


def set_live_sink(sink: LiveSink | None) -> LiveSink | None:
    """Send live lines to ``sink`` (None: the terminal's stderr); returns the previous sink."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def emit(text: str) -> None:
    """Write complete, prefixed lines. Runs with this thread's attempt suspended, so a sink
    that prints to ``sys.stderr`` reaches the terminal rather than the attempt's log; a
    closed or broken terminal never fails the task."""
    saved, local.attempt = local.attempt, None
    try:
        with _lock:
            if _sink is not None:
                _sink(text)
                return
            stream = streams.terminal_stderr()
            if stream is not None:
                stream.write(text)
                stream.flush()
    except Exception:  # the terminal went away; the log keeps the line
        pass
    finally:
        local.attempt = saved

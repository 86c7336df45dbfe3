"""``sys.stdout`` / ``sys.stderr`` proxies that route a write by the thread making it.

A write from a thread running an attempt goes to that attempt (:mod:`~flowkit.capture.state`);
any other write (the driver, a library's thread) goes to the wrapped stream untouched.
:func:`install` puts the proxies in place; it is idempotent and :func:`installed` is two
identity checks, so every attempt can afford to check. When someone replaced ``sys.stdout``
after us (pytest's ``capsys``, ``contextlib.redirect_stdout``, a user), the next install
wraps the new stream in a new proxy. Nothing is ever restored: other threads may be in the
middle of an attempt.

Not captured: writes to ``sys.stdout.buffer`` and to file descriptors (C extensions,
subprocesses), which do not pass through ``sys.stdout``.
"""

from __future__ import annotations

import sys
import threading
from typing import IO, Any, TextIO, cast

from flowkit.capture.state import local


class StreamProxy:
    """Stands in for a text stream; see the module."""

    __slots__ = ("wrapped",)

    def __init__(self, wrapped: TextIO | None) -> None:
        self.wrapped = wrapped

    def write(self, text: str) -> int:
        attempt = local.attempt
        if attempt is None:
            if self.wrapped is None:  # no console (pythonw): print() discards too
                return len(text)
            return self.wrapped.write(text)
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        attempt.feed(text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self.wrapped is not None:
            self.wrapped.flush()

    def isatty(self) -> bool:
        return self.wrapped is not None and self.wrapped.isatty()

    def fileno(self) -> int:
        if self.wrapped is None:
            raise OSError("flowkit's stream proxy wraps no stream (sys.stdout was None)")
        return self.wrapped.fileno()

    def __getattr__(self, name: str) -> Any:  # encoding, errors, buffer, closed, ...
        return getattr(self.wrapped, name)

    def __repr__(self) -> str:
        return f"<flowkit.capture proxy of {self.wrapped!r}>"


_lock = threading.Lock()
_out: StreamProxy | None = None
_err: StreamProxy | None = None


def installed() -> bool:
    return sys.stdout is _out and sys.stderr is _err


def install() -> None:
    """Make ``sys.stdout`` and ``sys.stderr`` proxies (wrapping what they are now)."""
    global _out, _err
    with _lock:
        _out = _proxy_for(sys.stdout)
        _err = _proxy_for(sys.stderr)
        sys.stdout = cast(TextIO, _out)
        sys.stderr = cast(TextIO, _err)


def _proxy_for(stream: IO[str] | None) -> StreamProxy:
    if isinstance(stream, StreamProxy):  # ours already (e.g. put back by capsys)
        return stream
    return StreamProxy(cast("TextIO | None", stream))


def terminal_stderr() -> TextIO | None:
    """The stream live lines go to: what the stderr proxy wraps (the real stderr)."""
    if _err is not None:
        return _err.wrapped
    return None if isinstance(sys.stderr, StreamProxy) else sys.stderr


def is_terminal(stream: object) -> bool:
    """True for a stream that is what a proxy wraps (or the interpreter's own)."""
    return stream is not None and (
        stream is sys.__stderr__
        or stream is sys.__stdout__
        or (_err is not None and stream is _err.wrapped)
        or (_out is not None and stream is _out.wrapped)
    )

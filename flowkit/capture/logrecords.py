"""``logging`` records made on a thread running an attempt go to that attempt's log, as
``LEVEL name: message`` (plus the traceback or stack, when the record has one).

The hook is a log-record factory wrapped around the current one, so no logger's level,
handler or ``propagate`` changes (a handler on the root logger would turn
``logging.basicConfig()`` in a task into a no-op). It sees exactly the records a logger is
enabled for: set the level you want captured as you would to see it
(``logging.getLogger("mypkg").setLevel("INFO")``).

No line twice: a record that one of its handlers will write to a proxied stream (a
``StreamHandler`` made on ``sys.stderr`` after capture started) reaches the log through the
proxy in the handler's format, so it is not added here; one that a handler writes straight
to the terminal is logged here but not echoed live. A record no handler takes would go to
logging's last-resort handler (which writes to ``sys.stderr``, the proxy): it is logged
here, and the last resort, wrapped, skips records made on a thread running an attempt.
"""

from __future__ import annotations

import enum
import logging
import threading
from typing import Any

from flowkit.capture import streams
from flowkit.capture.state import Feed, local

_lock = threading.Lock()
_base: Any = None  # the factory ours wraps; None until installed
_formatter = logging.Formatter()  # for formatException only: records are never mutated


class Route(enum.Enum):
    PROXIED = "a handler writes it to a proxied stream: the proxy captures it"
    TERMINAL = "a handler writes it to the terminal: capture it, do not echo it"
    ALONE = "nobody shows it: capture and echo it"


def install() -> None:
    """Wrap the current log-record factory and last-resort handler (once per process)."""
    global _base
    with _lock:
        if _base is None:
            _base = logging.getLogRecordFactory()
            logging.setLogRecordFactory(_factory)
            if logging.lastResort is not None:
                logging.lastResort = _LastResort(logging.lastResort)


class _LastResort(logging.Handler):
    """Logging's last resort, except on a thread running an attempt (captured already)."""

    def __init__(self, wrapped: logging.Handler) -> None:
        super().__init__(wrapped.level)
        self.wrapped = wrapped

    def handle(self, record: logging.LogRecord) -> bool:
        if local.attempt is not None:
            return False
        return bool(self.wrapped.handle(record))

    def emit(self, record: logging.LogRecord) -> None:  # handle() never calls it
        self.wrapped.emit(record)


def _factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record: logging.LogRecord = _base(*args, **kwargs)
    attempt = local.attempt
    if attempt is not None and isinstance(record.name, str):  # makeLogRecord: no name yet
        _capture(attempt, record)
    return record


def _capture(attempt: Feed, record: logging.LogRecord) -> None:
    route = route_of(record)
    if route is not Route.PROXIED:
        attempt.feed(format_record(record) + "\n", echo=route is Route.ALONE)


def format_record(record: logging.LogRecord) -> str:
    """``LEVEL name: message``; never raises (a bad format must not fail the task)."""
    try:
        message = record.getMessage()
    except Exception as e:
        message = f"{record.msg!r} % {record.args!r} (unformattable: {type(e).__name__})"
    text = f"{record.levelname} {record.name}: {message}"
    if record.exc_info:
        text += "\n" + _formatter.formatException(record.exc_info)
    if record.stack_info:
        text += "\n" + record.stack_info
    return text


def route_of(record: logging.LogRecord) -> Route:
    """Where the handlers of the record's logger (and its parents, as far as it propagates)
    will write it (no handler: the last resort, which skips it, see the module)."""
    logger = (
        logging.root
        if record.name == "root"
        else logging.Logger.manager.loggerDict.get(record.name)  # never creates a logger
    )
    if not isinstance(logger, logging.Logger):
        return Route.ALONE
    route = Route.ALONE
    node: logging.Logger | None = logger
    while node is not None:
        for handler in node.handlers:
            if isinstance(handler, logging.StreamHandler) and record.levelno >= handler.level:
                route = _stronger(route, _route_for_stream(handler.stream))
        node = node.parent if node.propagate else None
    return route


def _route_for_stream(stream: object) -> Route:
    if isinstance(stream, streams.StreamProxy):
        return Route.PROXIED
    return Route.TERMINAL if streams.is_terminal(stream) else Route.ALONE


_STRENGTH = {Route.ALONE: 0, Route.TERMINAL: 1, Route.PROXIED: 2}


def _stronger(a: Route, b: Route) -> Route:
    return a if _STRENGTH[a] >= _STRENGTH[b] else b

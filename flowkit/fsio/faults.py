"""The errors a store raises, and :func:`describe_fault`, which names an operating-system or
network failure for what it is (disk full, permission denied, timeout)."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any

from flowkit.errors import StoreError


class ObjectUnavailable(StoreError):
    """An object or document could not be read back intact (the cache treats it as a miss).

    ``version``: set by :meth:`~flowkit.store.documents.DocumentStore.read_doc_versioned`
    when the file is there but unreadable, so that a caller may replace it by
    compare-and-swap."""

    transient = False
    version: str | None = None


class ObjectMissing(ObjectUnavailable):
    """The object or document is not in the store."""


class ObjectUnsigned(ObjectMissing):
    """A signed store met an object or document without a valid signature (or a store without
    a key met a signed one): it is treated as absent and never parsed."""


class ObjectCorrupt(ObjectUnavailable):
    """The object or document failed its size or digest check, or its name is not valid."""


class StoreFault(StoreError):
    """A store operation failed for a reason outside flowkit (disk full, permission denied,
    an endpoint that does not answer). ``transient`` is True when retrying may succeed
    (timeouts, connection errors, server errors); ``errno`` is the OS error number if any."""

    def __init__(self, message: str, *, transient: bool = False, errno: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.errno = errno

    def __reduce__(self) -> tuple[Any, ...]:
        # keep the keyword-only fields when the error crosses a process boundary (Ray)
        return (_rebuild_fault, (type(self), str(self), self.transient, self.errno))


def _rebuild_fault(
    cls: type[StoreFault], message: str, transient: bool, errno_: int | None
) -> StoreFault:
    return cls(message, transient=transient, errno=errno_)


class SinkError(StoreError):
    """Writing serialised bytes to the store failed (raised by :class:`HashingWriter`).

    It is a :class:`StoreError`, so the serializer passes it through untouched and the
    store reports the underlying ``error`` (disk full...) instead of blaming the value.
    """

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


_ERRNO_FAULTS: dict[int, tuple[str, bool]] = {
    errno.ENOSPC: ("disk full", False),
    errno.EFBIG: ("file too large", False),
    errno.EACCES: ("permission denied", False),
    errno.EPERM: ("permission denied", False),
    errno.EROFS: ("read-only file system", False),
    errno.EIO: ("input/output error", False),
    errno.ENAMETOOLONG: ("file name too long", False),
    errno.ELOOP: ("a symbolic link in the store (flowkit does not follow links in a store)", False),
    errno.ETIMEDOUT: ("timed out", True),
    errno.ECONNREFUSED: ("connection refused", True),
    errno.ECONNRESET: ("connection reset", True),
    errno.ECONNABORTED: ("connection aborted", True),
    errno.EHOSTUNREACH: ("host unreachable", True),
    errno.ENETUNREACH: ("network unreachable", True),
    errno.EBUSY: ("busy or throttled (e.g. S3 SlowDown)", True),
    errno.EAGAIN: ("temporarily unavailable", True),
}
for _name, _text in (("EDQUOT", "disk quota exceeded"), ("EREMOTEIO", "server error (HTTP 5xx)")):
    if hasattr(errno, _name):
        _ERRNO_FAULTS[getattr(errno, _name)] = (_text, _name == "EREMOTEIO")

# Client-library exceptions (botocore, aiohttp) recognised by class name, so that naming a
# fault never imports them.
_TIMEOUT_CLASSES = frozenset(
    {"ReadTimeoutError", "ConnectTimeoutError", "ServerTimeoutError", "FSTimeoutError"}
)
_CONNECTION_CLASSES = frozenset(
    {
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ClientConnectorError",
        "ServerDisconnectedError",
        "ClientOSError",
        "ProxyConnectionError",
        "ResponseStreamingError",
    }
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _describe_one(exc: BaseException, timeout: float | None) -> tuple[str, bool] | None:
    names = {c.__name__ for c in type(exc).__mro__}
    if isinstance(exc, TimeoutError) or names & _TIMEOUT_CLASSES:
        within = f" within {timeout:g} s" if timeout else ""
        return f"no answer{within} (timeout)", True
    number = getattr(exc, "errno", None)
    if isinstance(number, int) and number in _ERRNO_FAULTS:
        text, transient = _ERRNO_FAULTS[number]
        return f"{text} ({errno.errorcode.get(number, number)})", transient
    if names & _CONNECTION_CLASSES or isinstance(exc, ConnectionError):
        return f"endpoint unreachable ({type(exc).__name__}: {exc})", True
    if isinstance(exc, PermissionError):
        return f"permission denied ({exc})", False
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(status, int) and status >= 500:
            return f"server error (HTTP {status})", True
    return None


def describe_fault(exc: BaseException, timeout: float | None = None) -> tuple[str, bool]:
    """(what went wrong in a few words, whether a retry may succeed) for a failed operation.

    >>> describe_fault(OSError(errno.ENOSPC, "No space left on device"))
    ('disk full (ENOSPC)', False)
    """
    for cause in _chain(exc):
        if isinstance(cause, SinkError):
            cause = cause.error
        found = _describe_one(cause, timeout)
        if found is not None:
            return found
    return f"{type(exc).__name__}: {exc}", False


def sink_error_in(exc: BaseException) -> SinkError | None:
    """The :class:`SinkError` that caused ``exc`` (a serializer may have wrapped it)."""
    for cause in _chain(exc):
        if isinstance(cause, SinkError):
            return cause
    return None


__all__ = [
    "ObjectCorrupt",
    "ObjectMissing",
    "ObjectUnavailable",
    "ObjectUnsigned",
    "SinkError",
    "StoreFault",
    "describe_fault",
    "sink_error_in",
]

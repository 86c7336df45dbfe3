"""Byte-level access below a store's root: plain ``os`` for local folders, fsspec otherwise.

Both classes offer the same small set of operations on ``/``-separated paths relative to the
root; :class:`flowkit.store.Store` builds its policies (atomic, write-once, verified, signed)
on them. The errors a store raises live here too, with :func:`describe_fault`, which names an
operating-system or network failure for what it is (disk full, permission denied, timeout).

* ``LocalIO`` writes through a temporary file in ``<root>/tmp`` renamed into place with
  ``os.replace`` (atomic on one filesystem), remembers which folders it has created or
  checked (no stat storm on the hot path) and memory-maps large objects for reading. Small
  files are read with ``os.open``/``os.read`` (half the cost of a buffered ``open`` on a
  cache hit). It never follows a symbolic link below the root: the last component is opened
  with ``O_NOFOLLOW`` and every folder on a path is checked once per process, so a link
  planted in a store cannot make flowkit read, write or delete anything outside it.
* ``FsspecIO`` writes whole objects (``pipe_file``, or a streamed ``open("wb")`` that
  becomes visible only when complete), which object stores make atomic. On asynchronous
  filesystems (S3, GCS, HTTP) every call has a deadline: the store's timeout, plus a second
  per MiB for large transfers; listings and streamed uploads rely on the client's own
  per-request timeouts.
"""

from __future__ import annotations

import contextlib
import errno
import io
import mmap
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

from flowkit.errors import StoreError
from flowkit.hashing import BlobHasher

MMAP_MIN = 1 << 20  # local objects this big are memory-mapped; remote ones checked before put
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_MIN_RATE = float(1 << 20)  # bytes/s a large transfer is granted on top of the timeout


# -- errors --------------------------------------------------------------------------------


class ObjectUnavailable(StoreError):
    """An object or document could not be read back intact (the cache treats it as a miss)."""

    transient = False


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


# -- streams and reads ---------------------------------------------------------------------


class HashingWriter(io.RawIOBase):
    """A write-only stream that hashes what passes through (to ``out`` if given).

    A failing ``out`` (disk full...) raises :class:`SinkError`, never a plain OSError, so
    the serializer writing into this stream does not mistake it for a problem of the value.
    """

    def __init__(self, out: IO[bytes] | None) -> None:
        super().__init__()
        self.hasher = BlobHasher()
        self._out = out

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = b if isinstance(b, bytes) else memoryview(b).cast("B")
        self.hasher.update(data)
        if self._out is not None:
            try:
                self._out.write(data)
            except OSError as exc:
                raise SinkError(exc) from exc
        return len(data)

    def tell(self) -> int:
        return self.hasher.size


def info_mtime(info: dict[str, Any]) -> float | None:
    for k in ("mtime", "LastModified", "last_modified", "updated", "created"):
        v = info.get(k)
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, datetime):
            return v.timestamp()
        if isinstance(v, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
    return None


_READ_HINT = 1 << 16  # read size when the length is not known (index entries are ~1 KB)


def read_file(path: str, size: int | None = None, *, once: bool = False) -> bytes:
    """The file's bytes, read with raw ``os`` calls (each one a GIL release, so few of them).

    The last component is opened with ``O_NOFOLLOW``: a symbolic link raises ``OSError``
    (``ELOOP``) instead of being followed.

    * Without ``size``: read to EOF (until ``os.read`` returns nothing, never trusting a
      short read).
    * With ``once`` (and no ``size``): stop after a first read that did not fill its buffer.
      The caller must be able to tell whole bytes from a prefix (a checksummed document can)
      and read again without ``once`` when they do not check out.
    * With the expected ``size``: one read of ``size + 1`` bytes covers the usual case, and
      reading goes on only while fewer than ``size`` bytes came back. The caller checks the
      length and the digest, so a longer file shows up as ``size + 1`` bytes (damaged), a
      shorter one as fewer.
    """
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    try:
        if size is not None:
            data = os.read(fd, size + 1)
            if len(data) >= size:
                return data
            parts = [data]
            got = len(data)
            while got < size and (chunk := os.read(fd, size + 1 - got)):
                parts.append(chunk)
                got += len(chunk)
            return b"".join(parts)
        data = os.read(fd, _READ_HINT)
        if not data or (once and len(data) < _READ_HINT):
            return data
        parts = [data]
        while chunk := os.read(fd, _READ_HINT):
            parts.append(chunk)
        return data if len(parts) == 1 else b"".join(parts)
    finally:
        os.close(fd)


def _nofollow_opener(path: str, flags: int) -> int:
    return os.open(path, flags | _NOFOLLOW)


def _link_error(path: str) -> OSError:
    return OSError(errno.ELOOP, "a folder in the store is a symbolic link", path)


class LocalIO:
    """Plain-``os`` access below a local root. Paths are ``/``-separated, relative."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._prefix = os.path.join(root, "")  # root + separator: os.path.join for relative paths
        self._dirs: set[str] = set()  # "<folder>/" known to exist and not be links ("": root)

    def path(self, rel: str) -> str:
        return self._prefix + rel

    def _parent(self, rel: str) -> None:
        """Check (once) that no folder on ``rel``'s path is a symbolic link."""
        i = rel.rfind("/")
        if i > 0 and rel[: i + 1] not in self._dirs:
            self._check_dir(rel[:i], create=False)

    def _check_dir(self, rel_dir: str, *, create: bool) -> None:
        """Walk ``rel_dir`` from the root: every part must be a real folder (made if
        ``create``); FileNotFoundError if one is missing, OSError(ELOOP) if one is a link."""
        path = self.root
        if create and "" not in self._dirs:
            os.makedirs(path, exist_ok=True)  # the root itself may be (or lie behind) a link
            self._dirs.add("")
        for part in rel_dir.split("/"):
            path = os.path.join(path, part)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(path)
                st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode):
                raise (
                    _link_error(path)
                    if stat.S_ISLNK(st.st_mode)
                    else NotADirectoryError(errno.ENOTDIR, "not a folder", path)
                )
        self._dirs.add(rel_dir + "/")

    def check_dir(self, rel_dir: str) -> str:
        """The absolute path of the existing folder ``rel_dir`` (FileNotFoundError if it is
        missing, OSError(ELOOP) if a folder on its path is a link); made by no one."""
        if rel_dir + "/" not in self._dirs:
            self._check_dir(rel_dir, create=False)
        return self._prefix + rel_dir

    def ensure_dir(self, rel_dir: str) -> str:
        """Make the folder ``rel_dir`` (checked: no links on its path); its absolute path."""
        if rel_dir + "/" not in self._dirs:
            self._check_dir(rel_dir, create=True)
        return self._prefix + rel_dir

    def read(self, rel: str, *, once: bool = False) -> bytes:
        """The file's bytes (``once``: possibly a prefix, see :func:`read_file`)."""
        self._parent(rel)
        return read_file(self._prefix + rel, once=once)

    def read_object(self, rel: str, size: int) -> tuple[Any, str]:
        self._parent(rel)
        p = self._prefix + rel
        if size < MMAP_MIN:
            return read_file(p, size), p
        with open(p, "rb", opener=_nofollow_opener) as f:
            if os.fstat(f.fileno()).st_size == 0:
                return b"", p
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), p

    def temp(self) -> str:
        """A new path in ``<root>/tmp`` for a write in progress."""
        return os.path.join(self.ensure_dir("tmp"), uuid.uuid4().hex)

    def open_temp(self) -> tuple[str, IO[bytes]]:
        """A new temporary file, opened for writing, and its path."""
        tmp = self.temp()
        return tmp, open(tmp, "wb")  # the caller closes it

    def commit(self, tmp: str, rel: str) -> None:
        i = rel.rfind("/")
        if i > 0:
            self.ensure_dir(rel[:i])
        os.replace(tmp, self._prefix + rel)

    def write(self, rel: str, data: bytes) -> None:
        tmp, f = self.open_temp()
        try:
            with f:
                f.write(data)
            self.commit(tmp, rel)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def size(self, rel: str) -> int | None:
        """Size of a regular file (None if it is missing, or not a regular file)."""
        try:
            self._parent(rel)
            st = os.lstat(self._prefix + rel)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def list(self, rel: str) -> list[str]:
        try:
            if rel:
                self._check_dir(rel, create=False)
            return os.listdir(self._prefix + rel)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def remove(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            self._parent(rel)
            os.unlink(self._prefix + rel)  # a link itself, never what it points to

    def walk(self, rel: str) -> Iterator[tuple[str, int, float | None]]:
        try:
            self._check_dir(rel, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return
        base = self._prefix + rel
        for dirpath, _, names in os.walk(base):  # does not descend into linked folders
            for n in names:
                p = os.path.join(dirpath, n)
                with contextlib.suppress(FileNotFoundError):
                    st = os.lstat(p)
                    yield (
                        os.path.relpath(p, self.root).replace(os.sep, "/"),
                        st.st_size,
                        st.st_mtime,
                    )


class FsspecIO:
    """The same operations over an fsspec filesystem (remote or ``memory://``).

    ``timeout``: the deadline of each call on an asynchronous filesystem (None: none).
    """

    def __init__(self, fs: Any, root: str, timeout: float | None = None) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.timeout = timeout
        self._async = bool(getattr(fs, "async_impl", False)) and timeout is not None
        self._kw: dict[str, Any] = {"timeout": timeout} if self._async else {}

    def _budget(self, size: int) -> dict[str, Any]:
        """Deadline keyword of a transfer of ``size`` bytes (a second per MiB on top)."""
        if not self._async or self.timeout is None:
            return {}
        return {"timeout": self.timeout + size / _MIN_RATE}

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def read(self, rel: str, *, once: bool = False) -> bytes:
        data: bytes = self.fs.cat_file(self.path(rel), **self._kw)  # whole: ``once`` is moot
        return data

    def read_object(self, rel: str, size: int) -> tuple[Any, str | None]:
        data: bytes = self.fs.cat_file(self.path(rel), **self._budget(size))
        return data, None

    def write(self, rel: str, data: bytes) -> None:
        self.fs.pipe_file(self.path(rel), data, **self._budget(len(data)))

    def upload(self, spool: IO[bytes], rel: str) -> None:
        spool.seek(0)
        if isinstance(spool, tempfile.SpooledTemporaryFile) and not spool._rolled:  # type: ignore[attr-defined]
            data = spool.read()
            self.fs.pipe_file(self.path(rel), data, **self._budget(len(data)))
            return
        with self.fs.open(self.path(rel), "wb") as out:  # visible only once complete
            shutil.copyfileobj(spool, out, 8 << 20)

    def size(self, rel: str) -> int | None:
        try:
            return int(self.fs.info(self.path(rel), **self._kw)["size"])
        except FileNotFoundError:
            return None

    def exists(self, path: str) -> bool:
        """True if ``path`` (absolute in the filesystem, e.g. a bucket) exists."""
        return bool(self.fs.exists(path, **self._kw))

    def list(self, rel: str) -> list[str]:
        try:
            entries = self.fs.ls(self.path(rel), detail=False, **self._kw)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [e.rstrip("/").rsplit("/", 1)[-1] for e in entries]

    def remove(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path(rel), **self._kw)

    def walk(self, rel: str) -> Iterator[tuple[str, int, float | None]]:
        try:
            found = self.fs.find(self.path(rel), detail=True)  # a listing: no overall deadline
        except FileNotFoundError:
            return
        prefix = self.root + "/"
        for name, info in found.items():
            name = name.lstrip("/") if not self.root.startswith("/") else name
            if name.startswith(prefix) and info.get("type") != "directory":
                yield name[len(prefix) :], int(info.get("size") or 0), info_mtime(info)


__all__ = [
    "MMAP_MIN",
    "FsspecIO",
    "HashingWriter",
    "LocalIO",
    "ObjectCorrupt",
    "ObjectMissing",
    "ObjectUnavailable",
    "ObjectUnsigned",
    "SinkError",
    "StoreFault",
    "describe_fault",
    "info_mtime",
    "read_file",
    "sink_error_in",
]

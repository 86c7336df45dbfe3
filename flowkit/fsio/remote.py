"""``FsspecIO``: an :class:`~flowkit.fsio.protocol.ObjectIO` over an fsspec filesystem (S3, GCS,
HTTP, ``memory://``...).

Whole objects are written in one request (``pipe_file``), or streamed through ``open("wb")``,
which becomes visible only when complete; object stores make both atomic. On asynchronous
filesystems every call has a deadline: the store's timeout, plus a second per MiB for large
transfers; listings and streamed uploads rely on the client's own per-request timeouts.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any, cast

from flowkit.fsio.conditional import ConditionalIO, Emulated, Guarantee
from flowkit.fsio.local import MMAP_MIN
from flowkit.fsio.s3 import S3Conditional
from flowkit.fsio.streams import info_mtime

SPOOL_MAX = 16 << 20  # a put keeps up to this much in memory before spilling to disk
_MIN_RATE = float(1 << 20)  # bytes/s a large transfer is granted on top of the timeout


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
        # s3fs asks for a file's size (a HEAD, and on a miss a listing too) before every
        # GET, to split large downloads; one request is all a document or object needs
        self._one_get: dict[str, Any] = {"max_concurrency": 1} if _is_s3(fs) else {}
        self._conditional: ConditionalIO | None = None  # chosen on first use

    def _budget(self, size: int) -> dict[str, Any]:
        """Deadline keyword of a transfer of ``size`` bytes (a second per MiB on top)."""
        if not self._async or self.timeout is None:
            return {}
        return {"timeout": self.timeout + size / _MIN_RATE}

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def read(self, rel: str, *, once: bool = False) -> bytes:
        # whole: ``once`` is moot
        data: bytes = self.fs.cat_file(self.path(rel), **self._kw, **self._one_get)
        return data

    def read_object(self, rel: str, size: int) -> tuple[Any, str | None]:
        kw = self._budget(size)
        if size < SPOOL_MAX:  # larger ones may gain from s3fs's concurrent ranged GETs
            kw.update(self._one_get)
        data: bytes = self.fs.cat_file(self.path(rel), **kw)
        return data, None

    def write(self, rel: str, data: bytes) -> None:
        self.fs.pipe_file(self.path(rel), data, **self._budget(len(data)))

    def put(self, fill: Callable[[IO[bytes]], str | None]) -> None:
        """Spool ``fill``'s bytes (in memory up to :data:`SPOOL_MAX`, then on disk), then send
        them to the path ``fill`` returned (None: nothing is sent). Small objects are simply
        put again (the same bytes); one of :data:`MMAP_MIN` bytes or more already there with
        its size is not."""
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX) as spool:
            rel = fill(cast(IO[bytes], spool))
            if rel is None:
                return
            size = spool.tell()
            if size < MMAP_MIN or self.size(rel) != size:
                self.upload(cast(IO[bytes], spool), rel)

    def upload(self, spool: IO[bytes], rel: str) -> None:
        spool.seek(0)
        if isinstance(spool, tempfile.SpooledTemporaryFile) and not spool._rolled:  # type: ignore[attr-defined]
            data = spool.read()
            self.fs.pipe_file(self.path(rel), data, **self._budget(len(data)))
            return
        with self.fs.open(self.path(rel), "wb") as out:  # visible only once complete
            shutil.copyfileobj(spool, out, 8 << 20)

    # -- conditional writes (flowkit.fsio.conditional) ------------------------------------

    def _cond(self) -> ConditionalIO:
        """S3 conditional puts if the server honours them (probed once), the process lock
        for ``memory://``, best effort otherwise."""
        if self._conditional is None:
            chosen: ConditionalIO
            if _is_s3(self.fs):
                s3 = _S3IO(S3Conditional(self.fs, self._kw), self)
                chosen = s3 if s3.s3.probe(self.root) else Emulated(self)
            elif _protocols(self.fs) & {"memory"}:
                chosen = Emulated(self, "process")
            else:
                chosen = Emulated(self)
            self._conditional = chosen
        return self._conditional

    def guarantee(self) -> Guarantee:
        """``atomic`` on S3 with conditional writes, ``process`` for ``memory://``,
        ``best-effort`` otherwise (see :mod:`flowkit.fsio.conditional`)."""
        return self._cond().guarantee()

    def create(self, rel: str, data: bytes) -> bool:
        return self._cond().create(rel, data)

    def read_versioned(self, rel: str) -> tuple[bytes, str]:
        return self._cond().read_versioned(rel)

    def replace(self, rel: str, data: bytes, version: str) -> bool:
        return self._cond().replace(rel, data, version)

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


def _protocols(fs: Any) -> set[str]:
    protocol = getattr(fs, "protocol", ())
    return {protocol} if isinstance(protocol, str) else set(protocol)


def _is_s3(fs: Any) -> bool:
    return "s3" in _protocols(fs)


class _S3IO:
    """:class:`~flowkit.fsio.s3.S3Conditional` on the relative paths of an :class:`FsspecIO`."""

    def __init__(self, s3: S3Conditional, io: FsspecIO) -> None:
        self.s3 = s3
        self.io = io

    def guarantee(self) -> Guarantee:
        return "atomic"

    def create(self, rel: str, data: bytes) -> bool:
        return self.s3.create(self.io.path(rel), data)

    def read_versioned(self, rel: str) -> tuple[bytes, str]:
        return self.s3.read_versioned(self.io.path(rel))

    def replace(self, rel: str, data: bytes, version: str) -> bool:
        return self.s3.replace(self.io.path(rel), data, version)


__all__ = ["SPOOL_MAX", "FsspecIO"]

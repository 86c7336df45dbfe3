"""Byte-level access below a store's root: plain ``os`` for local folders, fsspec otherwise.

Both classes offer the same small set of operations on ``/``-separated paths relative to the
root; :class:`flowkit.store.Store` builds its policies (atomic, write-once, verified) on them.

* ``_LocalIO`` writes through a temporary file in ``<root>/tmp`` renamed into place with
  ``os.replace`` (atomic on one filesystem), remembers which folders it has created (no stat
  storm on the hot path) and memory-maps large objects for reading. Small files are read with
  ``os.open``/``os.read`` (half the cost of a buffered ``open`` on a cache hit).
* ``_FsspecIO`` writes whole objects (``pipe_file``, or a streamed ``open("wb")`` that
  becomes visible only when complete), which object stores make atomic.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

from flowkit.hashing import BlobHasher

MMAP_MIN = 1 << 20  # local objects this big are memory-mapped; remote ones checked before put


class HashingWriter(io.RawIOBase):
    """A write-only stream that hashes what passes through (to ``out`` if given)."""

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
            self._out.write(data)
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
    fd = os.open(path, os.O_RDONLY)
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


class LocalIO:
    """Plain-``os`` access below a local root. Paths are ``/``-separated, relative."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._prefix = os.path.join(root, "")  # root + separator: os.path.join for relative paths
        self._dirs: set[str] = set()

    def path(self, rel: str) -> str:
        return self._prefix + rel

    def _mkdirs(self, d: str) -> None:
        if d not in self._dirs:
            os.makedirs(d, exist_ok=True)
            self._dirs.add(d)

    def read(self, rel: str, *, once: bool = False) -> bytes:
        """The file's bytes (``once``: possibly a prefix, see :func:`read_file`)."""
        return read_file(self._prefix + rel, once=once)

    def read_object(self, rel: str, size: int) -> tuple[Any, str]:
        p = self._prefix + rel
        if size < MMAP_MIN:
            return read_file(p, size), p
        with open(p, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return b"", p
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), p

    def temp(self) -> str:
        d = os.path.join(self.root, "tmp")
        self._mkdirs(d)
        return os.path.join(d, uuid.uuid4().hex)

    def commit(self, tmp: str, rel: str) -> None:
        final = os.path.join(self.root, rel)
        self._mkdirs(os.path.dirname(final))
        os.replace(tmp, final)

    def write(self, rel: str, data: bytes) -> None:
        tmp = self.temp()
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            self.commit(tmp, rel)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def size(self, rel: str) -> int | None:
        try:
            return os.stat(os.path.join(self.root, rel)).st_size
        except FileNotFoundError:
            return None

    def list(self, rel: str) -> list[str]:
        try:
            return os.listdir(os.path.join(self.root, rel))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def remove(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.root, rel))

    def walk(self, rel: str) -> Iterator[tuple[str, int, float | None]]:
        base = os.path.join(self.root, rel)
        for dirpath, _, names in os.walk(base):
            for n in names:
                p = os.path.join(dirpath, n)
                with contextlib.suppress(FileNotFoundError):
                    st = os.stat(p)
                    yield (
                        os.path.relpath(p, self.root).replace(os.sep, "/"),
                        st.st_size,
                        st.st_mtime,
                    )


class FsspecIO:
    """The same operations over an fsspec filesystem (remote or ``memory://``)."""

    def __init__(self, fs: Any, root: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def read(self, rel: str, *, once: bool = False) -> bytes:
        data: bytes = self.fs.cat_file(self.path(rel))  # whole, so ``once`` changes nothing
        return data

    def read_object(self, rel: str, size: int) -> tuple[Any, str | None]:
        return self.read(rel), None

    def write(self, rel: str, data: bytes) -> None:
        self.fs.pipe_file(self.path(rel), data)

    def upload(self, spool: IO[bytes], rel: str) -> None:
        spool.seek(0)
        if isinstance(spool, tempfile.SpooledTemporaryFile) and not spool._rolled:  # type: ignore[attr-defined]
            self.fs.pipe_file(self.path(rel), spool.read())
            return
        with self.fs.open(self.path(rel), "wb") as out:  # visible only once complete
            shutil.copyfileobj(spool, out, 8 << 20)

    def size(self, rel: str) -> int | None:
        try:
            return int(self.fs.info(self.path(rel))["size"])
        except FileNotFoundError:
            return None

    def list(self, rel: str) -> list[str]:
        try:
            entries = self.fs.ls(self.path(rel), detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [e.rstrip("/").rsplit("/", 1)[-1] for e in entries]

    def remove(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path(rel))

    def walk(self, rel: str) -> Iterator[tuple[str, int, float | None]]:
        try:
            found = self.fs.find(self.path(rel), detail=True)
        except FileNotFoundError:
            return
        prefix = self.root + "/"
        for name, info in found.items():
            name = name.lstrip("/") if not self.root.startswith("/") else name
            if name.startswith(prefix) and info.get("type") != "directory":
                yield name[len(prefix) :], int(info.get("size") or 0), info_mtime(info)


__all__ = ["MMAP_MIN", "FsspecIO", "HashingWriter", "LocalIO", "info_mtime", "read_file"]

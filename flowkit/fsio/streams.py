"""Byte streams and reads below a store: a hashing write stream, and raw ``os`` reads that
never follow a symbolic link."""

from __future__ import annotations

import contextlib
import io
import os
from datetime import datetime
from typing import IO, Any

from flowkit.fsio.faults import SinkError
from flowkit.hashing import BlobHasher

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_READ_HINT = 1 << 16  # read size when the length is not known (index entries are ~1 KB)


class HashingWriter(io.RawIOBase):
    """A write-only stream that hashes what passes through (to ``out`` if given).

    ``hold``: keep the first bytes in memory, up to ``hold`` of them, and send nothing to
    ``out`` until more come (then the held bytes go first). A value that fits is stored
    inline and never touches ``out`` (see :attr:`held`).

    A failing ``out`` (disk full...) raises :class:`SinkError`, never a plain OSError, so
    the serializer writing into this stream does not mistake it for a problem of the value.
    """

    def __init__(self, out: IO[bytes] | None, hold: int = 0) -> None:
        super().__init__()
        self.hasher = BlobHasher()
        self._out = out
        self._hold = hold
        self._held: list[bytes] | None = [] if hold > 0 else None

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = b if isinstance(b, bytes) else memoryview(b).cast("B")
        self.hasher.update(data)
        held = self._held
        if held is not None:
            if self.hasher.size <= self._hold:
                held.append(bytes(data))  # a copy: the caller may reuse its buffer
                return len(data)
            self.release()
        self._send(data)
        return len(data)

    def _send(self, data: bytes | memoryview) -> None:
        if self._out is not None:
            try:
                self._out.write(data)
            except OSError as exc:
                raise SinkError(exc) from exc

    @property
    def held(self) -> bytes | None:
        """Every byte written so far if they all fit in ``hold``, else None."""
        return None if self._held is None else b"".join(self._held)

    def release(self) -> None:
        """Send the held bytes to ``out`` and hold nothing more."""
        held, self._held = self._held, None
        if held:
            self._send(b"".join(held))

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
    fd = os.open(path, os.O_RDONLY | NOFOLLOW)
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


__all__ = ["NOFOLLOW", "HashingWriter", "info_mtime", "read_file"]

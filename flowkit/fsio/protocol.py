"""``ObjectIO``: the byte-level operations a store needs below its root.

:class:`flowkit.store.Store` builds its policies (write-once, verified, signed, named faults)
on these operations and never asks which implementation it holds. Paths are ``/``-separated
and relative to the root; the store validates them before they get here. Implementations
raise ``OSError`` (``FileNotFoundError`` for a missing file) or their client's own errors; the
store names them as a :class:`~flowkit.fsio.faults.StoreFault`.

An implementation may also offer conditional writes
(:class:`~flowkit.fsio.conditional.ConditionalIO`); the store emulates them, best effort,
over one that does not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO, Any, Protocol


class ObjectIO(Protocol):
    """Byte-level access below one root (:class:`~flowkit.fsio.local.LocalIO`,
    :class:`~flowkit.fsio.remote.FsspecIO`)."""

    root: str

    def path(self, rel: str) -> str:
        """The full path (or URL path) of ``rel``."""
        ...

    def read(self, rel: str, *, once: bool = False) -> bytes:
        """The file's bytes. ``once``: a first read may return a prefix (the caller can tell,
        and reads again without ``once``); implementations may ignore it."""
        ...

    def read_object(self, rel: str, size: int) -> tuple[Any, str | None]:
        """(a bytes-like object of the file's content, its local path or None). ``size`` is
        the expected size: a local implementation may memory-map or stop one byte past it."""
        ...

    def write(self, rel: str, data: bytes) -> None:
        """Write a whole file atomically (readers see the old bytes or the new, never a mix)."""
        ...

    def put(self, fill: Callable[[IO[bytes]], str | None]) -> None:
        """Write streamed, content-addressed bytes: ``fill`` writes them into the stream it is
        given and returns the path they belong at (known only once they are written, e.g.
        from their digest), or None to keep nothing (a value small enough to be stored
        inline). The file appears atomically and only if ``fill`` returns a path; an error
        raised by ``fill`` propagates unchanged. Nothing may be created before the first
        write, so a ``fill`` that writes nothing costs no I/O. Since a path names its
        content, an implementation may skip a write whose file is already there."""
        ...

    def size(self, rel: str) -> int | None:
        """The size of a regular file; None if there is none."""
        ...

    def list(self, rel: str) -> list[str]:
        """The names directly below the folder ``rel`` (``""``: the root); empty if missing."""
        ...

    def remove(self, rel: str) -> None:
        """Delete a file (a link itself, never its target); no error if it is missing."""
        ...

    def walk(self, rel: str) -> Iterator[tuple[str, int, float | None]]:
        """Every file below ``rel``: (path relative to the root, size, mtime or None)."""
        ...


__all__ = ["ObjectIO"]

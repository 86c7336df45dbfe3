"""Conditional writes below a store's root: create a file only if none is there, replace one
only if it is still the version read (compare-and-swap).

They are what makes one scheduler lease and one start per due fire possible on a shared store
(:mod:`flowkit.automation.lease`, :mod:`flowkit.automation.claims`). What holds depends on
the storage, and each implementation says which in ``guarantee``:

* ``"atomic"``: against every process and machine using the store. A local folder
  (:class:`~flowkit.fsio.local.LocalIO`: a hard link that fails if the name exists, and
  ``flock`` around a compare-and-replace), S3 with conditional writes (``If-None-Match: *``,
  ``If-Match: <etag>``: AWS since 2024, moto).
* ``"process"``: ``memory://``, which only the threads of one process can see anyway: a lock in
  the process makes it atomic for all of them.
* ``"best-effort"``: a filesystem without conditional writes (an S3-compatible server that
  ignores the headers, other fsspec filesystems): checked, written, read back. Two writers
  racing within one round trip may both believe they won.

A version is opaque text: an S3 ETag, or the SHA-256 of the file's bytes elsewhere (a
rewrite with the very same bytes keeps the version, which a compare-and-swap on values does
not mind).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Literal, Protocol, runtime_checkable

from flowkit.fsio.protocol import ObjectIO

Guarantee = Literal["atomic", "process", "best-effort"]

# One lock for every emulated conditional write in this process (memory:// and best effort):
# a read-compare-write under it is atomic for all the threads of the process.
PROCESS_LOCK = threading.Lock()


@runtime_checkable
class ConditionalIO(Protocol):
    """The conditional operations an :class:`~flowkit.fsio.protocol.ObjectIO` may offer."""

    def guarantee(self) -> Guarantee:
        """Against whom :meth:`create` and :meth:`replace` are atomic (see the module)."""
        ...

    def create(self, rel: str, data: bytes) -> bool:
        """Write the whole file only if nothing is at ``rel``; True iff this call created it."""
        ...

    def read_versioned(self, rel: str) -> tuple[bytes, str]:
        """(the file's bytes, their version); FileNotFoundError if it is missing."""
        ...

    def replace(self, rel: str, data: bytes, version: str) -> bool:
        """Write the whole file only if it is still at ``version``; True iff it was written
        (False if it changed or vanished since)."""
        ...


def version_of(data: bytes) -> str:
    """The version of a file compared by value: the SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


class Emulated:
    """Conditional writes over any :class:`~flowkit.fsio.protocol.ObjectIO`, under
    :data:`PROCESS_LOCK`: atomic for the threads of this process, best effort beyond it (a
    check, a write, and a read back that catches a writer who came in between, unless it
    wrote between our write and our read)."""

    def __init__(self, io: ObjectIO, guarantee: Guarantee = "best-effort") -> None:
        self.io = io
        self._guarantee: Guarantee = guarantee

    def guarantee(self) -> Guarantee:
        return self._guarantee

    def create(self, rel: str, data: bytes) -> bool:
        with PROCESS_LOCK:
            try:
                self.io.read(rel)
                return False
            except (FileNotFoundError, NotADirectoryError):
                pass
            self.io.write(rel, data)
            return self._still(rel, data)

    def read_versioned(self, rel: str) -> tuple[bytes, str]:
        data = self.io.read(rel)
        return data, version_of(data)

    def replace(self, rel: str, data: bytes, version: str) -> bool:
        with PROCESS_LOCK:
            try:
                current = self.io.read(rel)
            except (FileNotFoundError, NotADirectoryError):
                return False
            if version_of(current) != version:
                return False
            self.io.write(rel, data)
            return self._still(rel, data)

    def _still(self, rel: str, data: bytes) -> bool:
        if self._guarantee == "process":
            return True  # nobody outside this process writes here
        try:
            return self.io.read(rel) == data
        except (FileNotFoundError, NotADirectoryError):
            return False


__all__ = ["PROCESS_LOCK", "ConditionalIO", "Emulated", "Guarantee", "version_of"]

"""Byte-level access below a store's root: plain ``os`` for local folders, fsspec otherwise.

Both implement one protocol, :class:`~flowkit.fsio.protocol.ObjectIO` (small operations on
``/``-separated paths relative to the root, and one streaming ``put`` for content-addressed
objects); :class:`flowkit.store.Store` builds its policies (atomic, write-once, verified,
signed) on it without asking which one it holds.

* :mod:`~flowkit.fsio.protocol` - the ``ObjectIO`` protocol, operation by operation.
* :mod:`~flowkit.fsio.local` - ``LocalIO``: temporary file renamed into place, ``O_NOFOLLOW``
  and checked folders (no link below the root is followed), memory-mapped large reads.
* :mod:`~flowkit.fsio.remote` - ``FsspecIO``: whole-object puts, deadlines on every call of
  an asynchronous filesystem.
* :mod:`~flowkit.fsio.conditional` - ``ConditionalIO``: create-if-absent and
  compare-and-swap writes (local: hard links and ``flock``; S3: ``If-None-Match`` /
  ``If-Match``, see :mod:`~flowkit.fsio.s3`), and what each storage guarantees.
* :mod:`~flowkit.fsio.streams` - :class:`HashingWriter` and :func:`read_file`.
* :mod:`~flowkit.fsio.faults` - the errors a store raises, and :func:`describe_fault`, which
  names an operating-system or network failure for what it is (disk full, timeout...).
"""

from __future__ import annotations

from flowkit.fsio.conditional import ConditionalIO, Emulated, Guarantee
from flowkit.fsio.faults import (
    ObjectCorrupt,
    ObjectMissing,
    ObjectUnavailable,
    ObjectUnsigned,
    SinkError,
    StoreFault,
    describe_fault,
    sink_error_in,
)
from flowkit.fsio.local import MMAP_MIN, LocalIO
from flowkit.fsio.protocol import ObjectIO
from flowkit.fsio.remote import SPOOL_MAX, FsspecIO
from flowkit.fsio.streams import HashingWriter, info_mtime, read_file

__all__ = [
    "MMAP_MIN",
    "SPOOL_MAX",
    "ConditionalIO",
    "Emulated",
    "FsspecIO",
    "Guarantee",
    "HashingWriter",
    "LocalIO",
    "ObjectCorrupt",
    "ObjectIO",
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

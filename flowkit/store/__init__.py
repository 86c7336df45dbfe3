"""The artifact store: content-addressed objects, checked (or signed) JSON documents, run records.

``Store(url, *, key=None, read_only=False, timeout=None, **storage_options)`` opens a local
folder (a plain path or ``file://``) or any fsspec URL (``memory://``, ``s3://bucket/prefix``,
``gs://bucket/prefix``; options go to fsspec, e.g. ``endpoint_url=``; the usual ``AWS_*``
variables are honoured by s3fs). Layout (format 3, see ``docs/store.md``)::

    flowkit-store.json              {"format": 3}: a store in another format is refused
    objects/<d[:2]>/<d>             artifact bytes, named by their digest d (values over
                                    INLINE_MAX bytes, and every File/Directory)
    cache/<task>/<k>.json           one cache entry per call key k       (flowkit.cache)
    fingerprints/<c[:2]>/<c>.json   a task's code components, once per code digest c
    runs/<run id>/run.json          run header                           (flowkit.runstore)
    runs/<run id>/tasks-<n>.json.gz task records, one gzip document per batch n
    files/<d>/                      File/Directory values unpacked (local stores only)
    tmp/                            temporary files of writes in progress (local stores only)

Policies:

* Small values are inline: a value that serializes to at most :data:`INLINE_MAX` bytes (not a
  File/Directory) has no object; its artifact carries the bytes, under the digest its object
  would have, and :meth:`Store.get` checks them as it would an object's.
* Objects are written once and atomically (local: a temporary file renamed into place, which
  also heals an object damaged in place; remote: one whole-object put, multipart for large
  values; a remote object of 1 MiB or more already there with the right size is not sent
  again).
* :meth:`Store.get` checks the size and digest over the bytes it reads. A missing object
  raises :class:`ObjectMissing`; a damaged one is logged, deleted and raises
  :class:`ObjectCorrupt`. Both are :class:`ObjectUnavailable`: the cache treats them as misses.
* The store is data: every digest and name read from it is validated before it becomes a path
  (64 lowercase hex digits; run ids and document paths by pattern), and a local store never
  follows a symbolic link below its root, so nothing outside the root is read, written or
  deleted.
* Signed stores (``key=`` or ``$FLOWKIT_STORE_KEY``): every document carries an HMAC-SHA256 of
  its path and body, every artifact an HMAC of its digest, format and size (see
  :mod:`flowkit.signing`). Anything without a valid signature is absent
  (:class:`ObjectUnsigned`, one warning naming the file) and never parsed or deserialised.
* Read-only stores (``read_only=True``) write nothing at all: ``put`` returns the artifact it
  would have written, document writes and deletions do nothing, ``check`` creates nothing.
* Faults are named: an OS or network failure becomes a :class:`StoreFault` naming the store,
  the operation and the cause (``disk full (ENOSPC)``, ``no answer within 60 s (timeout)``),
  with ``transient`` set when a retry may succeed. Remote calls have a deadline (``timeout=``
  or ``$FLOWKIT_STORE_TIMEOUT``, default 60 s).
* Local stores use plain ``open``/``os`` calls (no fsspec) on the hot path. A ``Store``
  pickles as its URL, options, key, read-only flag and timeout (it is sent to workers) and
  creates its filesystem lazily.

The parts, one concept each: :mod:`~flowkit.store.base` (location, key, connection, faults),
:mod:`~flowkit.store.artifact` (artifacts and object paths), :mod:`~flowkit.store.objects`
(put, get, has, delete_object), :mod:`~flowkit.store.documents` (checked JSON documents,
gzip-compressed when the path ends in ``.gz``: :mod:`~flowkit.store.compressed`),
:mod:`~flowkit.store.fingerprints` (code components stored once per digest) and this facade
(the format marker; run records through :class:`flowkit.runstore.RunStore`). Every byte goes
through one :class:`flowkit.fsio.ObjectIO`, local or remote.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flowkit.config import default_store_url
from flowkit.errors import StoreError
from flowkit.fsio import (
    FsspecIO,
    ObjectCorrupt,
    ObjectMissing,
    ObjectUnavailable,
    ObjectUnsigned,
    StoreFault,
)
from flowkit.hashing import canonical_json
from flowkit.runstore import RunStore
from flowkit.store.artifact import INLINE_MAX, Artifact, is_digest
from flowkit.store.documents import DocumentStore
from flowkit.store.objects import ObjectStore, hash_value

STORE_FORMAT = 3
MARKER = "flowkit-store.json"
_OWN_NAMES = frozenset(
    {MARKER, "objects", "cache", "fingerprints", "runs", "files", "tmp"}
    | {"leases", "locks", "schedules", "triggers", "keys", "predictions", "annotations"}
)

_START_OVER = (
    "Point FLOWKIT_STORE (or --store, or fk.run(store=...)) at a new location, or start this "
    "one over: delete its {folders} folders and its {marker}"
)
_FORMAT_1 = (
    "store {url} is in format 1 (flowkit 0.1); this flowkit uses format {fmt} (its cache keys "
    "changed, and stores may be signed). "
    + _START_OVER
    + " (its runs/ are not readable by this flowkit either)."
)
_FORMAT_2 = (
    "store {url} is in format 2 (flowkit 0.1 before the compact store); this flowkit uses "
    "format {fmt}: one document per cache entry, small values inline, compressed task "
    "records, so it cannot read the old cache. "
    + _START_OVER
    + ". Its runs/ (run records of format 2) are not readable by this flowkit either: keep "
    "a copy elsewhere if you still need them."
)
_FOLDERS = "index/, tasks/, objects/, files/ and runs/"
_CHECK_ENDPOINT = (
    ". Check the URL, the credentials and the endpoint (endpoint_url= or AWS_ENDPOINT_URL)"
)


class Store(ObjectStore, DocumentStore):
    """Where artifacts, cache entries and run records live.

    >>> store = Store("memory://doc-example")
    >>> store.check()
    >>> art = store.put({"a": (1, 2)})
    >>> art.format, store.get(art)
    ('json', {'a': (1, 2)})
    """

    @classmethod
    def open(cls, store: Store | str | os.PathLike[str] | None = None) -> Store:
        """A ``Store`` from a store, URL or path (None: ``$FLOWKIT_STORE``, else ``./.flowkit``)."""
        if isinstance(store, Store):
            return store
        return cls(default_store_url() if store is None else store)

    # -- the format marker -----------------------------------------------------------------

    def check(self) -> None:
        """Make sure the store is reachable and readable by this flowkit (create it if new;
        a read-only store must exist already)."""
        try:
            raw: bytes | None = self._io.read(MARKER)
        except (FileNotFoundError, NotADirectoryError):
            raw = None
        except StoreError:
            raise
        except Exception as exc:
            hint = "" if self.local else _CHECK_ENDPOINT
            raise self._fault(f"read {MARKER} from", exc, hint) from exc
        if raw is not None:
            self._check_marker(raw)
            return
        self._check_bucket()
        self._check_empty()
        if self.read_only:
            raise StoreError(
                f"store {self.url} has no {MARKER} and is opened read-only, so flowkit cannot "
                "create it; point it at an existing store, or open it once without read_only"
            )
        try:
            self._io.write(MARKER, canonical_json({"format": STORE_FORMAT}) + b"\n")
        except Exception as exc:
            raise self._fault(f"write {MARKER} to", exc) from exc

    def _check_marker(self, raw: bytes) -> None:
        try:
            fmt = json.loads(raw)["format"]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{self.url}/{MARKER} is damaged or not a flowkit store marker ({exc}); "
                "restore it or use another location"
            ) from exc
        if fmt in (1, 2):
            old = _FORMAT_1 if fmt == 1 else _FORMAT_2
            raise StoreError(
                old.format(url=self.url, fmt=STORE_FORMAT, marker=MARKER, folders=_FOLDERS)
            )
        if fmt != STORE_FORMAT:
            raise StoreError(
                f"store {self.url} is in format {fmt!r}; this flowkit reads format "
                f"{STORE_FORMAT}. Use the flowkit version that wrote it, or another store."
            )

    def _check_bucket(self) -> None:
        io_ = self._io
        if not isinstance(io_, FsspecIO) or io_.root.startswith("/"):
            return  # a folder, not a bucket
        bucket = io_.root.split("/", 1)[0]
        try:
            found = io_.exists(bucket)
        except Exception as exc:
            raise self._fault(f"find bucket {bucket!r} of", exc) from exc
        if not found:
            raise StoreError(
                f"bucket {bucket!r} of store {self.url} does not exist (or is not visible with "
                "these credentials); create it first"
            )

    def _check_empty(self) -> None:
        """A location without a marker must hold nothing but what flowkit may have left."""
        try:
            strangers = sorted(n for n in self._io.list("") if n not in _OWN_NAMES)
        except Exception as exc:
            raise self._fault("list", exc) from exc
        if strangers:
            raise StoreError(
                f"{self.url} is not empty ({', '.join(strangers[:3])}...) and has no {MARKER}, "
                "so it is not a flowkit store; choose an empty or new location"
            )

    # -- run records (flowkit.runstore.RunStore) ---------------------------------------------

    @property
    def runs(self) -> RunStore:
        """The run records of this store (headers and task records)."""
        return RunStore(self)

    def write_run(self, run_id: str, header: dict[str, Any]) -> None:
        """Write (or overwrite) the header of a run."""
        RunStore(self).write_run(run_id, header)

    def write_task_records(self, run_id: str, batch_no: int, records: list[dict[str, Any]]) -> None:
        """Write one batch of task records; batches are read back in ``batch_no`` order."""
        RunStore(self).write_task_records(run_id, batch_no, records)

    def list_runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Run headers, newest first (a run whose header is unreadable is listed by id only)."""
        return RunStore(self).list_runs(limit)

    def read_run(self, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(header, task records) of a run; a unique id prefix is accepted."""
        return RunStore(self).read_run(run_id)


def resolve_store(store: Store | str | os.PathLike[str] | None = None) -> Store:
    """The store for ``fk.run(store=...)``: see :meth:`Store.open`."""
    return Store.open(store)


__all__ = [
    "INLINE_MAX",
    "MARKER",
    "STORE_FORMAT",
    "Artifact",
    "ObjectCorrupt",
    "ObjectMissing",
    "ObjectUnavailable",
    "ObjectUnsigned",
    "Store",
    "StoreFault",
    "hash_value",
    "is_digest",
    "resolve_store",
]

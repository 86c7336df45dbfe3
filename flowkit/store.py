"""The artifact store: content-addressed objects, checked JSON documents and run records.

``Store(url, **storage_options)`` opens a local folder (a plain path or ``file://``) or any
fsspec URL (``memory://``, ``s3://bucket/prefix``, ``gs://bucket/prefix``; options go to
fsspec, e.g. ``endpoint_url=``; the usual ``AWS_*`` variables, ``AWS_ENDPOINT_URL`` included,
are honoured by s3fs). Layout (format 1, see ``docs/store.md``)::

    flowkit-store.json            {"format": 1}: a store in another format is refused
    objects/<d[:2]>/<d>           artifact bytes, named by their digest d
    index/<k[:2]>/<k>.json        cache entries by call key k          (flowkit.cache)
    tasks/<task>/<k>.json         the same entries grouped by task     (flowkit.cache)
    runs/<run id>/run.json        run header
    runs/<run id>/tasks-<n>.json  task records, one file per batch n
    files/<d>/                    File/Directory values unpacked (local stores only)
    tmp/                          temporary files of writes in progress (local stores only)

Policies:

* Objects are written once and atomically. :meth:`Store.put` streams the serialised bytes
  through the hasher into a temporary file (local: then ``os.replace``; remote: one
  whole-object put, multipart for large values, which is visible only when complete). A local
  object is always replaced (healing one damaged in place); a remote object of 1 MiB or more
  that already exists with the right size is not uploaded again. Concurrent writers of the
  same value write identical bytes, so every one of them succeeds.
* :meth:`Store.get` checks the size and digest over the bytes it reads (large local objects
  are memory-mapped and hashed in place; Arrow tables are then used zero-copy from the map).
  A missing object raises :class:`ObjectMissing`; a damaged one logs a warning, is deleted so
  that the next put rewrites it, and raises :class:`ObjectCorrupt`. Both are
  :class:`ObjectUnavailable` (a :class:`~flowkit.errors.StoreError`): the cache treats them
  as misses.
* JSON documents (cache entries, run records) are stored as ``<sha256 of body>\\n<body>`` and
  verified on read, so a damaged document is detected, never misread.
* Local stores use plain ``open``/``os`` calls (no fsspec) on the hot path; fsspec is imported
  only for remote URLs. A ``Store`` pickles as its URL and options (it is sent to workers)
  and creates its filesystem lazily.
* :meth:`Store.check` is called before a run: it creates a new store (writing the marker),
  refuses a non-empty folder that is not a store, refuses an unknown format, and turns an
  unreachable endpoint or a missing bucket into a ``StoreError`` naming the URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

from flowkit import files, serialize
from flowkit.config import default_store_url
from flowkit.errors import StoreError
from flowkit.fsio import MMAP_MIN, FsspecIO, HashingWriter, LocalIO
from flowkit.hashing import blob_digest, canonical_json

log = logging.getLogger(__name__)

STORE_FORMAT = 1
MARKER = "flowkit-store.json"
_OWN_NAMES = frozenset({MARKER, "objects", "index", "tasks", "runs", "files", "tmp"})
_SPOOL_MAX = 16 << 20  # remote puts keep up to this much in memory before spilling to disk
_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://(.*)$")
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True, slots=True)
class Artifact:
    """A stored value: its digest, the serialiser format and the size in bytes."""

    digest: str
    format: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "format": self.format, "size": self.size}

    @classmethod
    def from_dict(cls, d: Any) -> Artifact:
        if not isinstance(d, dict):
            raise ValueError(f"not an artifact: {d!r}")
        digest, fmt, size = d.get("digest"), d.get("format"), d.get("size")
        if not (isinstance(digest, str) and isinstance(fmt, str) and type(size) is int):
            raise ValueError(f"not an artifact: {d!r}")
        return cls(digest, fmt, size)


class ObjectUnavailable(StoreError):
    """An object or document could not be read back intact (the cache treats it as a miss)."""


class ObjectMissing(ObjectUnavailable):
    """The object or document is not in the store."""


class ObjectCorrupt(ObjectUnavailable):
    """The object or document failed its size or digest check."""


def hash_value(value: Any, *, what: str = "value") -> tuple[str, str, int]:
    """(digest, format, size) that :meth:`Store.put` would give ``value``, without storing."""
    w = HashingWriter(None)
    fmt = serialize.dump(value, cast(IO[bytes], w), what=what)
    return w.hasher.digest(fmt), fmt, w.hasher.size


def _checked(obj: Any) -> bytes:
    body = canonical_json(obj)
    return hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body


def _body(data: bytes) -> bytes | None:
    """The body of a checked document, or None if it is truncated or fails its checksum."""
    if len(data) < 65 or data[64:65] != b"\n":
        return None
    body = data[65:]
    return body if hashlib.sha256(body).hexdigest().encode("ascii") == data[:64] else None


def _unchecked(data: bytes, where: str) -> Any:
    body = _body(data)
    if body is None:
        if data[64:65] != b"\n":
            raise ObjectCorrupt(f"{where}: truncated or not a flowkit document")
        raise ObjectCorrupt(f"{where}: checksum mismatch")
    return _parse(body, where)


def _parse(body: bytes, where: str) -> Any:
    try:
        return json.loads(body.decode("utf-8"))  # canonical JSON is UTF-8: no detection
    except ValueError as exc:
        raise ObjectCorrupt(f"{where}: {exc}") from exc


class Store:
    """Where artifacts, cache entries and run records live.

    >>> store = Store("memory://doc-example")
    >>> store.check()
    >>> art = store.put({"a": (1, 2)})
    >>> art.format, store.get(art)
    ('json', {'a': (1, 2)})
    """

    def __init__(self, url: str | os.PathLike[str], **storage_options: Any) -> None:
        text = os.fspath(url)
        m = _URL_RE.match(text)
        protocol = m.group(1).lower() if m else None
        self.local = protocol in (None, "file", "local") and "::" not in text
        if self.local:
            raw = m.group(2) if m else text
            self.root = os.path.abspath(os.path.expanduser(raw))
            self.url = self.root
        else:
            self.root = ""
            self.url = text
        self.storage_options = dict(storage_options)
        self._files = os.path.join(self.root, "files", "") if self.local else ""
        self._io_: LocalIO | FsspecIO | None = LocalIO(self.root) if self.local else None

    # -- construction helpers --------------------------------------------------------------

    @classmethod
    def open(cls, store: Store | str | os.PathLike[str] | None = None) -> Store:
        """A ``Store`` from a store, URL or path (None: ``$FLOWKIT_STORE``, else ``./.flowkit``)."""
        if isinstance(store, Store):
            return store
        return cls(default_store_url() if store is None else store)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Store)
            and other.url == self.url
            and other.storage_options == self.storage_options
        )

    def __hash__(self) -> int:
        return hash(self.url)

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "storage_options": self.storage_options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], **state["storage_options"])  # type: ignore[misc]

    @property
    def _io(self) -> LocalIO | FsspecIO:
        if self._io_ is None:
            self._io_ = self._connect()
        return self._io_

    def _connect(self) -> FsspecIO:
        try:
            import fsspec
        except ImportError as exc:
            raise StoreError(f"store {self.url} needs fsspec: pip install fsspec") from exc
        options = {"use_listings_cache": False, "skip_instance_cache": True, **self.storage_options}
        try:
            fs, root = fsspec.core.url_to_fs(self.url, **options)
        except ImportError as exc:
            raise StoreError(f"store {self.url}: {exc}") from exc
        except Exception as exc:
            raise StoreError(f"cannot open store {self.url}: {type(exc).__name__}: {exc}") from exc
        return FsspecIO(fs, root)

    # -- the format marker -----------------------------------------------------------------

    def check(self) -> None:
        """Make sure the store is reachable and readable by this flowkit (create it if new)."""
        try:
            raw: bytes | None = self._io.read(MARKER)
        except (FileNotFoundError, NotADirectoryError):
            raw = None
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"store {self.url} is unreachable: {type(exc).__name__}: {exc}. Check the URL, "
                "the credentials and the endpoint (endpoint_url= or AWS_ENDPOINT_URL)."
            ) from exc
        if raw is not None:
            self._check_marker(raw)
            return
        self._check_bucket()
        try:
            strangers = sorted(n for n in self._io.list("") if n not in _OWN_NAMES)
        except Exception as exc:
            raise StoreError(f"cannot list store {self.url}: {type(exc).__name__}: {exc}") from exc
        if strangers:
            raise StoreError(
                f"{self.url} is not empty ({', '.join(strangers[:3])}...) and has no {MARKER}, "
                "so it is not a flowkit store; choose an empty or new location"
            )
        try:
            self._io.write(MARKER, canonical_json({"format": STORE_FORMAT}) + b"\n")
        except Exception as exc:
            raise StoreError(
                f"cannot write to store {self.url}: {type(exc).__name__}: {exc}"
            ) from exc

    def _check_marker(self, raw: bytes) -> None:
        try:
            fmt = json.loads(raw)["format"]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{self.url}/{MARKER} is damaged or not a flowkit store marker ({exc}); "
                "restore it or use another location"
            ) from exc
        if fmt != STORE_FORMAT:
            raise StoreError(
                f"store {self.url} is in format {fmt!r}; this flowkit reads format "
                f"{STORE_FORMAT}. Use the flowkit version that wrote it, or another store."
            )

    def _check_bucket(self) -> None:
        io_ = self._io
        if not isinstance(io_, FsspecIO) or io_.root.startswith("/"):
            return
        bucket = io_.root.split("/", 1)[0]
        try:
            found = io_.fs.exists(bucket)
        except Exception as exc:
            raise StoreError(
                f"store {self.url} is unreachable: {type(exc).__name__}: {exc}"
            ) from exc
        if not found:
            raise StoreError(
                f"bucket {bucket!r} of store {self.url} does not exist (or is not visible with "
                "these credentials); create it first"
            )

    # -- objects ---------------------------------------------------------------------------

    @staticmethod
    def object_path(digest: str) -> str:
        return f"objects/{digest[:2]}/{digest}"

    def put(self, value: Any, *, what: str = "value") -> Artifact:
        """Serialise ``value`` into the store; its digest is computed while the bytes stream out."""
        io_ = self._io
        if isinstance(io_, LocalIO):
            tmp = io_.temp()
            try:
                with open(tmp, "wb") as f:
                    w = HashingWriter(f)
                    fmt = serialize.dump(value, cast(IO[bytes], w), what=what)
                art = Artifact(w.hasher.digest(fmt), fmt, w.hasher.size)
                # Always replace: the bytes are already written, a rename costs no more than
                # an unlink, it heals an object damaged in place (same size, wrong bytes) and
                # it keeps a re-used object young for gc.
                io_.commit(tmp, self.object_path(art.digest))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            return art
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX) as spool:
            w = HashingWriter(cast(IO[bytes], spool))
            fmt = serialize.dump(value, cast(IO[bytes], w), what=what)
            art = Artifact(w.hasher.digest(fmt), fmt, w.hasher.size)
            rel = self.object_path(art.digest)
            try:
                # Small objects are simply put again (same bytes); big ones are checked first.
                if art.size < MMAP_MIN or io_.size(rel) != art.size:
                    io_.upload(cast(IO[bytes], spool), rel)
            except Exception as exc:
                raise StoreError(f"cannot write {what} to store {self.url}: {exc}") from exc
        return art

    def get(self, artifact: Artifact, *, what: str = "value") -> Any:
        """Load a stored value, verifying size and digest over the bytes as they are read."""
        rel = self.object_path(artifact.digest)
        try:
            data, path = self._io.read_object(rel, artifact.size)
        except FileNotFoundError as exc:
            raise ObjectMissing(f"{what}: object {artifact.digest} is not in {self.url}") from exc
        except OSError as exc:
            raise StoreError(f"cannot read {what} from store {self.url}: {exc}") from exc
        n = len(data)
        if n != artifact.size:
            # a local read stops one byte past the expected size: longer is "more than"
            got = f"{n} bytes" if n <= artifact.size else f"more than {artifact.size} bytes"
            self._damaged(rel, what, f"{got}, expected {artifact.size}")
        if blob_digest(artifact.format, hashlib.sha256(data).hexdigest()) != artifact.digest:
            self._damaged(rel, what, "digest mismatch")
        return serialize.load(
            artifact.format, data, path=path, scratch=self._scratch(artifact.digest), what=what
        )

    def has(self, artifact: Artifact) -> bool:
        """True if an object of the right size is there (its content is checked on get)."""
        return self._io.size(self.object_path(artifact.digest)) == artifact.size

    def _damaged(self, rel: str, what: str, reason: str) -> None:
        log.warning(
            "store %s: %s (%s) is damaged: %s; treating it as missing and removing it so it "
            "is written again",
            self.url,
            rel,
            what,
            reason,
        )
        with contextlib.suppress(Exception):
            self._io.remove(rel)
        raise ObjectCorrupt(f"{what}: {rel} in {self.url} is damaged: {reason}")

    def _scratch(self, digest: str) -> str:
        if self.local:
            return self._files + digest  # = os.path.join(root, "files", digest), on every get
        return os.path.join(files.default_unpack_root(), digest)

    def delete_object(self, digest: str) -> None:
        """Remove an object and its unpacked copy (gc only)."""
        self._io.remove(self.object_path(digest))
        if self.local:
            shutil.rmtree(self._scratch(digest), ignore_errors=True)

    # -- checked JSON documents (cache index, run records) ----------------------------------

    def write_doc(self, rel: str, obj: Any) -> None:
        """Atomically write a JSON document, stored with its checksum."""
        try:
            self._io.write(rel, _checked(obj))
        except Exception as exc:
            raise StoreError(f"cannot write {rel} to store {self.url}: {exc}") from exc

    def read_doc(self, rel: str) -> Any:
        """Read a document; ObjectMissing / ObjectCorrupt if it is absent or damaged."""
        try:
            # One read (a GIL release fewer on every cache hit): a document that passes its
            # checksum is whole; one that does not is read again to the end, then judged.
            body = _body(self._io.read(rel, once=True))
            data = b"" if body is not None else self._io.read(rel)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectMissing(f"{rel} is not in {self.url}") from exc
        except OSError as exc:
            raise StoreError(f"cannot read {rel} from store {self.url}: {exc}") from exc
        where = f"{self.url}/{rel}"
        return _parse(body, where) if body is not None else _unchecked(data, where)

    def list_dir(self, rel: str) -> list[str]:
        """Names directly below ``rel`` (empty if it does not exist)."""
        return sorted(self._io.list(rel))

    def walk(self, rel: str) -> Iterator[tuple[str, int, float | None]]:
        """Every file below ``rel``: (path relative to the root, size, mtime or None)."""
        return self._io.walk(rel)

    def delete(self, rel: str) -> None:
        """Remove one file (no error if it is already gone)."""
        self._io.remove(rel)

    # -- run records -----------------------------------------------------------------------

    def _run_dir(self, run_id: str) -> str:
        if not _RUN_ID_RE.match(run_id):
            raise StoreError(f"invalid run id {run_id!r}")
        return f"runs/{run_id}"

    def write_run(self, run_id: str, header: dict[str, Any]) -> None:
        """Write (or overwrite) the header of a run."""
        self.write_doc(f"{self._run_dir(run_id)}/run.json", header)

    def write_task_records(self, run_id: str, batch_no: int, records: list[dict[str, Any]]) -> None:
        """Write one batch of task records; batches are read back in ``batch_no`` order."""
        self.write_doc(f"{self._run_dir(run_id)}/tasks-{batch_no:06d}.json", records)

    def list_runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Run headers, newest first (a run whose header is unreadable is listed by id only)."""
        ids = sorted((i for i in self._io.list("runs") if _RUN_ID_RE.match(i)), reverse=True)
        out = []
        for run_id in ids[:limit]:
            try:
                header = self.read_doc(f"runs/{run_id}/run.json")
            except ObjectUnavailable as exc:
                log.warning("run %s: header unreadable (%s)", run_id, exc)
                header = {"status": "unknown"}
            out.append({**header, "id": run_id})
        return out

    def read_run(self, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(header, task records) of a run; a unique id prefix is accepted."""
        run_id = self._find_run(run_id)
        d = self._run_dir(run_id)
        try:
            header = self.read_doc(f"{d}/run.json")
        except ObjectUnavailable as exc:
            log.warning("run %s: header unreadable (%s)", run_id, exc)
            header = {"id": run_id, "status": "unknown"}
        tasks: list[dict[str, Any]] = []
        for name in self.list_dir(d):
            if name.startswith("tasks-") and name.endswith(".json"):
                try:
                    batch = self.read_doc(f"{d}/{name}")
                except ObjectUnavailable as exc:
                    log.warning("run %s: task records %s unreadable (%s)", run_id, name, exc)
                    continue
                tasks.extend(r for r in batch if isinstance(r, dict))
        return header, tasks

    def _find_run(self, run_id: str) -> str:
        ids = self._io.list("runs")
        if run_id in ids:
            return run_id
        matches = [i for i in ids if i.startswith(run_id)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise StoreError(
                f"run id {run_id!r} is ambiguous in {self.url}: {', '.join(sorted(matches)[:5])}"
            )
        raise StoreError(
            f"no run {run_id!r} in store {self.url}; `flowkit runs list` shows the runs"
        )


def resolve_store(store: Store | str | os.PathLike[str] | None = None) -> Store:
    """The store for ``fk.run(store=...)``: see :meth:`Store.open`."""
    return Store.open(store)


__all__ = [
    "MARKER",
    "STORE_FORMAT",
    "Artifact",
    "ObjectCorrupt",
    "ObjectMissing",
    "ObjectUnavailable",
    "Store",
    "hash_value",
    "resolve_store",
]

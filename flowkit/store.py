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
  whole-object put, multipart for large values, which is visible only when complete). If the
  object already exists with the right size the write is skipped. Concurrent writers of the
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
import io
import json
import logging
import mmap
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, cast

from flowkit import files, serialize
from flowkit.config import default_store_url
from flowkit.errors import StoreError
from flowkit.hashing import BlobHasher, canonical_json

log = logging.getLogger(__name__)

STORE_FORMAT = 1
MARKER = "flowkit-store.json"
_OWN_NAMES = frozenset({MARKER, "objects", "index", "tasks", "runs", "files", "tmp"})
_MMAP_MIN = 1 << 20  # local objects this big are memory-mapped; remote ones checked before put
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


class _HashingWriter(io.RawIOBase):
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


def hash_value(value: Any, *, what: str = "value") -> tuple[str, str, int]:
    """(digest, format, size) that :meth:`Store.put` would give ``value``, without storing."""
    w = _HashingWriter(None)
    fmt = serialize.dump(value, cast(IO[bytes], w), what=what)
    return w.hasher.digest(fmt), fmt, w.hasher.size


def _checked(obj: Any) -> bytes:
    body = canonical_json(obj)
    return hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body


def _unchecked(data: bytes, where: str) -> Any:
    if len(data) < 65 or data[64:65] != b"\n":
        raise ObjectCorrupt(f"{where}: truncated or not a flowkit document")
    body = data[65:]
    if hashlib.sha256(body).hexdigest().encode("ascii") != data[:64]:
        raise ObjectCorrupt(f"{where}: checksum mismatch")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ObjectCorrupt(f"{where}: {exc}") from exc


def _info_mtime(info: dict[str, Any]) -> float | None:
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


class _LocalIO:
    """Plain-``os`` access below a local root. Paths are ``/``-separated, relative."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._dirs: set[str] = set()

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def _mkdirs(self, d: str) -> None:
        if d not in self._dirs:
            os.makedirs(d, exist_ok=True)
            self._dirs.add(d)

    def read(self, rel: str) -> bytes:
        with open(os.path.join(self.root, rel), "rb") as f:
            return f.read()

    def read_object(self, rel: str, size: int) -> tuple[Any, str]:
        p = os.path.join(self.root, rel)
        with open(p, "rb") as f:
            if size < _MMAP_MIN:
                return f.read(), p
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

    def touch(self, rel: str) -> None:
        with contextlib.suppress(OSError):
            os.utime(os.path.join(self.root, rel))

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


class _FsspecIO:
    """The same operations over an fsspec filesystem (remote or ``memory://``)."""

    def __init__(self, fs: Any, root: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def read(self, rel: str) -> bytes:
        data: bytes = self.fs.cat_file(self.path(rel))
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

    def touch(self, rel: str) -> None:
        """Object stores cannot refresh a modification time; gc relies on entries instead."""

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
                yield name[len(prefix) :], int(info.get("size") or 0), _info_mtime(info)


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
        self._io_: _LocalIO | _FsspecIO | None = _LocalIO(self.root) if self.local else None

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
    def _io(self) -> _LocalIO | _FsspecIO:
        if self._io_ is None:
            self._io_ = self._connect()
        return self._io_

    def _connect(self) -> _FsspecIO:
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
        return _FsspecIO(fs, root)

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
        if not isinstance(io_, _FsspecIO) or io_.root.startswith("/"):
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
        if isinstance(io_, _LocalIO):
            tmp = io_.temp()
            try:
                with open(tmp, "wb") as f:
                    w = _HashingWriter(f)
                    fmt = serialize.dump(value, cast(IO[bytes], w), what=what)
                art = Artifact(w.hasher.digest(fmt), fmt, w.hasher.size)
                rel = self.object_path(art.digest)
                if io_.size(rel) == art.size:
                    io_.touch(rel)  # keeps a re-used object young for gc
                    os.unlink(tmp)
                else:
                    io_.commit(tmp, rel)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            return art
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX) as spool:
            w = _HashingWriter(cast(IO[bytes], spool))
            fmt = serialize.dump(value, cast(IO[bytes], w), what=what)
            art = Artifact(w.hasher.digest(fmt), fmt, w.hasher.size)
            rel = self.object_path(art.digest)
            try:
                # Small objects are simply put again (same bytes); big ones are checked first.
                if art.size < _MMAP_MIN or io_.size(rel) != art.size:
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
            self._damaged(rel, what, f"{n} bytes, expected {artifact.size}")
        h = BlobHasher()
        h.update(data)
        if h.digest(artifact.format) != artifact.digest:
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
            return os.path.join(self.root, "files", digest)
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
            data = self._io.read(rel)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectMissing(f"{rel} is not in {self.url}") from exc
        except OSError as exc:
            raise StoreError(f"cannot read {rel} from store {self.url}: {exc}") from exc
        return _unchecked(data, f"{self.url}/{rel}")

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

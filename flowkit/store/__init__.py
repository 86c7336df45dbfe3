"""The artifact store: content-addressed objects, checked (or signed) JSON documents, run records.

``Store(url, *, key=None, read_only=False, timeout=None, **storage_options)`` opens a local
folder (a plain path or ``file://``) or any fsspec URL (``memory://``, ``s3://bucket/prefix``,
``gs://bucket/prefix``; options go to fsspec, e.g. ``endpoint_url=``; the usual ``AWS_*``
variables are honoured by s3fs). Layout (format 2, see ``docs/store.md``)::

    flowkit-store.json            {"format": 2}: a store in another format is refused
    objects/<d[:2]>/<d>           artifact bytes, named by their digest d
    index/<k[:2]>/<k>.json        cache entries by call key k          (flowkit.cache)
    tasks/<task>/<k>.json         the same entries grouped by task     (flowkit.cache)
    runs/<run id>/run.json        run header                           (flowkit.runstore)
    runs/<run id>/tasks-<n>.json  task records, one file per batch n
    files/<d>/                    File/Directory values unpacked (local stores only)
    tmp/                          temporary files of writes in progress (local stores only)

Policies:

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
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, cast

from flowkit import files, runstore, serialize
from flowkit.config import check_timeout, default_store_url, store_key, store_timeout
from flowkit.errors import SerializationError, StoreError
from flowkit.fsio import (
    MMAP_MIN,
    FsspecIO,
    HashingWriter,
    LocalIO,
    ObjectCorrupt,
    ObjectMissing,
    ObjectUnavailable,
    ObjectUnsigned,
    SinkError,
    StoreFault,
    describe_fault,
    sink_error_in,
)
from flowkit.hashing import blob_digest, canonical_json
from flowkit.signing import (
    Signer,
    as_key,
    body_of,
    check_object_sig,
    encode,
    judge,
    object_sig,
    seal,
)

log = logging.getLogger(__name__)

STORE_FORMAT = 2
MARKER = "flowkit-store.json"
_OWN_NAMES = frozenset({MARKER, "objects", "index", "tasks", "runs", "files", "tmp"})
_SPOOL_MAX = 16 << 20  # remote puts keep up to this much in memory before spilling to disk
_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://(.*)$")
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
# A relative path in the store: "/"-separated non-empty parts, none of them "." or "..", no
# NUL or backslash (a name planted in a listing may be odd, but never leaves the root).
_PART = r"(?!\.\.?(?:/|$))[^/\x00\\]+"
_REL_RE = re.compile(f"{_PART}(?:/{_PART})*")
_NOT_A_FILE = (errno.ELOOP, errno.EISDIR)  # a link or a folder where a file should be
_UNPACKED = frozenset({"file", "dir"})  # formats loaded into files/<d>
_WARN_MAX = 10_000  # files warned about once each (per store object)


@dataclass(frozen=True, slots=True)
class Artifact:
    """A stored value: its digest, the serialiser format, the size in bytes and, in a signed
    store, its signature (not part of its identity: equal artifacts name equal bytes)."""

    digest: str
    format: str
    size: int
    sig: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"digest": self.digest, "format": self.format, "size": self.size}
        if self.sig is not None:
            d["sig"] = self.sig
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Artifact:
        """Rebuild an artifact; ValueError unless every field is well formed (the digest is
        64 lowercase hex digits: it becomes a path)."""
        if not isinstance(d, dict):
            raise ValueError(f"not an artifact: {d!r}")
        digest, fmt, size, sig = d.get("digest"), d.get("format"), d.get("size"), d.get("sig")
        if not (
            type(digest) is str
            and _DIGEST_RE.fullmatch(digest) is not None
            and type(fmt) is str
            and fmt
            and type(size) is int
            and size >= 0
            and (sig is None or (type(sig) is str and _DIGEST_RE.fullmatch(sig) is not None))
        ):
            raise ValueError(f"not an artifact: {d!r}")
        return cls(digest, fmt, size, sig)


def is_digest(text: Any) -> bool:
    """True if ``text`` is 64 lowercase hex digits (what an object may be named)."""
    return type(text) is str and _DIGEST_RE.fullmatch(text) is not None


def _dump_kwargs(refs: set[Any] | None) -> dict[str, Any]:
    return {} if refs is None else {"refs": refs}


def hash_value(
    value: Any, *, what: str = "value", refs: set[Any] | None = None
) -> tuple[str, str, int]:
    """(digest, format, size) that :meth:`Store.put` would give ``value``, without storing."""
    w = HashingWriter(None)
    fmt = serialize.dump(value, cast(IO[bytes], w), what=what, **_dump_kwargs(refs))
    return w.hasher.digest(fmt), fmt, w.hasher.size


def _parse(body: bytes, where: str) -> Any:
    try:
        return json.loads(body.decode("utf-8"))  # documents are UTF-8: no detection
    except ValueError as exc:
        raise ObjectCorrupt(f"{where}: {exc}") from exc


_FORMAT_1 = (
    "store {url} is in format 1 (flowkit 0.1); this flowkit uses format {fmt} (its cache keys "
    "changed, and stores may be signed). Point FLOWKIT_STORE (or --store, or "
    "fk.run(store=...)) at a new location, or start this one over: delete its index/, tasks/, "
    "objects/ and files/ folders and its {marker} (runs/ may be kept: run records stay "
    "readable, unless the store is opened with a key)."
)


class Store:
    """Where artifacts, cache entries and run records live.

    >>> store = Store("memory://doc-example")
    >>> store.check()
    >>> art = store.put({"a": (1, 2)})
    >>> art.format, store.get(art)
    ('json', {'a': (1, 2)})
    """

    def __init__(
        self,
        url: str | os.PathLike[str],
        *,
        key: bytes | str | None = None,
        read_only: bool = False,
        timeout: float | None = None,
        **storage_options: Any,
    ) -> None:
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
        self.read_only = bool(read_only)
        self.timeout = store_timeout() if timeout is None else check_timeout(timeout)
        if key is not None and protocol in ("s3", "s3a"):
            self._refuse_s3_credential_as_key()
        self._set_key(store_key() if key is None else self._as_key(key))
        self._files = os.path.join(self.root, "files", "") if self.local else ""
        self._io_: LocalIO | FsspecIO | None = LocalIO(self.root) if self.local else None
        self._warned: set[str] = set()

    def _set_key(self, key: bytes | None) -> None:
        self._key = key
        self._signer = None if key is None else Signer(key)

    def _as_key(self, key: bytes | str) -> bytes:
        try:
            return as_key(key)
        except ValueError as exc:
            raise StoreError(
                f"store {self.url}: key= is empty; give the shared signing key, or leave it "
                "out (and FLOWKIT_STORE_KEY unset) for an unsigned store"
            ) from exc

    def _refuse_s3_credential_as_key(self) -> None:
        opts = self.storage_options
        if ("secret" in opts or "password" in opts) and "username" not in opts:
            raise StoreError(
                f"store {self.url}: fk.Store(key=...) is the key that signs the store, not the "
                "S3 access key id. Pass the access key id as username= (with secret=), or set "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
            )

    # -- construction helpers --------------------------------------------------------------

    @classmethod
    def open(cls, store: Store | str | os.PathLike[str] | None = None) -> Store:
        """A ``Store`` from a store, URL or path (None: ``$FLOWKIT_STORE``, else ``./.flowkit``)."""
        if isinstance(store, Store):
            return store
        return cls(default_store_url() if store is None else store)

    @property
    def signed(self) -> bool:
        """True if documents and objects are signed and checked with a key."""
        return self._key is not None

    def __repr__(self) -> str:
        flags = (", signed" if self.signed else "") + (", read_only" if self.read_only else "")
        return f"Store({self.url!r}{flags})"  # never the key

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Store)
            and other.url == self.url
            and other.storage_options == self.storage_options
            and other._key == self._key
            and other.read_only == self.read_only
        )

    def __hash__(self) -> int:
        return hash(self.url)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "storage_options": self.storage_options,
            "key": self._key,
            "read_only": self.read_only,
            "timeout": self.timeout,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["url"],
            read_only=state.get("read_only", False),
            timeout=state.get("timeout"),
            **state["storage_options"],
        )
        self._set_key(state.get("key"))  # the sender's key, never this process's environment

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
        protocol = self.url.split("://", 1)[0].lower()
        if protocol in ("s3", "s3a"):
            # per-request timeouts and few retries: a silent endpoint must not hang a run
            config = dict(options.get("config_kwargs") or {})
            config.setdefault("connect_timeout", self.timeout)
            config.setdefault("read_timeout", self.timeout)
            config.setdefault("retries", {"max_attempts": 2})
            options["config_kwargs"] = config
        try:
            fs, root = fsspec.core.url_to_fs(self.url, **options)
        except ImportError as exc:
            raise StoreError(f"store {self.url}: {exc}") from exc
        except Exception as exc:
            raise StoreError(f"cannot open store {self.url}: {type(exc).__name__}: {exc}") from exc
        return FsspecIO(fs, root, self.timeout)

    # -- faults ----------------------------------------------------------------------------

    def _fault(self, op: str, exc: BaseException, hint: str = "") -> StoreFault:
        """``cannot <op> store <url>: <what went wrong>`` (op: e.g. "write x to")."""
        reason, transient = describe_fault(exc, None if self.local else self.timeout)
        number = None
        for e in (exc.error if isinstance(exc, SinkError) else exc, exc.__cause__):
            if isinstance(e, OSError) and isinstance(e.errno, int):
                number = e.errno
                break
        return StoreFault(
            f"cannot {op} store {self.url}: {reason}{hint}", transient=transient, errno=number
        )

    def _warn_once(self, where: str, message: str) -> None:
        if where not in self._warned:
            if len(self._warned) < _WARN_MAX:
                self._warned.add(where)
            log.warning("%s", message)

    # -- the format marker -----------------------------------------------------------------

    def check(self) -> None:
        """Make sure the store is reachable and readable by this flowkit (create it if new;
        a read-only store must exist already)."""
        hint = (
            ". Check the URL, the credentials and the endpoint (endpoint_url= or AWS_ENDPOINT_URL)"
        )
        try:
            raw: bytes | None = self._io.read(MARKER)
        except (FileNotFoundError, NotADirectoryError):
            raw = None
        except StoreError:
            raise
        except Exception as exc:
            raise self._fault(f"read {MARKER} from", exc, "" if self.local else hint) from exc
        if raw is not None:
            self._check_marker(raw)
            return
        self._check_bucket()
        try:
            strangers = sorted(n for n in self._io.list("") if n not in _OWN_NAMES)
        except Exception as exc:
            raise self._fault("list", exc) from exc
        if strangers:
            raise StoreError(
                f"{self.url} is not empty ({', '.join(strangers[:3])}...) and has no {MARKER}, "
                "so it is not a flowkit store; choose an empty or new location"
            )
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
        if fmt == 1:
            raise StoreError(_FORMAT_1.format(url=self.url, fmt=STORE_FORMAT, marker=MARKER))
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
            found = io_.exists(bucket)
        except Exception as exc:
            raise self._fault(f"find bucket {bucket!r} of", exc) from exc
        if not found:
            raise StoreError(
                f"bucket {bucket!r} of store {self.url} does not exist (or is not visible with "
                "these credentials); create it first"
            )

    # -- objects ---------------------------------------------------------------------------

    @staticmethod
    def object_path(digest: str) -> str:
        """``objects/<d[:2]>/<d>``; ObjectCorrupt if ``digest`` is not 64 lowercase hex."""
        if type(digest) is not str or _DIGEST_RE.fullmatch(digest) is None:
            raise ObjectCorrupt(
                f"{digest!r} is not an object digest (64 lowercase hex digits); refusing to "
                "use it as a path"
            )
        return f"objects/{digest[:2]}/{digest}"

    def _artifact(self, digest: str, fmt: str, size: int) -> Artifact:
        signer = self._signer
        sig = None if signer is None else object_sig(signer, digest, fmt, size)
        return Artifact(digest, fmt, size, sig)

    def put(self, value: Any, *, what: str = "value", refs: set[Any] | None = None) -> Artifact:
        """Serialise ``value`` into the store; its digest is computed while the bytes stream
        out. A read-only store computes and returns the artifact without writing it."""
        if self.read_only:
            return self._artifact(*hash_value(value, what=what, refs=refs))
        io_ = self._io
        if isinstance(io_, LocalIO):
            return self._put_local(io_, value, what, refs)
        return self._put_remote(io_, value, what, refs)

    def _dump(self, value: Any, sink: HashingWriter, what: str, refs: set[Any] | None) -> str:
        try:
            return serialize.dump(value, cast(IO[bytes], sink), what=what, **_dump_kwargs(refs))
        except SerializationError as exc:
            found = sink_error_in(exc)  # the disk failed, not the value
            if found is None:
                raise
            raise self._fault(f"write {what} to", found) from found.error

    def _put_local(self, io_: LocalIO, value: Any, what: str, refs: set[Any] | None) -> Artifact:
        try:
            tmp, f = io_.open_temp()
        except OSError as exc:
            raise self._fault(f"write {what} to", exc) from exc
        try:
            with f:
                w = HashingWriter(f)
                fmt = self._dump(value, w, what, refs)
            art = self._artifact(w.hasher.digest(fmt), fmt, w.hasher.size)
            # Always replace: the bytes are already written, a rename costs no more than
            # an unlink, it heals an object damaged in place (same size, wrong bytes) and
            # it keeps a re-used object young for gc.
            io_.commit(tmp, self.object_path(art.digest))
        except (SinkError, OSError) as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise self._fault(f"write {what} to", exc) from exc
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return art

    def _put_remote(self, io_: FsspecIO, value: Any, what: str, refs: set[Any] | None) -> Artifact:
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX) as spool:
            w = HashingWriter(cast(IO[bytes], spool))
            try:
                fmt = self._dump(value, w, what, refs)
            except SinkError as exc:
                raise self._fault(f"write {what} to", exc) from exc
            art = self._artifact(w.hasher.digest(fmt), fmt, w.hasher.size)
            rel = self.object_path(art.digest)
            try:
                # Small objects are simply put again (same bytes); big ones are checked first.
                if art.size < MMAP_MIN or io_.size(rel) != art.size:
                    io_.upload(cast(IO[bytes], spool), rel)
            except Exception as exc:
                raise self._fault(f"write {what} to", exc) from exc
        return art

    def _signed_ok(self, artifact: Artifact, what: str) -> None:
        """Raise ObjectUnsigned (after one warning) unless the artifact's signature holds."""
        signer = self._signer
        if signer is None or check_object_sig(
            signer, artifact.digest, artifact.format, artifact.size, artifact.sig
        ):
            return
        rel = self.object_path(artifact.digest)
        message = (
            f"store {self.url}: {what} ({rel}) has no valid signature for this store's key; "
            "treating it as absent"
        )
        self._warn_once(rel, message)
        raise ObjectUnsigned(message)

    def get(
        self,
        artifact: Artifact,
        *,
        what: str = "value",
        expected: Any = Any,
        refs: set[Any] | None = None,
    ) -> Any:
        """Load a stored value, verifying size and digest over the bytes as they are read."""
        rel = self.object_path(artifact.digest)
        if self._signer is not None:
            self._signed_ok(artifact, what)
        try:
            data, path = self._io.read_object(rel, artifact.size)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectMissing(f"{what}: object {artifact.digest} is not in {self.url}") from exc
        except OSError as exc:
            if exc.errno in _NOT_A_FILE:
                self._damaged(rel, what, "not a regular file")
            raise self._fault(f"read {what} from", exc) from exc
        except StoreError:
            raise
        except Exception as exc:
            raise self._fault(f"read {what} from", exc) from exc
        n = len(data)
        if n != artifact.size:
            # a local read stops one byte past the expected size: longer is "more than"
            got = f"{n} bytes" if n <= artifact.size else f"more than {artifact.size} bytes"
            self._damaged(rel, what, f"{got}, expected {artifact.size}")
        if blob_digest(artifact.format, hashlib.sha256(data).hexdigest()) != artifact.digest:
            self._damaged(rel, what, "digest mismatch")
        kwargs: dict[str, Any] = {} if refs is None else {"refs": refs}
        if expected is not Any:
            kwargs["expected"] = expected
        return serialize.load(
            artifact.format,
            data,
            path=path,
            scratch=self._scratch(artifact.digest, artifact.format),
            what=what,
            **kwargs,
        )

    def has(self, artifact: Artifact) -> bool:
        """True if an object of the right size is there and, in a signed store, the artifact's
        signature holds (its content is checked on get)."""
        if not is_digest(artifact.digest):
            return False
        signer = self._signer
        if signer is not None and not check_object_sig(
            signer, artifact.digest, artifact.format, artifact.size, artifact.sig
        ):
            return False
        return self._io.size(self.object_path(artifact.digest)) == artifact.size

    def _damaged(self, rel: str, what: str, reason: str) -> None:
        removal = "" if self.read_only else " and removing it so it is written again"
        log.warning(
            "store %s: %s (%s) is damaged: %s; treating it as missing%s",
            self.url,
            rel,
            what,
            reason,
            removal,
        )
        if not self.read_only:
            with contextlib.suppress(Exception):
                self._io.remove(rel)
        raise ObjectCorrupt(f"{what}: {rel} in {self.url} is damaged: {reason}")

    def _scratch(self, digest: str, fmt: str | None = None) -> str:
        """Where a File/Directory value of this digest is unpacked (checked: no links)."""
        if not self.local or self.read_only:  # a read-only store gets no files/ folder
            return os.path.join(files.default_unpack_root(), digest)
        if fmt in _UNPACKED:
            io_ = cast(LocalIO, self._io)
            try:
                io_.ensure_dir("files")
            except OSError as exc:
                raise self._fault("unpack a file value in", exc) from exc
        return self._files + digest  # = os.path.join(root, "files", digest), on every get

    def delete_object(self, digest: str) -> None:
        """Remove an object and its unpacked copy (gc only; nothing in a read-only store)."""
        rel = self.object_path(digest)
        if self.read_only:
            return
        try:
            self._io.remove(rel)
            if self.local:
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    cast(LocalIO, self._io).check_dir("files")  # no links out of the store
                    files.remove_copy(self._files + digest)
        except OSError as exc:
            raise self._fault(f"delete {rel} from", exc) from exc

    # -- checked JSON documents (cache index, run records) ----------------------------------

    def _rel(self, rel: str) -> str:
        if type(rel) is not str or _REL_RE.fullmatch(rel) is None:
            raise StoreError(
                f"refusing path {rel!r} in store {self.url}: paths are relative, '/'-separated "
                "names (no '.', '..', empty names, NUL or backslash)"
            )
        return rel

    def write_doc(self, rel: str, obj: Any) -> None:
        """Atomically write a JSON document with its checksum, or its signature in a signed
        store (nothing in a read-only store)."""
        self._rel(rel)
        if self.read_only:
            return
        try:
            body = encode(obj)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"cannot write {rel} to store {self.url}: {exc}") from exc
        try:
            self._io.write(rel, seal(body, rel, self._signer))
        except Exception as exc:
            raise self._fault(f"write {rel} to", exc) from exc

    def read_doc(self, rel: str) -> Any:
        """Read a document; ObjectMissing / ObjectCorrupt if it is absent or damaged, and
        ObjectUnsigned (an ObjectMissing) if its signature does not hold."""
        if type(rel) is not str or _REL_RE.fullmatch(rel) is None:
            raise ObjectCorrupt(f"refusing document path {rel!r} in store {self.url}")
        signer = self._signer
        try:
            # One read (a GIL release fewer on every cache hit): a document that passes its
            # check is whole; one that does not is read again to the end, then judged.
            data = self._io.read(rel, once=True)
            body = body_of(data, rel, signer)
            if body is None:
                data = self._io.read(rel)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectMissing(f"{rel} is not in {self.url}") from exc
        except OSError as exc:
            if exc.errno in _NOT_A_FILE:
                raise ObjectCorrupt(f"{self.url}/{rel}: not a regular file") from exc
            raise self._fault(f"read {rel} from", exc) from exc
        except StoreError:
            raise
        except Exception as exc:
            raise self._fault(f"read {rel} from", exc) from exc
        if body is None:
            body = body_of(data, rel, signer)
        if body is None:
            return self._refuse_doc(data, rel)
        return _parse(body, f"{self.url}/{rel}")

    def _refuse_doc(self, data: bytes, rel: str) -> Any:
        where = f"{self.url}/{rel}"
        problem, reason = judge(data, rel, self._signer)
        if problem == "damaged":
            raise ObjectCorrupt(f"{where}: {reason}")
        message = f"store document {where}: {reason}; treating it as absent"
        self._warn_once(rel, message)
        raise ObjectUnsigned(message)

    def list_dir(self, rel: str) -> list[str]:
        """Names directly below ``rel`` (empty if it does not exist)."""
        try:
            return sorted(self._io.list(self._rel(rel)))
        except StoreError:
            raise
        except Exception as exc:
            raise self._fault(f"list {rel} in", exc) from exc

    def walk(self, rel: str) -> Iterator[tuple[str, int, float | None]]:
        """Every file below ``rel``: (path relative to the root, size, mtime or None)."""
        rel = self._rel(rel)
        try:
            yield from self._io.walk(rel)
        except Exception as exc:
            raise self._fault(f"list {rel} in", exc) from exc

    def delete(self, rel: str) -> None:
        """Remove one file (no error if it is already gone; nothing in a read-only store)."""
        self._rel(rel)
        if self.read_only:
            return
        try:
            self._io.remove(rel)
        except Exception as exc:
            raise self._fault(f"delete {rel} from", exc) from exc

    # -- run records (flowkit.runstore) ------------------------------------------------------

    def write_run(self, run_id: str, header: dict[str, Any]) -> None:
        """Write (or overwrite) the header of a run."""
        runstore.write_run(self, run_id, header)

    def write_task_records(self, run_id: str, batch_no: int, records: list[dict[str, Any]]) -> None:
        """Write one batch of task records; batches are read back in ``batch_no`` order."""
        runstore.write_task_records(self, run_id, batch_no, records)

    def list_runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Run headers, newest first (a run whose header is unreadable is listed by id only)."""
        return runstore.list_runs(self, limit)

    def read_run(self, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(header, task records) of a run; a unique id prefix is accepted."""
        return runstore.read_run(self, run_id)


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
    "ObjectUnsigned",
    "Store",
    "StoreFault",
    "hash_value",
    "is_digest",
    "resolve_store",
]

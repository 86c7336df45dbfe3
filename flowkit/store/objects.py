"""Content-addressed objects in a store: streamed, hashed and written once on ``put``; checked
(signature, size, digest) on ``get``; damaged ones removed. A value that serializes to at
most :data:`~flowkit.store.artifact.INLINE_MAX` bytes gets no object: ``put`` returns an
inline artifact holding its bytes (kept by the document that names it). ``fk.File``/
``fk.Directory`` values are always objects, unpacked next to them (local stores) or under
``$FLOWKIT_CACHE_DIR``."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from typing import IO, Any, cast

from flowkit import files, serialize
from flowkit.errors import SerializationError, StoreError
from flowkit.fsio import (
    HashingWriter,
    LocalIO,
    ObjectCorrupt,
    ObjectMissing,
    ObjectUnsigned,
    SinkError,
    sink_error_in,
)
from flowkit.hashing import blob_digest
from flowkit.signing import check_object_sig, object_sig
from flowkit.store.artifact import (
    INLINE_MAX,
    UNPACKED,
    Artifact,
    check_inline,
    is_digest,
    object_path,
)
from flowkit.store.base import StoreBase
from flowkit.store.documents import NOT_A_FILE

log = logging.getLogger("flowkit.store")


def _dump_kwargs(refs: set[Any] | None) -> dict[str, Any]:
    return {} if refs is None else {"refs": refs}


def hash_value(
    value: Any, *, what: str = "value", refs: set[Any] | None = None
) -> tuple[str, str, int]:
    """(digest, format, size) that :meth:`Store.put` would give ``value``, without storing."""
    w = HashingWriter(None)
    fmt = serialize.dump(value, cast(IO[bytes], w), what=what, **_dump_kwargs(refs))
    return w.hasher.digest(fmt), fmt, w.hasher.size


class ObjectStore(StoreBase):
    """Artifacts: ``put``, ``get``, ``has`` and ``delete_object`` (see :mod:`flowkit.store`
    for the policies)."""

    object_path = staticmethod(object_path)

    def _artifact(self, digest: str, fmt: str, size: int, inline: bytes | None = None) -> Artifact:
        signer = self._signer
        sig = None if signer is None else object_sig(signer, digest, fmt, size)
        return Artifact(digest, fmt, size, sig, inline)

    def put(self, value: Any, *, what: str = "value", refs: set[Any] | None = None) -> Artifact:
        """Serialise ``value`` into the store; its digest is computed while the bytes stream
        out. Up to :data:`INLINE_MAX` bytes (formats other than ``file``/``dir``) the value
        is returned inline and no object is written. A read-only store computes and returns
        the artifact without writing it."""
        data = serialize.scalar_json_bytes(value)  # ints, strings...: no serializer machinery
        if data is not None and len(data) <= INLINE_MAX:
            digest = blob_digest("json", hashlib.sha256(data).hexdigest())
            return self._artifact(digest, "json", len(data), data)

        def dump(w: HashingWriter) -> str:
            if data is None:
                return self._dump(value, w, what, refs)
            w.write(data)  # a long string: its bytes are known already
            return "json"

        if self.read_only:
            w = HashingWriter(None, hold=INLINE_MAX)
            return self._kept(w, dump(w))
        made: list[Artifact] = []

        def fill(sink: IO[bytes]) -> str | None:
            w = HashingWriter(sink, hold=INLINE_MAX)
            made.append(self._kept(w, dump(w)))
            if made[0].inline is not None:
                return None
            w.release()
            return object_path(made[0].digest)

        try:
            self._io.put(fill)
        except SinkError as exc:
            raise self._fault(f"write {what} to", exc) from exc
        except (StoreError, SerializationError):
            raise  # from fill: a named fault, or a value that cannot be stored
        except Exception as exc:  # the temporary file, the rename, the upload
            raise self._fault(f"write {what} to", exc) from exc
        return made[0]

    def _kept(self, w: HashingWriter, fmt: str) -> Artifact:
        """The artifact of what ``w`` saw: inline if it held every byte and may be inline."""
        held = w.held if fmt not in UNPACKED else None
        return self._artifact(w.hasher.digest(fmt), fmt, w.hasher.size, held)

    def _dump(self, value: Any, sink: HashingWriter, what: str, refs: set[Any] | None) -> str:
        try:
            return serialize.dump(value, cast(IO[bytes], sink), what=what, **_dump_kwargs(refs))
        except SerializationError as exc:
            found = sink_error_in(exc)  # the disk failed, not the value
            if found is None:
                raise
            raise self._fault(f"write {what} to", found) from found.error

    def _signed_ok(self, artifact: Artifact, what: str) -> None:
        """Raise ObjectUnsigned (after one warning) unless the artifact's signature holds."""
        signer = self._signer
        if signer is None or check_object_sig(
            signer, artifact.digest, artifact.format, artifact.size, artifact.sig
        ):
            return
        where = _where(artifact)
        message = (
            f"store {self.url}: {what} ({where}) has no valid signature for this store's key; "
            "treating it as absent"
        )
        self._warn_once(where, message)
        raise ObjectUnsigned(message)

    def get(
        self,
        artifact: Artifact,
        *,
        what: str = "value",
        expected: Any = Any,
        refs: set[Any] | None = None,
    ) -> Any:
        """Load a stored value, verifying size and digest over the bytes as they are read
        (an inline artifact's bytes are checked the same way, with no I/O)."""
        inline = artifact.inline
        if inline is not None:
            problem = check_inline(artifact)
            if problem is not None:
                self._damaged(_where(artifact), what, problem, remove=False)
            if self._signer is not None:
                self._signed_ok(artifact, what)
            return self._load(artifact, inline, None, what, expected, refs)
        rel = object_path(artifact.digest)
        if self._signer is not None:
            self._signed_ok(artifact, what)
        data, path = self._read_object(rel, artifact.size, what)
        n = len(data)
        if n != artifact.size:
            # a local read stops one byte past the expected size: longer is "more than"
            got = f"{n} bytes" if n <= artifact.size else f"more than {artifact.size} bytes"
            self._damaged(rel, what, f"{got}, expected {artifact.size}")
        if blob_digest(artifact.format, hashlib.sha256(data).hexdigest()) != artifact.digest:
            self._damaged(rel, what, "digest mismatch")
        return self._load(artifact, data, path, what, expected, refs)

    def _load(
        self,
        artifact: Artifact,
        data: Any,
        path: str | None,
        what: str,
        expected: Any,
        refs: set[Any] | None,
    ) -> Any:
        kwargs: dict[str, Any] = {} if refs is None else {"refs": refs}
        if expected is not Any:
            kwargs["expected"] = expected
        scratch = None  # an inline value is never unpacked into files/
        if artifact.inline is None or artifact.format in UNPACKED:
            scratch = self._scratch(artifact.digest, artifact.format)
        return serialize.load(
            artifact.format, data, path=path, scratch=scratch, what=what, **kwargs
        )

    def _read_object(self, rel: str, size: int, what: str) -> tuple[Any, str | None]:
        """The object's bytes and local path (None if remote); faults and damage named."""
        try:
            return self._io.read_object(rel, size)
        except (FileNotFoundError, NotADirectoryError) as exc:
            digest = rel.rsplit("/", 1)[-1]
            raise ObjectMissing(f"{what}: object {digest} is not in {self.url}") from exc
        except OSError as exc:
            if exc.errno in NOT_A_FILE:
                self._damaged(rel, what, "not a regular file")
            raise self._fault(f"read {what} from", exc) from exc
        except StoreError:
            raise
        except Exception as exc:
            raise self._fault(f"read {what} from", exc) from exc

    def has(self, artifact: Artifact) -> bool:
        """True if an object of the right size is there (an inline artifact: its bytes match
        it) and, in a signed store, the artifact's signature holds (an object's content is
        checked on get)."""
        if not is_digest(artifact.digest):
            return False
        signer = self._signer
        if signer is not None and not check_object_sig(
            signer, artifact.digest, artifact.format, artifact.size, artifact.sig
        ):
            return False
        if artifact.inline is not None:
            return check_inline(artifact) is None
        return self._io.size(object_path(artifact.digest)) == artifact.size

    def _damaged(self, rel: str, what: str, reason: str, *, remove: bool = True) -> None:
        remove = remove and not self.read_only
        removal = " and removing it so it is written again" if remove else ""
        log.warning(
            "store %s: %s (%s) is damaged: %s; treating it as missing%s",
            self.url,
            rel,
            what,
            reason,
            removal,
        )
        if remove:
            with contextlib.suppress(Exception):
                self._io.remove(rel)
        raise ObjectCorrupt(f"{what}: {rel} in {self.url} is damaged: {reason}")

    def _scratch(self, digest: str, fmt: str | None = None) -> str:
        """Where a File/Directory value of this digest is unpacked (checked: no links)."""
        if not self.local or self.read_only:  # a read-only store gets no files/ folder
            return os.path.join(files.default_unpack_root(), digest)
        if fmt in UNPACKED:
            try:
                cast(LocalIO, self._io).ensure_dir("files")
            except OSError as exc:
                raise self._fault("unpack a file value in", exc) from exc
        return self._files + digest  # = os.path.join(root, "files", digest), on every get

    def delete_object(self, digest: str) -> None:
        """Remove an object and its unpacked copy (gc only; nothing in a read-only store)."""
        rel = object_path(digest)
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


def _where(artifact: Artifact) -> str:
    """How a warning names an artifact: its object's path, or its inline value."""
    if artifact.inline is not None:
        return f"inline value {artifact.digest[:16]!r}"
    return object_path(artifact.digest)


__all__ = ["ObjectStore", "hash_value"]

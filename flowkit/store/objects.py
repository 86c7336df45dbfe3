"""Content-addressed objects in a store: streamed, hashed and written once on ``put``; checked
(signature, size, digest) on ``get``; damaged ones removed. ``fk.File``/``fk.Directory``
values are unpacked next to their objects (local stores) or under ``$FLOWKIT_CACHE_DIR``."""

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
from flowkit.store.artifact import Artifact, is_digest, object_path
from flowkit.store.base import StoreBase
from flowkit.store.documents import NOT_A_FILE

log = logging.getLogger("flowkit.store")

_UNPACKED = frozenset({"file", "dir"})  # formats loaded into files/<d>


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

    def _artifact(self, digest: str, fmt: str, size: int) -> Artifact:
        signer = self._signer
        sig = None if signer is None else object_sig(signer, digest, fmt, size)
        return Artifact(digest, fmt, size, sig)

    def put(self, value: Any, *, what: str = "value", refs: set[Any] | None = None) -> Artifact:
        """Serialise ``value`` into the store; its digest is computed while the bytes stream
        out. A read-only store computes and returns the artifact without writing it."""
        if self.read_only:
            return self._artifact(*hash_value(value, what=what, refs=refs))
        made: list[Artifact] = []

        def fill(sink: IO[bytes]) -> str:
            w = HashingWriter(sink)
            fmt = self._dump(value, w, what, refs)
            made.append(self._artifact(w.hasher.digest(fmt), fmt, w.hasher.size))
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
        rel = object_path(artifact.digest)
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
        """True if an object of the right size is there and, in a signed store, the artifact's
        signature holds (its content is checked on get)."""
        if not is_digest(artifact.digest):
            return False
        signer = self._signer
        if signer is not None and not check_object_sig(
            signer, artifact.digest, artifact.format, artifact.size, artifact.sig
        ):
            return False
        return self._io.size(object_path(artifact.digest)) == artifact.size

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


__all__ = ["ObjectStore", "hash_value"]

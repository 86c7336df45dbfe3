"""Checked JSON documents in a store (cache entries, run records): validated paths, a checksum
or a signature on every document, atomic writes, named faults. A document whose path ends in
``.gz`` is stored gzip-compressed under its checksum (:mod:`flowkit.store.compressed`)."""

from __future__ import annotations

import errno
import json
import re
from collections.abc import Iterator
from typing import Any

import orjson

from flowkit.errors import StoreError
from flowkit.fsio import (
    ConditionalIO,
    Emulated,
    ObjectCorrupt,
    ObjectMissing,
    ObjectUnavailable,
    ObjectUnsigned,
)
from flowkit.signing import body_of, encode, encode_plain, judge, seal
from flowkit.store import compressed
from flowkit.store.base import StoreBase

# A relative path in the store: "/"-separated non-empty parts, none of them "." or "..", no
# NUL or backslash (a name planted in a listing may be odd, but never leaves the root).
_PART = r"(?!\.\.?(?:/|$))[^/\x00\\]+"
_REL_RE = re.compile(f"{_PART}(?:/{_PART})*")
NOT_A_FILE = (errno.ELOOP, errno.EISDIR)  # a link or a folder where a file should be


def _parse(body: bytes, rel: str, where: str) -> Any:
    if compressed.is_compressed(rel):
        body = compressed.unpack(body, where)
    try:
        return orjson.loads(body)  # several times faster (a 100k-item run's records)
    except orjson.JSONDecodeError:
        pass  # NaN, an integer past 64 bits: what json reads and orjson does not; or damage
    try:
        return json.loads(body.decode("utf-8"))  # documents are UTF-8: no detection
    except ValueError as exc:
        raise ObjectCorrupt(f"{where}: {exc}") from exc


class DocumentStore(StoreBase):
    """Documents, listings and deletions by path (see :mod:`flowkit.signing` for the
    envelope). A read-only store writes and deletes nothing."""

    def _rel(self, rel: str) -> str:
        if type(rel) is not str or _REL_RE.fullmatch(rel) is None:
            raise StoreError(
                f"refusing path {rel!r} in store {self.url}: paths are relative, '/'-separated "
                "names (no '.', '..', empty names, NUL or backslash)"
            )
        return rel

    def _sealed(self, rel: str, obj: Any, plain: bool = False) -> bytes:
        """The stored bytes of ``obj`` at ``rel``: encoded, compressed if ``.gz``, sealed."""
        try:
            body = encode_plain(obj) if plain else encode(obj)
            if compressed.is_compressed(rel):
                body = compressed.pack(body)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"cannot write {rel} to store {self.url}: {exc}") from exc
        return seal(body, rel, self._signer)

    def write_doc(self, rel: str, obj: Any, *, plain: bool = False) -> None:
        """Atomically write a JSON document with its checksum, or its signature in a signed
        store (nothing in a read-only store); compressed if ``rel`` ends in ``.gz``.
        ``plain``: ``obj`` holds only string keys and finite floats (faster to encode, see
        :func:`flowkit.signing.encode_plain`)."""
        self._rel(rel)
        if self.read_only:
            return
        data = self._sealed(rel, obj, plain)
        try:
            self._io.write(rel, data)
        except Exception as exc:
            raise self._fault(f"write {rel} to", exc) from exc

    # -- conditional writes ----------------------------------------------------------------

    def _conditional(self, rel: str, what: str) -> ConditionalIO:
        """The store's conditional writes (best effort over a plain ObjectIO), warning once
        per store where they are not atomic across machines; a read-only store refuses."""
        self._rel(rel)
        if self.read_only:
            raise StoreError(
                f"cannot {what} {rel}: store {self.url} is opened read-only; open it "
                "without read_only to run a scheduler or claim on it"
            )
        io_ = self._io
        cond = io_ if isinstance(io_, ConditionalIO) else Emulated(io_)
        try:
            guarantee = cond.guarantee()
        except Exception as exc:
            raise self._fault("probe conditional writes on", exc) from exc
        if guarantee == "best-effort":
            self._warn_once(
                "\x00conditional",
                f"store {self.url} has no conditional writes (create-if-absent, "
                "compare-and-swap): leases and fire claims there are best effort, and two "
                "schedulers racing within one round trip may both start a fire. Run one "
                "scheduler per store, or use a local folder or S3 with conditional writes",
            )
        return cond

    def create_doc(self, rel: str, obj: Any) -> bool:
        """Write a document (as :meth:`write_doc` does) only if no file is at ``rel``; True
        iff this call created it. Atomic against other processes and machines on a local
        folder and on S3 with conditional writes (see :mod:`flowkit.fsio.conditional`).
        On S3, a request retried after its answer was lost may report False for a document
        it did create: put a token in it to recognise your own (as claims do).
        StoreError on a read-only store."""
        cond = self._conditional(rel, "create")
        data = self._sealed(rel, obj)
        try:
            return cond.create(rel, data)
        except Exception as exc:
            raise self._fault(f"create {rel} in", exc) from exc

    def read_doc_versioned(self, rel: str) -> tuple[Any, str]:
        """(document, version) for :meth:`replace_doc`. ObjectMissing if absent;
        ObjectCorrupt / ObjectUnsigned (as :meth:`read_doc`) if damaged or unsigned, with the
        version of what is there in the error's ``version``, so that it can be replaced."""
        cond = self._conditional(rel, "read for a compare-and-swap")
        try:
            data, version = cond.read_versioned(rel)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectMissing(f"{rel} is not in {self.url}") from exc
        except OSError as exc:
            if exc.errno in NOT_A_FILE:
                raise ObjectCorrupt(f"{self.url}/{rel}: not a regular file") from exc
            raise self._fault(f"read {rel} from", exc) from exc
        except StoreError:
            raise
        except Exception as exc:
            raise self._fault(f"read {rel} from", exc) from exc
        try:
            body = body_of(data, rel, self._signer)
            if body is None:
                return self._refuse_doc(data, rel), version  # raises
            return _parse(body, rel, f"{self.url}/{rel}"), version
        except ObjectUnavailable as exc:
            exc.version = version
            raise

    def replace_doc(self, rel: str, obj: Any, expected_version: str) -> bool:
        """Write a document only if the file at ``rel`` is still at ``expected_version`` (from
        :meth:`read_doc_versioned`): compare-and-swap. False if it changed or vanished.
        StoreError on a read-only store."""
        cond = self._conditional(rel, "replace")
        data = self._sealed(rel, obj)
        try:
            return cond.replace(rel, data, expected_version)
        except Exception as exc:
            raise self._fault(f"replace {rel} in", exc) from exc

    def read_doc(self, rel: str) -> Any:
        """Read a document; ObjectMissing / ObjectCorrupt if it is absent or damaged (a
        compressed one also if it decompresses to more than
        :data:`~flowkit.store.compressed.UNPACKED_MAX` bytes), and ObjectUnsigned (an
        ObjectMissing) if its signature does not hold."""
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
            if exc.errno in NOT_A_FILE:
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
        return _parse(body, rel, f"{self.url}/{rel}")

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


__all__ = ["NOT_A_FILE", "DocumentStore"]

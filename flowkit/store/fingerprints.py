"""Fingerprint documents: a task's code components, stored once per code digest.

Every call of a task has the same code components (~1.5 KB: one digest per function, helper,
class and constant its code reaches), so a cache entry names them by their digest ``d``
(:func:`flowkit.hashing.code_digest` of the components) and the components live once in
``fingerprints/<d[:2]>/<d>.json``. The document is content addressed: a reader checks that
the components hash to ``d``, so a damaged or planted document is never believed.

Only ``flowkit cache explain`` reads them (to say *which* helper changed); a cache hit never
does. Writes happen at most once per process and store; a concurrent writer writes identical
bytes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from flowkit.fsio import ObjectUnavailable
from flowkit.hashing import code_digest
from flowkit.store.artifact import is_digest
from flowkit.store.documents import DocumentStore

log = logging.getLogger("flowkit.store")

FOLDER = "fingerprints"
_MEMO_MAX = 4096  # components kept in memory, by digest (a process sees few tasks)

_lock = threading.Lock()
_written: set[tuple[str, bool, str]] = set()  # (store url, signed, digest) written already
_known: dict[str, dict[str, str]] = {}  # digest -> components that hash to it
_digests: dict[tuple[tuple[str, str], ...], str] = {}  # components -> digest


def fingerprint_path(digest: str) -> str:
    """``fingerprints/<d[:2]>/<d>.json``; ValueError unless ``digest`` is 64 lowercase hex."""
    if not is_digest(digest):
        raise ValueError(f"{digest!r} is not a fingerprint digest (64 lowercase hex digits)")
    return f"{FOLDER}/{digest[:2]}/{digest}.json"


def fingerprint_of(components: Mapping[str, str]) -> str:
    """The digest of ``components`` (:func:`flowkit.hashing.code_digest`), remembered: every
    call of a task passes the same components."""
    items = tuple(components.items())
    digest = _digests.get(items)
    if digest is None:
        digest = code_digest(components)
        with _lock:
            if len(_digests) >= _MEMO_MAX:
                _digests.clear()
            _digests[items] = digest
    return digest


def write_once(store: DocumentStore, digest: str, components: Mapping[str, str]) -> None:
    """Write the fingerprint document ``digest`` unless this process wrote it to this store
    already. ``components`` is only read when the document is written."""
    memo = (store.url, store.signed, digest)
    if memo in _written:
        return
    with _lock:  # claimed before the write: threads racing on a task's first calls write once
        if memo in _written:
            return
        if len(_written) >= _MEMO_MAX:
            _written.clear()
        _written.add(memo)
    comps = dict(components)
    try:
        store.write_doc(fingerprint_path(digest), {"fingerprint": digest, "components": comps})
    except BaseException:
        _written.discard(memo)  # the next record tries again
        raise
    with _lock:
        _remember(digest, comps)


def read_components(store: DocumentStore, digest: str) -> dict[str, str] | None:
    """The components of fingerprint ``digest``, or None (with one warning) when its document
    is missing, damaged, or does not hash to ``digest``."""
    known = _known.get(digest)
    if known is not None:
        return known
    try:
        doc = store.read_doc(fingerprint_path(digest))
        components = _components_in(doc)
        if code_digest(components) != digest:
            raise ValueError("its components do not hash to its name")
    except (ObjectUnavailable, ValueError) as exc:
        where = f"{FOLDER}/{digest[:2]}/{digest}.json"
        store._warn_once(
            where,
            f"store {store.url}: fingerprint document {where} is unreadable ({exc}); the code "
            "components of the cache entries naming it are unknown",
        )
        return None
    with _lock:
        _remember(digest, components)
    return components


class StoredComponents(Mapping[str, str]):
    """The code components of an entry read from a store, loaded from its fingerprint
    document on first use (a hit never uses them). ``known`` is False when that document is
    missing or damaged: the mapping is then empty."""

    __slots__ = ("_found", "_loaded", "_store", "fingerprint")

    def __init__(self, store: DocumentStore | None, fingerprint: str) -> None:
        self._store = store
        self.fingerprint = fingerprint
        self._loaded: dict[str, str] | None = None  # None: not loaded yet
        self._found = False

    def _components(self) -> dict[str, str]:
        if self._loaded is None:
            store, self._store = self._store, None
            found = None if store is None else read_components(store, self.fingerprint)
            self._loaded = {} if found is None else found
            self._found = found is not None
        return self._loaded

    @property
    def known(self) -> bool:
        """True if the components could be loaded (their document is intact)."""
        self._components()
        return self._found

    def __getitem__(self, name: str) -> str:
        return self._components()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._components())

    def __len__(self) -> int:
        return len(self._components())

    def __repr__(self) -> str:
        return f"StoredComponents({self.fingerprint[:16]}...)"


def _components_in(doc: Any) -> dict[str, str]:
    comps = doc.get("components") if isinstance(doc, dict) else None
    if not isinstance(comps, dict) or not all(
        type(k) is str and type(v) is str for k, v in comps.items()
    ):
        raise ValueError("not a fingerprint document")
    return comps


def _remember(digest: str, components: dict[str, str]) -> None:
    if len(_known) >= _MEMO_MAX:
        _known.clear()
    _known[digest] = components


def forget() -> None:
    """Drop what this process remembers (tests: a store changed behind its back)."""
    with _lock:
        _written.clear()
        _known.clear()
        _digests.clear()


__all__ = [
    "FOLDER",
    "StoredComponents",
    "fingerprint_of",
    "fingerprint_path",
    "forget",
    "read_components",
    "write_once",
]

"""``flowkit cache gc``: remove old cache entries, and the objects and fingerprint documents
nothing recent needs (:func:`gc`).

What a run started within the window used is kept: its task records name the keys it looked
up or stored and the objects it read or wrote.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flowkit.cache import CACHE_FOLDER, CacheEntry
from flowkit.hashing import is_digest
from flowkit.store import ObjectUnavailable, Store
from flowkit.store.fingerprints import FOLDER as FINGERPRINTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GcReport:
    entries_removed: int
    objects_removed: int
    bytes_freed: int
    fingerprints_removed: int = 0


def _digests_in(obj: Any) -> Iterator[str]:
    """Every digest-shaped string in a run record: keys, and the digests of the artifacts it
    names (task outputs, stored logs, the run's output, ``{"$artifact": ...}`` inputs)."""
    if isinstance(obj, str):
        if is_digest(obj):
            yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _digests_in(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _digests_in(v)


def gc(store: Store, older_than_days: float) -> GcReport:
    """Remove entries older than ``older_than_days`` and the objects and fingerprint
    documents nothing else needs.

    What a run started within the window used is kept: its task records name the keys it
    looked up or stored and the objects it read or wrote, so a month-old entry (and its
    ``fk.File``) that today's run hit is not collected under it. Inline artifacts have no
    object to keep.
    """
    cutoff = time.time() - older_than_days * 86400.0
    keep = _used_by_recent_runs(store, cutoff)
    removed, fingerprints = _gc_entries(store, cutoff, keep)
    fingerprints_removed = _gc_fingerprints(store, cutoff, fingerprints)
    objects, freed = _gc_objects(store, cutoff, keep)
    for rel, _, mtime in list(store.walk("tmp")):
        if mtime is not None and mtime < min(cutoff, time.time() - 86400.0):
            store.delete(rel)  # left by a killed writer
    log.info(
        "gc %s: %d entries, %d objects (%d bytes), %d fingerprints removed",
        store.url,
        removed,
        objects,
        freed,
        fingerprints_removed,
    )
    return GcReport(removed, objects, freed, fingerprints_removed)


def _used_by_recent_runs(store: Store, cutoff: float) -> set[str]:
    """Every digest and key named by a run started after ``cutoff`` (or at an unknown time)."""
    keep: set[str] = set()
    for header in store.list_runs():
        started = header.get("started")
        if not isinstance(started, (int, float)) or started >= cutoff:
            _, tasks = store.read_run(header["id"])
            keep.update(_digests_in(header))
            keep.update(_digests_in(tasks))
    return keep


def _gc_entries(store: Store, cutoff: float, keep: set[str]) -> tuple[int, set[str]]:
    """Delete old entries not in ``keep``; add the objects of the others to ``keep``.
    Returns the number of entries removed and the fingerprints the others name."""
    removed = 0
    fingerprints: set[str] = set()
    for rel, _, mtime in list(store.walk(CACHE_FOLDER)):
        try:
            entry: CacheEntry | None = CacheEntry.from_dict(store.read_doc(rel))
        except (ObjectUnavailable, ValueError):
            entry = None  # damaged, or not an entry: judged by its file time
        if entry is not None:
            created = entry.created
        else:
            created = mtime if mtime is not None else cutoff
        if created < cutoff and (entry is None or entry.key not in keep):
            store.delete(rel)
            removed += 1
        elif entry is not None:
            keep.update(a.digest for a in entry.outputs if a.inline is None)
            fingerprints.add(entry.fingerprint)
    return removed, fingerprints


def _gc_fingerprints(store: Store, cutoff: float, named: set[str]) -> int:
    """Delete fingerprint documents last written before ``cutoff`` that no entry names."""
    removed = 0
    for rel, _, mtime in list(store.walk(FINGERPRINTS)):
        digest = rel.rsplit("/", 1)[-1].removesuffix(".json")
        if digest in named or mtime is None or mtime >= cutoff:
            continue
        store.delete(rel)
        removed += 1
    return removed


def _gc_objects(store: Store, cutoff: float, keep: set[str]) -> tuple[int, int]:
    """Delete objects last written before ``cutoff`` and not in ``keep``: (count, bytes)."""
    objects = freed = 0
    for rel, size, mtime in list(store.walk("objects")):
        digest = rel.rsplit("/", 1)[-1]
        if not is_digest(digest):
            store.delete(rel)  # not an object flowkit wrote
            continue
        if digest in keep or mtime is None or mtime >= cutoff:
            continue
        store.delete_object(digest)
        objects += 1
        freed += size
    return objects, freed


__all__ = ["GcReport", "gc"]

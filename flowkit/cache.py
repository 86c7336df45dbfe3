"""The cache index: which task call produced which artifacts, and why a call would miss.

An entry is keyed by the call key (``flowkit.hashing.call_key``) and holds the task identity,
the output artifacts and the key's components — code components by name (from
``flowkit.codehash``), the interface digest, the input digests by parameter, the pinned
version — so :func:`explain` can say what differs from the nearest earlier entry.

Store layout (see ``docs/caching.md``): ``index/<k[:2]>/<k>.json`` for lookups by key and
``tasks/<task>/<k>.json`` (same document) for per-task listings. Both are checked JSON
documents written atomically; writers of the same key write the same outputs, so concurrent
writers all succeed and any one of them may win.

Policies:

* Never serve anything doubtful. A damaged entry, a missing or damaged object, or a pickle
  written by another Python version is a *miss* with a warning (the call is recomputed and
  its entry rewritten). Store errors (unreachable endpoint) propagate.
* Keys are derived in :mod:`flowkit.keys`; this module only stores and finds entries.
* :func:`gc` removes entries created more than N days ago, then objects that no remaining
  entry and no run started within the window references, and only objects last written
  before the cutoff — so a run in progress (whose new objects are young) is never robbed.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowkit import serialize
from flowkit.codehash import describe_changes
from flowkit.errors import SerializationError
from flowkit.hashing import is_digest
from flowkit.store import (
    Artifact,
    ObjectCorrupt,
    ObjectMissing,
    ObjectUnavailable,
    Store,
)

log = logging.getLogger(__name__)

ENTRY_FORMAT = 2


@dataclass(frozen=True)
class CacheEntry:
    """One cached call: its key, task identity, outputs and key components."""

    key: str
    identity: str
    outputs: tuple[Artifact, ...]
    components: Mapping[str, str]
    interface: str
    inputs: Mapping[str, str]
    version: str | None = None
    created: float = field(default_factory=time.time)
    run_id: str | None = None
    # the outputs' tokens when written (flowkit.keys); one that differs from its artifact's
    # digest marks an output naming user code, whose token is re-derived when it is read
    tokens: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.tokens:  # outputs that name no user code: their tokens are their digests
            object.__setattr__(self, "tokens", tuple(a.digest for a in self.outputs))

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry_format": ENTRY_FORMAT,
            "key": self.key,
            "identity": self.identity,
            "outputs": [a.to_dict() for a in self.outputs],
            "components": dict(self.components),
            "interface": self.interface,
            "inputs": dict(self.inputs),
            "version": self.version,
            "created": self.created,
            "run_id": self.run_id,
            "tokens": list(self.tokens),
        }

    @classmethod
    def from_dict(cls, d: Any) -> CacheEntry:
        """Rebuild an entry; ValueError if anything is missing or mistyped."""
        if not isinstance(d, dict) or d.get("entry_format") != ENTRY_FORMAT:
            raise ValueError("not a cache entry of a known format")
        try:
            key, identity, interface = d["key"], d["identity"], d["interface"]
            outputs = tuple([Artifact.from_dict(a) for a in d["outputs"]])
            components, inputs = dict(d["components"]), dict(d["inputs"])
            version, created, run_id = d["version"], float(d["created"]), d.get("run_id")
            tokens = tuple(d["tokens"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed cache entry: {exc!r}") from exc
        # one pass over the strings, no intermediate lists (this runs on every cache hit)
        if not (type(key) is str and type(identity) is str and type(interface) is str):
            raise ValueError("malformed cache entry: non-string field")
        for mapping in (components, inputs):
            for s in mapping.values():
                if type(s) is not str:
                    raise ValueError("malformed cache entry: non-string field")
        if len(tokens) != len(outputs):
            raise ValueError("malformed cache entry: output tokens")
        for t, a in zip(tokens, outputs, strict=True):
            # most tokens are their output's digest, already checked by Artifact.from_dict
            if t != a.digest and not is_digest(t):
                raise ValueError("malformed cache entry: output tokens")
        # Every field is checked above: fill the frozen instance directly, without the ten
        # object.__setattr__ calls of its __init__ (this runs on every cache hit).
        entry = object.__new__(cls)
        entry.__dict__.update(
            key=key,
            identity=identity,
            outputs=outputs,
            components=components,
            interface=interface,
            inputs=inputs,
            version=version,
            created=created,
            run_id=run_id,
            tokens=tokens,
        )
        return entry


def _index_path(key: str) -> str:
    return f"index/{key[:2]}/{key}.json"


def task_dir(identity: str) -> str:
    """The folder name of a task's entries: a readable prefix plus a hash of the identity."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", identity)[:60]
    return f"{safe}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}"


def _task_path(identity: str, key: str) -> str:
    return f"tasks/{task_dir(identity)}/{key}.json"


# -- lookup and record -----------------------------------------------------------------------


def lookup(store: Store, key: str) -> CacheEntry | None:
    """The entry for ``key``, or None (absent, or damaged: then with a warning)."""
    try:
        doc = store.read_doc(_index_path(key))
    except ObjectMissing:
        return None
    except ObjectCorrupt as exc:
        log.warning("cache entry %s is damaged (%s); treating it as a miss", key, exc)
        return None
    try:
        entry = CacheEntry.from_dict(doc)
        if entry.key != key:
            raise ValueError(f"entry is for key {entry.key}")
    except ValueError as exc:
        log.warning("cache entry %s is unusable (%s); treating it as a miss", key, exc)
        return None
    return entry


def load_outputs(
    store: Store, entry: CacheEntry, expected: tuple[Any, ...] | None = None
) -> list[tuple[Any, set[Any]]] | None:
    """The entry's outputs as ``(value, refs)`` pairs, or None (with a warning) if any cannot
    be loaded intact. ``expected`` gives each output's type (class references in the stored
    bytes resolve against it); ``refs`` are the classes and functions the bytes named."""
    out = []
    for i, artifact in enumerate(entry.outputs):
        what = f"task `{entry.identity}` output {i}"
        refs: set[Any] = set()
        hint = expected[i] if expected is not None and i < len(expected) else Any
        try:
            out.append((store.get(artifact, what=what, expected=hint, refs=refs), refs))
        except ObjectMissing:
            log.warning("%s: cached object %s is missing; recomputing", what, artifact.digest)
            return None
        except ObjectCorrupt:
            return None  # the store has warned and removed it
        except serialize.PickleVersionError as exc:
            log.warning("%s; recomputing", exc)
            return None
        except SerializationError as exc:
            log.warning("%s cannot be loaded (%s); recomputing", what, exc)
            return None
    return out


def record(store: Store, entry: CacheEntry) -> None:
    """Write ``entry`` (atomically, replacing any entry with the same key)."""
    doc = entry.to_dict()
    store.write_doc(_index_path(entry.key), doc)
    store.write_doc(_task_path(entry.identity, entry.key), doc)


def entries(store: Store, identity: str) -> list[CacheEntry]:
    """Every readable entry of one task, newest first (damaged ones are skipped)."""
    folder = f"tasks/{task_dir(identity)}"
    out = []
    for name in store.list_dir(folder):
        try:
            entry = CacheEntry.from_dict(store.read_doc(f"{folder}/{name}"))
        except (ObjectUnavailable, ValueError) as exc:
            log.debug("skipping %s/%s: %s", folder, name, exc)
            continue
        if entry.identity == identity:
            out.append(entry)
    return sorted(out, key=lambda e: e.created, reverse=True)


# -- explain ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Explanation:
    """Whether a call would hit, and on a miss, what differs from the nearest earlier entry."""

    identity: str
    hit: bool
    reasons: tuple[str, ...] = ()
    nearest: CacheEntry | None = None

    def __str__(self) -> str:
        if self.hit:
            return f"task `{self.identity}`: hit"
        return f"task `{self.identity}`: miss: " + "; ".join(self.reasons)


def _changes(old: Mapping[str, str], new: Mapping[str, str], label: str) -> list[str]:
    out = []
    for name in sorted(set(old) | set(new)):
        shown = label.format(name)
        if name not in old:
            out.append(f"{shown} added")
        elif name not in new:
            out.append(f"{shown} removed")
        elif old[name] != new[name]:
            out.append(f"{shown} changed")
    return out


def diff(
    old: CacheEntry,
    components: Mapping[str, str],
    interface: str | None,
    input_digests: Mapping[str, str],
    version: str | None,
) -> list[str]:
    """What differs between an entry and a call's key components, phrased by name."""
    reasons = []
    if old.version != version:
        reasons.append("version changed")
    elif version is None:
        # codehash phrases code changes, with versions ("module `numpy` changed (a -> b)")
        reasons += describe_changes(old.components, components)
    if interface is not None and old.interface != interface:
        reasons.append("interface changed")
    reasons += _changes(old.inputs, input_digests, "input `{}`")
    return reasons


def explain(
    store: Store,
    identity: str,
    components: Mapping[str, str],
    input_digests: Mapping[str, str],
    version: str | None = None,
    *,
    interface: str | None = None,
    key: str | None = None,
    name: str | None = None,
) -> Explanation:
    """Would this call hit? If not, what changed since the nearest earlier entry of the task.

    ``name`` is the task name shown in reasons (default: ``identity``);
    ``components`` are the code components by name (``{"helper `clean`": digest, ...}``);
    pass ``key`` (and ``interface``) to decide the hit exactly as the runner does; without a
    key, an entry whose components all match counts as the hit.
    """
    known = entries(store, identity)
    if key is not None:
        entry = lookup(store, key)
        if entry is not None and all(store.has(a) for a in entry.outputs):
            return Explanation(identity, True, (), entry)
    if not known:
        return Explanation(
            identity, False, (f"no earlier entry of task `{name or identity}` in the store",)
        )
    scored = [(diff(e, components, interface, input_digests, version), e) for e in known]
    best_reasons, best = min(scored, key=lambda pair: len(pair[0]))  # newest first wins ties
    if not best_reasons:
        if key is None and all(store.has(a) for a in best.outputs):
            return Explanation(identity, True, (), best)
        best_reasons = ["the matching entry's outputs are missing or damaged"]
    return Explanation(identity, False, tuple(best_reasons), best)


# -- gc --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GcReport:
    entries_removed: int
    objects_removed: int
    bytes_freed: int


def _digests_in(obj: Any) -> Iterator[str]:
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
    """Remove entries older than ``older_than_days`` and the objects nothing else needs.

    What a run started within the window used is kept: its task records name the keys it
    looked up or stored and the objects it read or wrote, so a month-old entry (and its
    ``fk.File``) that today's run hit is not collected under it.
    """
    cutoff = time.time() - older_than_days * 86400.0
    keep = _used_by_recent_runs(store, cutoff)
    removed = _gc_entries(store, cutoff, keep)
    objects, freed = _gc_objects(store, cutoff, keep)
    for rel, _, mtime in list(store.walk("tmp")):
        if mtime is not None and mtime < min(cutoff, time.time() - 86400.0):
            store.delete(rel)  # left by a killed writer
    log.info("gc %s: %d entries, %d objects, %d bytes removed", store.url, removed, objects, freed)
    return GcReport(removed, objects, freed)


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


def _gc_entries(store: Store, cutoff: float, keep: set[str]) -> int:
    """Delete old entries not in ``keep``; add the outputs of the others to ``keep``. Returns
    the number of index entries removed."""
    removed = 0
    for folder in ("index", "tasks"):
        for rel, _, mtime in list(store.walk(folder)):
            try:
                entry: CacheEntry | None = CacheEntry.from_dict(store.read_doc(rel))
            except (ObjectUnavailable, ValueError):
                entry = None  # damaged: judged by its file time
            if entry is not None:
                created = entry.created
            else:
                created = mtime if mtime is not None else cutoff
            if created < cutoff and (entry is None or entry.key not in keep):
                store.delete(rel)
                removed += folder == "index"
            elif entry is not None:
                keep.update(a.digest for a in entry.outputs)
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


__all__ = [
    "CacheEntry",
    "Explanation",
    "GcReport",
    "diff",
    "entries",
    "explain",
    "gc",
    "load_outputs",
    "lookup",
    "record",
    "task_dir",
]

"""The cache: which task call produced which artifacts, and why a call would miss.

An entry is keyed by the call key (``flowkit.hashing.call_key``) and holds the task identity,
the output artifacts (small ones inline) and the key's components: the code fingerprint (by
digest; the components themselves, from ``flowkit.codehash``, live once per digest in a
fingerprint document, :mod:`flowkit.store.fingerprints`), the interface digest, the input
digests by parameter, the pinned version — so :func:`explain` can say what differs from the
nearest earlier entry.

Store layout (see ``docs/caching.md``): one checked JSON document per entry,
``cache/<task>/<k>.json`` (``<task>``: :func:`task_dir` of the identity), so a lookup needs the
identity and the key, and a task's entries are one folder listing. Documents are written
atomically; writers of the same key write the same outputs, so concurrent writers all succeed
and any one of them may win.

Policies:

* Never serve anything doubtful. A damaged entry (inline bytes that disagree with their
  digest included), a missing or damaged object, or a pickle written by another Python
  version is a *miss* with a warning (the call is recomputed and its entry rewritten). Store
  errors (unreachable endpoint) propagate.
* A hit reads the entry and its non-inline objects only, never the fingerprint document; a
  missing or damaged one only makes ``explain`` say the code components are unknown.
* Keys are derived in :mod:`flowkit.keys`; this module only stores and finds entries.
* :func:`flowkit.cachegc.gc` removes entries created more than N days ago, then objects and
  fingerprint documents that no remaining entry and no run started within the window
  references, and only those last written before the cutoff — so a run in progress (whose
  new files are young) is never robbed.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
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
from flowkit.store.fingerprints import StoredComponents, fingerprint_of, write_once

log = logging.getLogger(__name__)

ENTRY_FORMAT = 3
CACHE_FOLDER = "cache"


@dataclass(frozen=True)
class CacheEntry:
    """One cached call: its key, task identity, outputs and key components.

    ``fingerprint`` is the digest of ``components`` (computed when not given); an entry
    read from a store has :class:`StoredComponents`, loaded only when used.
    """

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
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not self.tokens:  # outputs that name no user code: their tokens are their digests
            object.__setattr__(self, "tokens", tuple(a.digest for a in self.outputs))
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fingerprint_of(self.components))

    def to_dict(self) -> dict[str, Any]:
        d = {
            "entry_format": ENTRY_FORMAT,
            "key": self.key,
            "identity": self.identity,
            "outputs": [a.to_dict() for a in self.outputs],
            "fingerprint": self.fingerprint,
            "interface": self.interface,
            "inputs": dict(self.inputs),
            "version": self.version,
            "created": self.created,
            "run_id": self.run_id,
        }
        if any(t != a.digest for t, a in zip(self.tokens, self.outputs, strict=True)):
            d["tokens"] = list(self.tokens)  # only when they say more than the digests
        return d

    @classmethod
    def from_dict(cls, d: Any, store: Store | None = None) -> CacheEntry:
        """Rebuild an entry; ValueError if anything is missing or mistyped. Its components
        are loaded from ``store`` when used (without a store: unknown)."""
        if not isinstance(d, dict) or d.get("entry_format") != ENTRY_FORMAT:
            raise ValueError("not a cache entry of a known format")
        try:
            key, identity, interface = d["key"], d["identity"], d["interface"]
            fingerprint = d["fingerprint"]
            outputs = tuple([Artifact.from_dict(a) for a in d["outputs"]])
            inputs = dict(d["inputs"])
            version, created, run_id = d["version"], float(d["created"]), d.get("run_id")
            tokens = tuple(d["tokens"]) if "tokens" in d else tuple([a.digest for a in outputs])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed cache entry: {exc!r}") from exc
        _check_fields(key, identity, interface, fingerprint, inputs, version, run_id)
        if len(tokens) != len(outputs):
            raise ValueError("malformed cache entry: output tokens")
        for t, a in zip(tokens, outputs, strict=True):
            # most tokens are their output's digest, already checked by Artifact.from_dict
            if t != a.digest and not is_digest(t):
                raise ValueError("malformed cache entry: output tokens")
        # Every field is checked above: fill the frozen instance directly, without the
        # object.__setattr__ calls of its __init__ (this runs on every cache hit).
        entry = object.__new__(cls)
        entry.__dict__.update(
            key=key,
            identity=identity,
            outputs=outputs,
            components=StoredComponents(store, fingerprint),
            interface=interface,
            inputs=inputs,
            version=version,
            created=created,
            run_id=run_id,
            tokens=tokens,
            fingerprint=fingerprint,
        )
        return entry


def _check_fields(
    key: Any,
    identity: Any,
    interface: Any,
    fingerprint: Any,
    inputs: dict[Any, Any],
    version: Any,
    run_id: Any,
) -> None:
    """ValueError unless an entry's scalar fields have their types (a fingerprint is a
    digest: it becomes a path)."""
    # one pass over the strings, no intermediate lists (this runs on every cache hit)
    if not (type(key) is str and type(identity) is str and type(interface) is str):
        raise ValueError("malformed cache entry: non-string field")
    if not is_digest(fingerprint):
        raise ValueError("malformed cache entry: fingerprint")
    for s in inputs.values():
        if type(s) is not str:
            raise ValueError("malformed cache entry: non-string field")
    if not (version is None or type(version) is str) or not (run_id is None or type(run_id) is str):
        raise ValueError("malformed cache entry: version or run id")


def task_dir(identity: str) -> str:
    """The folder name of a task's entries: a readable prefix plus a hash of the identity."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", identity)[:60]
    return f"{safe}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}"


def entry_path(identity: str, key: str) -> str:
    """``cache/<task>/<key>.json``: where the entry of ``key`` of task ``identity`` lives."""
    return f"{CACHE_FOLDER}/{task_dir(identity)}/{key}.json"


# -- lookup and record -----------------------------------------------------------------------


def lookup(store: Store, key: str, identity: str) -> CacheEntry | None:
    """The entry for ``key`` of task ``identity``, or None (absent, or damaged: then with a
    warning)."""
    try:
        doc = store.read_doc(entry_path(identity, key))
    except ObjectMissing:
        return None
    except ObjectCorrupt as exc:
        log.warning("cache entry %s is damaged (%s); treating it as a miss", key, exc)
        return None
    try:
        entry = CacheEntry.from_dict(doc, store)
        if entry.key != key or entry.identity != identity:
            raise ValueError(f"entry is for key {entry.key} of task `{entry.identity}`")
    except ValueError as exc:
        log.warning("cache entry %s is unusable (%s); treating it as a miss", key, exc)
        return None
    return entry


def load_artifacts(
    store: Store,
    task: str,
    artifacts: Sequence[Artifact],
    expected: tuple[Any, ...] | None = None,
) -> list[tuple[Any, set[Any]]] | None:
    """Task ``task``'s stored outputs as ``(value, refs)`` pairs, or None (with a warning)
    if any cannot be loaded intact. ``expected`` gives each output's type (class references
    in the stored bytes resolve against it); ``refs`` are the classes and functions the
    bytes named."""
    out = []
    for i, artifact in enumerate(artifacts):
        what = f"task `{task}` output {i}"
        refs: set[Any] = set()
        hint = expected[i] if expected is not None and i < len(expected) else Any
        try:
            out.append((store.get(artifact, what=what, expected=hint, refs=refs), refs))
        except ObjectMissing:
            log.warning("%s: stored object %s is missing; recomputing", what, artifact.digest)
            return None
        except ObjectCorrupt:
            return None  # the store has warned (and removed a damaged object)
        except serialize.PickleVersionError as exc:
            log.warning("%s; recomputing", exc)
            return None
        except SerializationError as exc:
            log.warning("%s cannot be loaded (%s); recomputing", what, exc)
            return None
    return out


def load_outputs(
    store: Store, entry: CacheEntry, expected: tuple[Any, ...] | None = None
) -> list[tuple[Any, set[Any]]] | None:
    """The entry's outputs: :func:`load_artifacts` of ``entry.outputs``."""
    return load_artifacts(store, entry.identity, entry.outputs, expected)


def record(store: Store, entry: CacheEntry) -> None:
    """Write ``entry`` (atomically, replacing any entry with the same key), after its
    fingerprint document (once per process and store)."""
    components = entry.components
    if not isinstance(components, StoredComponents) or components.known:
        write_once(store, entry.fingerprint, components)
    store.write_doc(entry_path(entry.identity, entry.key), entry.to_dict())


def entries(store: Store, identity: str) -> list[CacheEntry]:
    """Every readable entry of one task, newest first (damaged ones are skipped)."""
    folder = f"{CACHE_FOLDER}/{task_dir(identity)}"
    out = []
    for name in store.list_dir(folder):
        if not name.endswith(".json"):
            continue
        try:
            entry = CacheEntry.from_dict(store.read_doc(f"{folder}/{name}"), store)
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
        reasons += _code_changes(old, components)
    if interface is not None and old.interface != interface:
        reasons.append("interface changed")
    reasons += _changes(old.inputs, input_digests, "input `{}`")
    return reasons


def _code_changes(old: CacheEntry, components: Mapping[str, str]) -> list[str]:
    """Code changes by name (``helper `clean` changed``), from codehash; when the entry's
    components are unknown, only whether the code changed at all."""
    stored = old.components
    if isinstance(stored, StoredComponents) and not stored.known:
        if old.fingerprint == fingerprint_of(components):
            return []
        return [
            "code changed (which parts is unknown: the earlier entry's fingerprint document "
            f"fingerprints/{old.fingerprint[:2]}/{old.fingerprint}.json is missing or damaged)"
        ]
    # codehash phrases code changes, with versions ("module `numpy` changed (a -> b)")
    return describe_changes(stored, components)


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
        entry = lookup(store, key, identity)
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


__all__ = [
    "CACHE_FOLDER",
    "ENTRY_FORMAT",
    "CacheEntry",
    "Explanation",
    "StoredComponents",
    "diff",
    "entries",
    "entry_path",
    "explain",
    "load_artifacts",
    "load_outputs",
    "lookup",
    "record",
    "task_dir",
]

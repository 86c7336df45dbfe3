"""Why a call of a cached task ran instead of hitting the cache: :func:`miss_reason`.

A call of a ``cache=True`` task that ran wrote its cache entry
(``cache/<task>/<key>.json``, :mod:`flowkit.cache`) holding the key's components: code
fingerprint, interface, input tokens, version. The reasons are what differs between that
entry and the nearest entry of the same task written before the call started by another run
(a map's other items are not what it could have hit), phrased by :func:`flowkit.cache.diff`
exactly as ``flowkit cache explain`` phrases them ("input `x` changed", "helper `clean`
changed", "no earlier entry of task `t` in the store").

A task record of a cached task names the identity its cache folder is named by (the
function's module-qualified name, :func:`flowkit.keys.identity`): the entry is read from
there. Records written before flowkit kept it name only the task, so the entry is then found
by its key among the task folders, those whose readable prefix ends with the task's name
first. A call that failed wrote no entry: only the inputs it recorded can be
compared, and the reasons say so. Nothing here raises on a damaged store: an entry that
cannot be read gives no reason rather than an error page.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from flowkit import cache
from flowkit.cache import CacheEntry
from flowkit.errors import FlowkitError
from flowkit.store import Store
from flowkit.taskview import TaskView

log = logging.getLogger(__name__)

#: Task folders searched for an entry beyond those named like the task.
MAX_FOLDERS: Final = 200

_UNSAFE_RE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class MissReason:
    """Why ``task`` ran: ``reasons`` (as ``cache explain`` says them), comparing ``entry``
    (the entry the call wrote; None for a failed call) with ``nearest`` (None: there was no
    earlier entry)."""

    task: str
    reasons: tuple[str, ...]
    entry: CacheEntry | None = None
    nearest: CacheEntry | None = None


class Memo:
    """Folder listings and entries read once for many calls (the report explains hundreds)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._folders: list[str] | None = None
        self._entries: dict[str, list[CacheEntry]] = {}

    def folders(self) -> list[str]:
        if self._folders is None:
            self._folders = self.store.list_dir(cache.CACHE_FOLDER)
        return self._folders

    def entries(self, identity: str) -> list[CacheEntry]:
        if identity not in self._entries:
            self._entries[identity] = cache.entries(self.store, identity)
        return self._entries[identity]


def miss_reason(
    store: Store, task: TaskView, *, cached_task: bool | None = None, memo: Memo | None = None
) -> MissReason | None:
    """Why ``task`` (a call of a past run) missed the cache, or None when it did not miss:
    it was served from the cache or reused, has no key, or its task is not cached
    (``cached_task``: what the run's graph says; None: found out from the cache).
    ``memo`` shares what was read between calls of one run."""
    if task.cached or task.reused_from or task.key is None or cached_task is False:
        return None
    if task.status not in ("succeeded", "failed"):
        return None
    memo = memo if memo is not None and memo.store is store else Memo(store)
    try:
        if task.status == "succeeded":
            return _explain_entry(memo, task)
        if cached_task:
            return _explain_failed(memo, task)
    except (FlowkitError, OSError, ValueError) as exc:  # a store that cannot be read
        log.warning("cannot tell why %s missed the cache: %s", task.node, exc)
    return None


def _explain_entry(memo: Memo, task: TaskView) -> MissReason | None:
    key = task.key
    assert key is not None
    entry = find_entry(memo, task.name, key, task.identity)
    if entry is None:
        return None  # not a cached task's call (only kept), or its entry is gone
    started = task.started if task.started is not None else entry.created
    earlier = [e for e in memo.entries(entry.identity) if _before(e, task, started)]
    if not earlier:
        return MissReason(
            task.name, (f"no earlier entry of task `{task.name}` in the store",), entry
        )
    scored = [
        (cache.diff(e, entry.components, entry.interface, entry.inputs, entry.version), e)
        for e in earlier
    ]
    reasons, nearest = min(scored, key=lambda pair: len(pair[0]))  # newest first wins ties
    if not reasons:  # same components, another key: nothing the explanation can name
        reasons = ["the matching entry's outputs are missing or damaged"]
    return MissReason(task.name, tuple(reasons), entry, nearest)


def _explain_failed(memo: Memo, task: TaskView) -> MissReason | None:
    """A failed call wrote no entry: compare the inputs it recorded with the task's entries."""
    known = dict(task.inputs)
    started = task.started if task.started is not None else float("inf")
    earlier: list[CacheEntry] = []
    identities = [task.identity] if task.identity else _identities(memo, task.name)
    for identity in identities:
        earlier += [e for e in memo.entries(identity) if _before(e, task, started)]
    note = "the call failed, so no entry holds its code: only its recorded inputs are compared"
    if not earlier:
        return MissReason(task.name, (f"no earlier entry of task `{task.name}` in the store", note))
    scored = []
    for e in sorted(earlier, key=lambda e: e.created, reverse=True):
        shared = {k: v for k, v in e.inputs.items() if k in known}
        changes = [f"input `{k}` changed" for k, v in sorted(shared.items()) if known[k] != v]
        scored.append((changes, e))
    reasons, nearest = min(scored, key=lambda pair: len(pair[0]))
    return MissReason(task.name, (*reasons, note), None, nearest)


def _before(entry: CacheEntry, task: TaskView, started: float) -> bool:
    """An entry written before the call started by another run (a map's other items, written
    by the same run a moment earlier, are not what the call could have hit)."""
    return entry.created < started and entry.run_id != task.run_id and entry.key != task.key


def find_entry(memo: Memo, name: str, key: str, identity: str | None = None) -> CacheEntry | None:
    """The cache entry of ``key`` of a task named ``name``: in the folder of ``identity``
    when the record names it, else wherever its folder is."""
    store = memo.store
    if identity is not None:
        return cache.lookup(store, key, identity)
    for folder in _folders(memo, name):
        rel = f"{cache.CACHE_FOLDER}/{folder}/{key}.json"
        try:
            doc = store.read_doc(rel)
        except FlowkitError:  # absent here (ObjectMissing), or damaged
            continue
        try:
            entry = CacheEntry.from_dict(doc, store)
        except ValueError:
            continue
        if entry.key == key and cache.task_dir(entry.identity) == folder:
            return entry
    return None


def _folders(memo: Memo, name: str) -> Iterator[str]:
    """Task folders, the ones named like task ``name`` first, then up to
    :data:`MAX_FOLDERS` others (a task registered under another name)."""
    folders = memo.folders()
    likely = [f for f in folders if _named_like(f, name)]
    yield from likely
    yield from [f for f in folders if f not in likely][:MAX_FOLDERS]


def _identities(memo: Memo, name: str) -> list[str]:
    """Identities of the task folders named like task ``name`` (from one entry each)."""
    store, found = memo.store, []
    for folder in memo.folders():
        if not _named_like(folder, name):
            continue
        for file in store.list_dir(f"{cache.CACHE_FOLDER}/{folder}")[:5]:
            try:
                entry = CacheEntry.from_dict(
                    store.read_doc(f"{cache.CACHE_FOLDER}/{folder}/{file}")
                )
            except (FlowkitError, ValueError):
                continue
            if cache.task_dir(entry.identity) == folder:
                found.append(entry.identity)
                break
    return found


def _named_like(folder: str, name: str) -> bool:
    """``mod.train-0123456789`` for ``train``: the identity's readable prefix ends with it."""
    prefix = folder.rsplit("-", 1)[0]
    safe = _UNSAFE_RE.sub("_", name)
    return prefix == safe or prefix.endswith(f".{safe}") or len(prefix) >= 60


__all__ = ["Memo", "MissReason", "find_entry", "miss_reason"]

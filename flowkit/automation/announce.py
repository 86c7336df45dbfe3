"""The ``submitted`` header: what the store says of a run chosen but not started yet.

A scheduler fire, a trigger or ``flowkit submit`` picks the run's id, then starts a process
(or a Ray Job) that runs ``flowkit run --run-id ID``. Until that process writes its own
header, the run would be invisible; and a process that dies first (the workflow file no
longer imports, a bad input) would leave no trace at all. So the starter writes a header
with status ``submitted`` first, which ``fk.run(run_id=ID)`` adopts (keeping its tags).

For a local process the header then names its host and pid, so a reader shows it as
``lost`` once that process is gone without having started the run
(:func:`flowkit.lifecycle.seen_status`), and ``log`` says where its output went.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from flowkit.automation.launch import Launch
from flowkit.errors import StoreError
from flowkit.lifecycle import this_host
from flowkit.runstore import run_dir
from flowkit.store import Store

log = logging.getLogger(__name__)


def split_target(target: str) -> tuple[str, str | None]:
    """``FILE.py:WF`` as (file, workflow); (target, None) when it names no workflow."""
    head, sep, tail = target.rpartition(":")
    if sep and head and tail.isidentifier():
        return head, tail
    return target, None


def file_stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def workflow_of(target: str) -> str:
    """The workflow name a header shows until the run starts: ``:WF``, else the file's stem."""
    path, wf = split_target(target)
    return wf or file_stem(path)


def announcement(
    launch: Launch, workflow: str, backend: str, tags: Mapping[str, str]
) -> dict[str, Any]:
    """The ``submitted`` header of ``launch``: what ``flowkit runs`` shows until it starts."""
    now = time.time()
    return {
        "id": launch.run_id,
        "workflow": workflow,
        "status": "submitted",
        "started": now,
        "submitted": now,
        "ended": None,
        "duration": None,
        "inputs": dict(launch.params),
        "error": None,
        "backend": backend,
        "summary": {"run": 0, "cached": 0, "failed": 0},
        "host": this_host(),
        "pid": 0,
        "heartbeat": None,
        "keep": True,
        "tags": dict(tags),
    }


def announce_local(store: Store, launch: Launch, log_path: str) -> bool:
    """Write the ``submitted`` header of a run about to start here (only if the store has no
    header of that id); True if written. A store fault is logged: the run still starts."""
    header = announcement(
        launch, workflow_of(launch.target), launch.backend or "local", launch.tags
    )
    header["log"] = log_path
    try:
        return store.create_doc(f"{run_dir(launch.run_id)}/run.json", header)
    except StoreError as exc:
        log.warning("run %s: could not announce it in %s: %s", launch.run_id, store.url, exc)
        return False


def started(store: Store, run_id: str, pid: int) -> None:
    """Name the process that will run ``run_id``, if its header still says ``submitted``
    (a process quick enough to have adopted it already wrote its own)."""
    rel = f"{run_dir(run_id)}/run.json"
    try:
        header, version = store.read_doc_versioned(rel)
        if isinstance(header, dict) and header.get("status") == "submitted":
            store.replace_doc(rel, {**header, "pid": pid}, version)
    except StoreError as exc:
        log.warning("run %s: could not record its process %d: %s", run_id, pid, exc)


def not_started(store: Store, run_id: str, error: str) -> None:
    """Mark an announced run failed: its process could not even be started."""
    rel = f"{run_dir(run_id)}/run.json"
    try:
        header, version = store.read_doc_versioned(rel)
        if isinstance(header, dict) and header.get("status") == "submitted":
            ended = {**header, "status": "failed", "ended": time.time(), "error": error}
            store.replace_doc(rel, ended, version)
    except StoreError as exc:
        log.warning("run %s: could not mark it failed: %s", run_id, exc)


__all__ = [
    "announce_local",
    "announcement",
    "file_stem",
    "not_started",
    "split_target",
    "started",
    "workflow_of",
]

"""Run records in a store: ``runs/<run id>/run.json`` and ``runs/<run id>/tasks-<n>.json``.

The functions work on anything with checked documents (:class:`Documents`, which
:class:`flowkit.store.Store` is); ``Store.write_run`` and friends call them. A run id names a
folder, so every id is validated before it becomes a path, including ids found by listing
``runs/`` (a planted ``runs/..`` or ``runs/a b`` is never used).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol

from flowkit.errors import StoreError
from flowkit.fsio import ObjectUnavailable

log = logging.getLogger(__name__)

RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_BATCH_RE = re.compile(r"tasks-[0-9]{6,}\.json")


class Documents(Protocol):
    """What run records need from a store."""

    url: str

    def read_doc(self, rel: str) -> Any: ...

    def write_doc(self, rel: str, obj: Any) -> None: ...

    def list_dir(self, rel: str) -> list[str]: ...


def is_run_id(text: str) -> bool:
    """True if ``text`` can name a run folder (letters, digits, ``._-``; not ``.``/``..``)."""
    return RUN_ID_RE.fullmatch(text) is not None


def run_dir(run_id: str) -> str:
    if not is_run_id(run_id):
        raise StoreError(
            f"invalid run id {run_id!r}: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return f"runs/{run_id}"


def write_run(docs: Documents, run_id: str, header: dict[str, Any]) -> None:
    docs.write_doc(f"{run_dir(run_id)}/run.json", header)


def write_task_records(
    docs: Documents, run_id: str, batch_no: int, records: list[dict[str, Any]]
) -> None:
    if type(batch_no) is not int or batch_no < 0:
        raise StoreError(f"invalid task record batch number {batch_no!r}")
    docs.write_doc(f"{run_dir(run_id)}/tasks-{batch_no:06d}.json", records)


def _header(docs: Documents, run_id: str, default: dict[str, Any]) -> dict[str, Any]:
    try:
        header = docs.read_doc(f"runs/{run_id}/run.json")
    except ObjectUnavailable as exc:
        log.warning("run %s: header unreadable (%s)", run_id, exc)
        return default
    if not isinstance(header, dict):
        log.warning("run %s: header is not a JSON object", run_id)
        return default
    return header


def list_runs(docs: Documents, limit: int | None = None) -> list[dict[str, Any]]:
    ids = sorted((i for i in docs.list_dir("runs") if is_run_id(i)), reverse=True)
    return [
        {**_header(docs, run_id, {"status": "unknown"}), "id": run_id} for run_id in ids[:limit]
    ]


def read_run(docs: Documents, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    run_id = find_run(docs, run_id)
    d = run_dir(run_id)
    header = _header(docs, run_id, {"id": run_id, "status": "unknown"})
    tasks: list[dict[str, Any]] = []
    for name in docs.list_dir(d):
        if _BATCH_RE.fullmatch(name) is None:
            continue
        try:
            batch = docs.read_doc(f"{d}/{name}")
        except ObjectUnavailable as exc:
            log.warning("run %s: task records %s unreadable (%s)", run_id, name, exc)
            continue
        if isinstance(batch, list):
            tasks.extend(r for r in batch if isinstance(r, dict))
    return header, tasks


def find_run(docs: Documents, run_id: str) -> str:
    """The run id that ``run_id`` names exactly or as a unique prefix."""
    ids = [i for i in docs.list_dir("runs") if is_run_id(i)]
    if run_id in ids:
        return run_id
    matches = [i for i in ids if i.startswith(run_id)] if run_id else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise StoreError(
            f"run id {run_id!r} is ambiguous in {docs.url}: {', '.join(sorted(matches)[:5])}"
        )
    raise StoreError(f"no run {run_id!r} in store {docs.url}; `flowkit runs list` shows the runs")


__all__ = [
    "RUN_ID_RE",
    "Documents",
    "find_run",
    "is_run_id",
    "list_runs",
    "read_run",
    "run_dir",
    "write_run",
    "write_task_records",
]

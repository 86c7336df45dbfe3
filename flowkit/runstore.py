"""Run records in a store: ``runs/<run id>/run.json`` and ``runs/<run id>/tasks-<n>.json.gz``.

A run header is a small JSON document, rewritten as the run goes (heartbeat, status). Task
records are written in batches, each one gzip-compressed document (the store compresses a
document whose path ends in ``.gz``): a 100k-item map's records are 1000-record batches of
a few hundred bytes per record before compression.

:class:`RunStore` owns them. It works on anything with checked documents (:class:`Documents`,
which :class:`flowkit.store.Store` is): ``store.runs`` is one, and ``Store.write_run`` and
friends delegate to it. A run id names a folder, so every id is validated before it becomes a
path, including ids found by listing ``runs/`` (a planted ``runs/..`` or ``runs/a b`` is never
used).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol

from flowkit.errors import StoreError
from flowkit.fsio import ObjectUnavailable
from flowkit.lifecycle import seen_status

log = logging.getLogger(__name__)

RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_BATCH_RE = re.compile(r"tasks-([0-9]{6,})\.json\.gz")

Header = dict[str, Any]
TaskRecord = dict[str, Any]


class Documents(Protocol):
    """What run records need from a store."""

    url: str

    def read_doc(self, rel: str) -> Any: ...

    def write_doc(self, rel: str, obj: Any, *, plain: bool = False) -> None: ...

    def list_dir(self, rel: str) -> list[str]: ...


def is_run_id(text: str) -> bool:
    """True if ``text`` can name a run folder (letters, digits, ``._-``; not ``.``/``..``)."""
    return RUN_ID_RE.fullmatch(text) is not None


def run_dir(run_id: str) -> str:
    """``runs/<run id>``; StoreError if ``run_id`` cannot name a folder."""
    if not is_run_id(run_id):
        raise StoreError(
            f"invalid run id {run_id!r}: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return f"runs/{run_id}"


class RunStore:
    """The run records of one store: a header per run and its task records in batches."""

    __slots__ = ("docs",)

    def __init__(self, docs: Documents) -> None:
        self.docs = docs

    def write_run(self, run_id: str, header: Header) -> None:
        """Write (or overwrite) the header of a run."""
        self.docs.write_doc(f"{run_dir(run_id)}/run.json", header)

    def write_task_records(self, run_id: str, batch_no: int, records: list[TaskRecord]) -> None:
        """Write one batch of task records; batches are read back in ``batch_no`` order."""
        if type(batch_no) is not int or batch_no < 0:
            raise StoreError(f"invalid task record batch number {batch_no!r}")
        # records hold string keys and finite floats only (times, CPU seconds): plain JSON
        self.docs.write_doc(f"{run_dir(run_id)}/tasks-{batch_no:06d}.json.gz", records, plain=True)

    def list_runs(self, limit: int | None = None) -> list[Header]:
        """Run headers, newest first (a run whose header is unreadable is listed by id only)."""
        ids = sorted(self._ids(), reverse=True)
        return [
            self._seen(self._header(run_id, {"status": "unknown"}), run_id)
            for run_id in ids[:limit]
        ]

    def read_run(self, run_id: str) -> tuple[Header, list[TaskRecord]]:
        """(header, task records) of a run; a unique id prefix is accepted."""
        run_id = self.find_run(run_id)
        d = run_dir(run_id)
        header = self._header(run_id, {"id": run_id, "status": "unknown"})
        header = {**header, "status": seen_status(header)}
        tasks: list[TaskRecord] = []
        for name in _batches(self.docs.list_dir(d)):
            try:
                batch = self.docs.read_doc(f"{d}/{name}")
            except ObjectUnavailable as exc:
                log.warning("run %s: task records %s unreadable (%s)", run_id, name, exc)
                continue
            if isinstance(batch, list):
                tasks.extend(r for r in batch if isinstance(r, dict))
        return header, tasks

    def find_run(self, run_id: str) -> str:
        """The run id that ``run_id`` names exactly or as a unique prefix."""
        ids = self._ids()
        if run_id in ids:
            return run_id
        matches = [i for i in ids if i.startswith(run_id)] if run_id else []
        if len(matches) == 1:
            return matches[0]
        url = self.docs.url
        if matches:
            raise StoreError(
                f"run id {run_id!r} is ambiguous in {url}: {', '.join(sorted(matches)[:5])}"
            )
        raise StoreError(f"no run {run_id!r} in store {url}; `flowkit runs list` shows the runs")

    @staticmethod
    def _seen(header: Header, run_id: str) -> Header:
        """The header as a reader should see it: its id, and ``lost`` for a run whose process
        is gone (:func:`flowkit.lifecycle.seen_status`)."""
        return {**header, "id": run_id, "status": seen_status(header)}

    def _ids(self) -> list[str]:
        return [i for i in self.docs.list_dir("runs") if is_run_id(i)]

    def _header(self, run_id: str, default: Header) -> Header:
        try:
            header = self.docs.read_doc(f"runs/{run_id}/run.json")
        except ObjectUnavailable as exc:
            log.warning("run %s: header unreadable (%s)", run_id, exc)
            return default
        if not isinstance(header, dict):
            log.warning("run %s: header is not a JSON object", run_id)
            return default
        return header


def _batches(names: list[str]) -> list[str]:
    """The task-record batch files among ``names``, in batch order."""
    found = [(int(m.group(1)), n) for n in names if (m := _BATCH_RE.fullmatch(n)) is not None]
    return [n for _, n in sorted(found)]


__all__ = ["RUN_ID_RE", "Documents", "RunStore", "is_run_id", "run_dir"]

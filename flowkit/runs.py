"""Past runs, read back from the store: ``fk.runs.get``, ``fk.runs.latest``, ``fk.runs.list``.

::

    run = fk.runs.get("20261202T1804", store="s3://bucket/fk")  # an id or a unique prefix
    run = fk.runs.latest("pipeline", status="succeeded")  # $FLOWKIT_STORE or ./.flowkit
    run.output, run.status, run.params, run.started, run.duration
    run["train[3]"].output, run["train[3]"].logs, run["train[3]"].traceback

They return :class:`~flowkit.runview.RunView` s: lazy, read-only views on the run's records
(see :mod:`flowkit.runview` and :mod:`flowkit.taskview`). Nothing here writes to the store:
a store given by URL is opened read-only, and a local store that does not exist is an error,
not a new folder. Ids the user gives are matched against the store's listing, never used as
paths; an unknown or ambiguous id raises :class:`UnknownRunError` naming the candidates.
"""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import Mapping
from typing import Any, Final

from flowkit.config import default_store_url
from flowkit.errors import FlowkitError, StoreError
from flowkit.lifecycle import seen_status
from flowkit.records import Run
from flowkit.runstore import is_run_id
from flowkit.runview import RunView, UnknownNodeError
from flowkit.store import ObjectUnavailable, Store
from flowkit.taskview import AttemptView, NoOutputError, OutputNotKeptError, TaskView

StoreLike = Store | str | os.PathLike[str] | None

#: The statuses ``list`` and ``latest`` filter by (``unknown``: the header is unreadable;
#: ``submitted``: sent to a Ray cluster as a job that has not started the run yet).
STATUSES: Final = (
    "running",
    "succeeded",
    "failed",
    "interrupted",
    "lost",
    "submitted",
    "unknown",
)
_SHOWN_CANDIDATES = 5


class UnknownRunError(FlowkitError, LookupError):
    """A run id (or prefix) that names no run of the store, or more than one. ``candidates``
    holds the runs it could have meant: the ones it prefixes, else the newest."""

    def __init__(self, message: str, candidates: builtins.list[RunView]) -> None:
        super().__init__(message)
        self.candidates = candidates


def open_store(store: StoreLike = None) -> Store:
    """The store to read runs from: a ``Store`` as it is; a URL or path opened read-only
    (None: ``$FLOWKIT_STORE``, else ``./.flowkit``). StoreError if there is none there."""
    if isinstance(store, Store):
        return store
    opened = Store(default_store_url() if store is None else store, read_only=True)
    if opened.local and not os.path.isdir(opened.root):
        raise StoreError(
            f"there is no store at {opened.url}: pass store= (a path or URL), or set "
            "FLOWKIT_STORE to the store your runs used"
        )
    opened.check()
    return opened


def get(run_id: str | Run, *, store: StoreLike = None) -> RunView:
    """The run named by ``run_id`` (a full id, a unique prefix of one, or an ``fk.run``
    result). UnknownRunError, naming the candidates, if it names none or several."""
    the_store = open_store(store)
    wanted = run_id.id if isinstance(run_id, Run) else run_id
    if not isinstance(wanted, str):
        raise FlowkitError(f"fk.runs.get expects a run id (a str), got {wanted!r}")
    known_ids = ids(the_store)
    if wanted in known_ids:
        return view(the_store, wanted)
    matches = [i for i in known_ids if wanted and i.startswith(wanted)]
    if len(matches) == 1:
        return view(the_store, matches[0])
    if matches:
        shown = [view(the_store, i) for i in matches[:_SHOWN_CANDIDATES]]
        raise UnknownRunError(
            f"run id {wanted!r} is ambiguous in store {the_store.url}: it begins "
            f"{len(matches)} run ids ({_describe(shown, len(matches))}); give more of the id",
            shown,
        )
    newest = [view(the_store, i) for i in known_ids[:_SHOWN_CANDIDATES]]
    known = f"the newest: {_describe(newest, len(known_ids))}" if newest else "it holds no runs"
    raise UnknownRunError(
        f"no run {wanted!r} in store {the_store.url}; {known} (`flowkit runs list` shows them)",
        newest,
    )


def list(  # fk.runs.list, as the API reads (builtins.list below)
    *,
    store: StoreLike = None,
    workflow: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    tags: Mapping[str, str] | None = None,
) -> builtins.list[RunView]:
    """Runs of the store, newest first: only those of ``workflow``, with ``status``
    (``lost``: running when its process died) and carrying every one of ``tags`` when given,
    at most ``limit``. Reads one header per run looked at, and no task record."""
    _check_filters(status, limit)
    the_store = open_store(store)
    found: builtins.list[RunView] = []
    for run_id in ids(the_store):
        if limit is not None and len(found) >= limit:
            break
        seen = view(the_store, run_id)
        if (
            (workflow is None or seen.workflow == workflow)
            and (status is None or seen.status == status)
            and (not tags or all(seen.tags.get(k) == v for k, v in tags.items()))
        ):
            found.append(seen)
    return found


def latest(
    workflow: str | None = None, *, store: StoreLike = None, status: str | None = None
) -> RunView:
    """The newest run (of ``workflow``, with ``status``, when given); UnknownRunError if
    there is none."""
    the_store = open_store(store)
    found = list(store=the_store, workflow=workflow, status=status, limit=1)
    if found:
        return found[0]
    of = "" if workflow is None else f" of workflow `{workflow}`"
    having = "" if status is None else f" with status {status}"
    newest = list(store=the_store, limit=_SHOWN_CANDIDATES)
    known = f"the newest: {_describe(newest, len(ids(the_store)))}" if newest else "no runs"
    raise UnknownRunError(f"no run{of}{having} in store {the_store.url}; it holds {known}", newest)


def _check_filters(status: Any, limit: Any) -> None:
    if status is not None and status not in STATUSES:
        raise FlowkitError(f"status={status!r}: use one of {', '.join(STATUSES)}")
    if limit is not None and (type(limit) is not int or limit < 1):
        raise FlowkitError(f"limit={limit!r}: use a positive int, or None for every run")


def ids(store: Store) -> builtins.list[str]:
    """The run ids in ``store``, newest first (names that cannot be run ids are never used);
    no header is read."""
    return sorted((i for i in store.list_dir("runs") if is_run_id(i)), reverse=True)


def view(store: Store, run_id: str) -> RunView:
    """The view of the run whose exact id is ``run_id``, its header read now (a damaged one
    noted in ``damage``, not raised); :func:`get` also takes prefixes, at the cost of a
    listing."""
    try:
        header = store.read_doc(f"runs/{run_id}/run.json")
    except ObjectUnavailable as exc:
        return RunView(
            store, run_id, {}, f"its header runs/{run_id}/run.json is unreadable ({exc})"
        )
    if not isinstance(header, dict):
        return RunView(store, run_id, {}, f"its header runs/{run_id}/run.json is not a JSON object")
    return RunView(store, run_id, {**header, "status": seen_status(header)})


def _describe(views: builtins.list[RunView], total: int) -> str:
    """``<id> (<workflow>, started <time>), ...`` and how many more."""
    parts = [f"{v.id} ({v.workflow}, {v.status}, started {_when(v.started)})" for v in views]
    more = total - len(views)
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def _when(stamp: float | None) -> str:
    return "?" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


__all__ = [
    "STATUSES",
    "AttemptView",
    "NoOutputError",
    "OutputNotKeptError",
    "RunView",
    "TaskView",
    "UnknownNodeError",
    "UnknownRunError",
    "get",
    "ids",
    "latest",
    "list",
    "open_store",
    "view",
]

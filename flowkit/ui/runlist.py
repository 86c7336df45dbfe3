"""The runs page (``/``): the store's runs, newest first, filtered and 50 to a page.

Reads run headers only, never task records, and only as many as the page needs: the run ids
come from one listing of ``runs/``; the id prefix (``q``) and the date (``since``: an id
starts with its UTC start time) are matched on the ids; a header is read only for an id that
passes them, and only until the page (and one more run, to know there is a next page) is
full. Headers of runs that ended never change, so :class:`HeaderCache` keeps the few fields
the page shows, bounded; a running run's header is read afresh each time (it may have become
``lost`` or ended).
"""

from __future__ import annotations

import collections
import datetime
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from flowkit import runs
from flowkit.runview import RunView
from flowkit.store import Store

PAGE_SIZE: Final = 50
#: Statuses the filter offers (``unknown``: the header cannot be read).
STATUSES: Final = runs.STATUSES
_FINAL: Final = frozenset({"succeeded", "failed", "interrupted"})
_SHOWN: Final = ("workflow", "status", "started", "ended", "error", "summary", "pid", "host")
_ID_TIME_RE = re.compile(r"([0-9]{8}T[0-9]{6})[.-]")
_SLACK_SECONDS: Final = 120  # an id's time is its run's start to within this


@dataclass(frozen=True, slots=True)
class Filters:
    """What the runs page shows: runs of ``workflow`` with ``status``, started on or after
    ``since`` (a local date), whose id begins with ``q``."""

    workflow: str = ""
    status: str = ""
    since: datetime.date | None = None
    q: str = ""

    @property
    def reads_headers(self) -> bool:
        """True when matching needs each run's header (workflow, status or date)."""
        return bool(self.workflow or self.status or self.since)

    def query(self, page: int | None = None) -> str:
        """The query string of these filters (and ``page``), for links."""
        pairs = [
            ("workflow", self.workflow),
            ("status", self.status),
            ("since", self.since.isoformat() if self.since else ""),
            ("q", self.q),
        ]
        if page is not None and page > 1:
            pairs.append(("page", str(page)))
        return urlencode([(k, v) for k, v in pairs if v])

    def link(self, page: int) -> str:
        """The runs page's URL for these filters and ``page``."""
        query = self.query(page)
        return f"/?{query}" if query else "/"


def parse_filters(params: Mapping[str, str]) -> tuple[Filters, int, list[str]]:
    """The filters and page number in a query, and what was wrong in it (shown, not raised:
    a bad value is left out of the filters)."""
    problems: list[str] = []
    status = params.get("status", "").strip()
    if status and status not in STATUSES:
        problems.append(f"status {status!r} is not one of {', '.join(STATUSES)}")
        status = ""
    since: datetime.date | None = None
    since_text = params.get("since", "").strip()
    if since_text:
        try:
            since = datetime.date.fromisoformat(since_text)
        except ValueError:
            problems.append(f"since {since_text!r} is not a date (YYYY-MM-DD)")
    page_text = params.get("page", "1").strip() or "1"
    page = int(page_text) if page_text.isdigit() and len(page_text) < 7 else 0
    if page < 1:
        problems.append(f"page {page_text!r} is not a page number")
        page = 1
    workflow = params.get("workflow", "").strip()[:200]
    q = params.get("q", "").strip()[:200]
    return Filters(workflow, status, since, q), page, problems


class HeaderCache:
    """The shown fields of the headers of runs that ended, at most ``size`` of them (the
    least recently used go first). Thread-safe: the app's handlers run in a thread pool."""

    def __init__(self, size: int = 20_000) -> None:
        self._size = size
        self._found: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def view(self, store: Store, run_id: str) -> RunView:
        """The view of run ``run_id`` (from the cache, or its header read now)."""
        key = f"{store.url}\0{run_id}"
        with self._lock:
            shown = self._found.get(key)
            if shown is not None:
                self._found.move_to_end(key)
                return RunView(store, run_id, shown)
        view = runs.view(store, run_id)
        if view.damage is None and view.status in _FINAL:
            shown = {k: v for k, v in view.header.items() if k in _SHOWN}
            with self._lock:
                self._found[key] = shown
                while len(self._found) > self._size:
                    self._found.popitem(last=False)
        return view


@dataclass(frozen=True, slots=True)
class RunsPage:
    """One page of runs: the views, where it starts, and whether there are more."""

    runs: list[RunView]
    page: int
    first: int  # 1-based position of the first run shown
    has_next: bool
    total: int | None  # how many match, when known without reading every header


def runs_page(store: Store, filters: Filters, page: int, cache: HeaderCache) -> RunsPage:
    """The runs of ``page`` (1-based) under ``filters``."""
    ids = [i for i in runs.ids(store) if i.startswith(filters.q)]
    skip = (page - 1) * PAGE_SIZE
    if not filters.reads_headers:
        shown = [cache.view(store, i) for i in ids[skip : skip + PAGE_SIZE]]
        return RunsPage(shown, page, skip + 1, len(ids) > skip + PAGE_SIZE, len(ids))
    found: list[RunView] = []
    matches = _matches(store, ids, filters, cache)
    for view in matches:
        found.append(view)
        if len(found) > skip + PAGE_SIZE:
            return RunsPage(found[skip : skip + PAGE_SIZE], page, skip + 1, True, None)
    return RunsPage(found[skip:], page, skip + 1, False, len(found))


def _matches(
    store: Store, ids: list[str], filters: Filters, cache: HeaderCache
) -> Iterator[RunView]:
    since = _local_midnight(filters.since) if filters.since else None
    for run_id in ids:
        if since is not None:
            id_time = _id_time(run_id)
            if id_time is not None and id_time < since - _SLACK_SECONDS:
                continue  # its id says it started well before the date: no header to read
        view = cache.view(store, run_id)
        if filters.workflow and view.workflow != filters.workflow:
            continue
        if filters.status and view.status != filters.status:
            continue
        if since is not None and (view.started is None or view.started < since):
            continue
        yield view


def _local_midnight(day: datetime.date) -> float:
    return time.mktime((day.year, day.month, day.day, 0, 0, 0, 0, 0, -1))


def _id_time(run_id: str) -> float | None:
    """The UTC time a run id starts with (``20261202T180455.123-ab12cd``), or None."""
    found = _ID_TIME_RE.match(run_id)
    if found is None:
        return None
    try:
        stamp = datetime.datetime.strptime(found.group(1), "%Y%m%dT%H%M%S")
        return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        return None


def workflows(store: Store, cache: HeaderCache, limit: int = 500) -> list[str]:
    """Workflow names among the newest ``limit`` runs, for the filter's suggestions."""
    names = {cache.view(store, i).workflow for i in runs.ids(store)[:limit]}
    return sorted(n for n in names if n != "?")


__all__ = [
    "PAGE_SIZE",
    "STATUSES",
    "Filters",
    "HeaderCache",
    "RunsPage",
    "parse_filters",
    "runs_page",
    "workflows",
]

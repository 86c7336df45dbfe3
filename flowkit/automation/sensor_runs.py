"""The ``--on-success`` / ``--on-failure`` sensor: runs of a workflow that ended.

Its cursor is the set of run ids already handled: every run of the store whose header was
read and that is either of another workflow or has ended. A run still ``running`` is not
handled yet and is read again at the next look. So one look costs one listing of ``runs/``
plus a header per run not seen before; ids of runs removed from the store leave the cursor.

What counts as a failure: ``failed`` (a task failed) and ``lost`` (the process running it
died or its machine went away: see :mod:`flowkit.lifecycle`). ``interrupted`` (stopped by
SIGINT/SIGTERM, i.e. on purpose) fires neither trigger. A run not ended yet (``running``,
``submitted``) or whose header cannot be read is looked at again next time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from flowkit import runs
from flowkit.automation.sensing import CursorError, Found, Look
from flowkit.events import Event
from flowkit.store import Store

FIRES_ON: Final[Mapping[str, frozenset[str]]] = {
    "success": frozenset({"succeeded"}),
    "failure": frozenset({"failed", "lost"}),
}
#: Statuses a run keeps; any other (running, submitted, unknown...) may still change.
_ENDED = frozenset({"succeeded", "failed", "interrupted", "lost"})


class RunsSensor:
    """Runs of ``workflow`` in ``store`` that ended with a status ``on`` fires for."""

    def __init__(
        self, store: Store, trigger: str, workflow: str, on: Literal["success", "failure"]
    ) -> None:
        self.store = store
        self.trigger = trigger
        self.workflow = workflow
        self.on: Literal["success", "failure"] = on

    def look(self, cursor: Mapping[str, Any] | None, now: float) -> Look:
        known = _known(cursor)
        listed = runs.ids(self.store)  # newest first
        handled = known.intersection(listed)
        found: list[tuple[float, str, Found]] = []
        for run_id in listed:
            if run_id in known:
                continue
            seen = runs.view(self.store, run_id)
            if seen.damage is not None:
                continue  # half-written or damaged: look again next time
            if seen.workflow != self.workflow:
                handled.add(run_id)
                continue
            if seen.status not in _ENDED:
                continue
            handled.add(run_id)
            if cursor is not None and seen.status in FIRES_ON[self.on]:
                event = Event(
                    kind=self.on, trigger=self.trigger, time=now, workflow=seen.workflow,
                    run_id=run_id,
                )  # fmt: skip
                found.append((seen.ended or 0.0, run_id, Found(run_id, event)))
        found.sort(key=lambda f: f[:2])  # in the order the runs ended
        return Look([f for _, _, f in found], {"known": sorted(handled)})


def _known(cursor: Mapping[str, Any] | None) -> set[str]:
    if cursor is None:
        return set()
    known = cursor.get("known")
    if not isinstance(known, list) or not all(isinstance(i, str) for i in known):
        raise CursorError("'known' must be a list of run ids")
    return set(known)


__all__ = ["FIRES_ON", "RunsSensor"]

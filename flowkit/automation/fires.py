"""One fire of a schedule: claimed, then started (or skipped) -- and backfills of a window.

A fire is decided by claiming ``schedules/<name>/fires/<UTC stamp>.json``
(:func:`flowkit.automation.claims.claim`): whoever creates that document starts the run
(or records the skip), and anyone else learns the fire is taken. The run id is chosen
before the claim and written in it, so the claim names the run before it exists.

If the starter fails (the interpreter cannot be started, the Ray job server refuses), the
claim is rewritten to say so; the fire is not tried again (it is not known whether
anything started).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Literal

from flowkit.automation.claims import claim
from flowkit.automation.crontimes import Cron
from flowkit.automation.launch import Launch
from flowkit.automation.schedule_defs import ScheduleDef, fire_path, iso
from flowkit.records import new_run_id
from flowkit.store import Store

log = logging.getLogger("flowkit.automation")

Starter = Callable[[Launch], object]
Outcome = Literal["started", "skipped", "taken", "failed"]
#: How many fires a backfill may start at once (a wider window is refused).
BACKFILL_MAX = 500


@dataclasses.dataclass(frozen=True)
class Fire:
    """What became of one fire time: ``started`` (as ``run_id``), ``skipped`` (``reason``),
    ``taken`` (another scheduler claimed it first) or ``failed`` (to start: ``reason``)."""

    schedule: str
    time: str  # the logical time, ISO in the schedule's zone
    outcome: Outcome
    run_id: str | None = None
    reason: str = ""

    def line(self) -> str:
        """One line for a terminal: ``nightly 2026-03-29T03:30:00+02:00 started run ...``."""
        head = f"{self.schedule} {self.time} {self.outcome}"
        if self.outcome == "started":
            return f"{head} run {self.run_id}"
        return f"{head}: {self.reason}" if self.reason else head


def fire_time(sd: ScheduleDef, when: dt.datetime) -> str:
    """The logical time of the fire at instant ``when``, as ISO in the schedule's zone."""
    return Cron(sd.cron, sd.tz).local(when).isoformat()


def launch_for(sd: ScheduleDef, when: dt.datetime, store_url: str, run_id: str) -> Launch:
    """The run that the fire of ``sd`` at ``when`` starts: tagged with the schedule and its
    logical time, which the workflow's ``fk.FireTime`` input receives too."""
    logical = fire_time(sd, when)
    params = dict(sd.params)
    if sd.fire_param is not None:
        params[sd.fire_param] = logical
    return Launch(
        target=sd.target,
        run_id=run_id,
        store=store_url,
        params=params,
        tags={"schedule": sd.name, "fire_time": logical},
        backend=sd.backend,
        address=sd.address,
        notify=sd.notify,
    )


def fire(
    store: Store,
    sd: ScheduleDef,
    when: dt.datetime,
    starter: Starter,
    *,
    run_id: str | None = None,
    skip: str | None = None,
    by: str = "",
) -> Fire:
    """Claim the fire of ``sd`` at ``when``; if this call won it, start its run (as
    ``run_id``, default a new id) with ``starter`` -- or, with ``skip`` (the reason),
    record it as skipped."""
    logical = fire_time(sd, when)
    run_id = None if skip else (run_id or new_run_id())
    body = {
        "schedule": sd.name,
        "fire_time": logical,
        "instant": iso(when),
        "status": "skipped" if skip else "started",
        "run_id": run_id,
        "reason": skip or "",
        "scheduler": by,
    }
    path = fire_path(sd.name, when)
    if not claim(store, path, body):
        return Fire(
            sd.name,
            logical,
            "taken",
            reason="claimed already (by another scheduler, or fired before)",
        )
    if skip or run_id is None:
        log.info("schedule %s: fire %s skipped (%s)", sd.name, logical, skip)
        return Fire(sd.name, logical, "skipped", reason=skip or "")
    try:
        starter(launch_for(sd, when, store.url, run_id))
    except Exception as exc:  # the fire is lost, not the tick: say so where it is recorded
        reason = f"could not start run {run_id}: {type(exc).__name__}: {exc}"
        log.error("schedule %s: fire %s %s", sd.name, logical, reason)
        try:
            doc = store.read_doc(path)
            doc["body"] = {**body, "status": "failed to start", "reason": reason}
            store.write_doc(path, doc)
        except Exception as write_exc:  # the log line above already says it
            log.error("schedule %s: cannot record the failure: %s", sd.name, write_exc)
        return Fire(sd.name, logical, "failed", run_id=run_id, reason=reason)
    log.info("schedule %s: fire %s started run %s", sd.name, logical, run_id)
    return Fire(sd.name, logical, "started", run_id=run_id)


def backfill(
    store: Store,
    sd: ScheduleDef,
    start: dt.datetime,
    end: dt.datetime,
    starter: Starter,
    *,
    by: str = "",
    limit: int = BACKFILL_MAX,
) -> list[Fire]:
    """Fire every time of ``sd`` in ``[start, end]`` that was not fired (or skipped)
    already, oldest first, all at once (``overlap`` does not apply: a backfill asks for
    these runs). ValueError if the window holds more than ``limit`` fire times."""
    times = Cron(sd.cron, sd.tz).between(start - dt.timedelta(microseconds=1), end, limit + 1)
    if len(times) > limit:
        raise ValueError(
            f"the window {start.isoformat()} .. {end.isoformat()} holds more than {limit} "
            f"fire times of schedule {sd.name} ({sd.cron}); backfill a narrower window"
        )
    return [fire(store, sd, t, starter, by=by) for t in times]


__all__ = [
    "BACKFILL_MAX",
    "Fire",
    "Outcome",
    "Starter",
    "backfill",
    "fire",
    "fire_time",
    "launch_for",
]

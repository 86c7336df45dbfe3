"""The scheduler loop: each tick, under the store's ``scheduler`` lease, fire every schedule's
due times, then the triggers.

A tick (:meth:`Scheduler.tick`):

1. takes or renews the lease ``leases/scheduler.json`` (:class:`~flowkit.automation.lease.Lease`,
   ``ttl`` a few intervals): a scheduler that does not hold it does nothing, so of several
   schedulers on one store one works and the others stand by, taking over once a dead
   holder's lease lapses;
2. for each schedule that is not paused, finds the fire times due since its ``last_fire``
   as ``catchup`` says (``none``: only a fire due now, i.e. within ``grace`` of the tick;
   ``latest``: the last one missed; ``all``: every one missed, at most
   :data:`MAX_CATCHUP` a tick, oldest first, with a warning), applies ``overlap`` (is the
   previous fire's run still running? its header says, through :func:`flowkit.runs.view`;
   ``lost`` counts as ended), records the decision in the schedule's document
   (``last_fire``, the queue, the last run with its id chosen now) by compare-and-swap --
   deciding again from the new document if another scheduler wrote first -- and fires
   them (:func:`flowkit.automation.fires.fire`: claim, then start). The claim, not the
   lease, is what makes each fire start once: two schedulers that both believe they hold
   the lease still start each fire once;
3. starts the runs the triggers want (:func:`flowkit.automation.triggers.due`, which claims
   them itself).

A run is started by a *starter* (:func:`flowkit.automation.launch.start` by default: a
detached ``flowkit run`` process or a Ray Job), so a long run never holds up a tick; tests
inject their own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

from flowkit import runs
from flowkit.automation import launch, schedules, triggers
from flowkit.automation.crontimes import UTC, Cron, to_utc
from flowkit.automation.fires import Fire, Starter, fire
from flowkit.automation.launch import Launch
from flowkit.automation.lease import Lease
from flowkit.automation.schedule_defs import LastRun, ScheduleDef, definition_path, iso, parse_time
from flowkit.errors import StoreError
from flowkit.lifecycle import LOST_AFTER_SECONDS
from flowkit.records import new_run_id
from flowkit.store import Store

log = logging.getLogger("flowkit.automation")

LEASE_NAME = "scheduler"
#: The most fires one schedule starts (or queues) in one tick when catching up.
MAX_CATCHUP = 100
#: A fire's run whose header has not appeared yet counts as running for this long after it
#: was started (an interpreter starting, a Ray job waiting for room).
START_GRACE = LOST_AFTER_SECONDS
_STILL_GOING = frozenset({"running", "submitted"})


@dataclasses.dataclass(frozen=True)
class Tick:
    """What one tick did: ``held`` (False: another scheduler holds the lease, nothing was
    done), the schedules' ``fires``, the ``triggered`` launches started, and the schedules
    or triggers that could not be evaluated (``problems``, also logged)."""

    held: bool
    fires: tuple[Fire, ...] = ()
    triggered: tuple[Launch, ...] = ()
    problems: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """One line per fire and trigger run (what ``flowkit scheduler`` prints)."""
        out = [f.line() for f in self.fires]
        out += [
            f"trigger {t.tags.get('trigger', '?')} started run {t.run_id}" for t in self.triggered
        ]
        return out


@dataclasses.dataclass(frozen=True)
class _Step:
    """One fire a tick decided: start it as ``run_id``, or record it skipped (``skip``)."""

    when: dt.datetime
    run_id: str | None
    skip: str | None = None


class _Planner:
    """The fires of one schedule that one tick decides, under its ``overlap``."""

    def __init__(self, sd: ScheduleDef, running: bool, clock: Callable[[], float]) -> None:
        self.sd = sd
        self.running = running  # the last fire's run goes on
        self.clock = clock
        self.steps: list[_Step] = []
        self.last_run = sd.last_run
        self.pending = sd.pending

    def start(self, when: dt.datetime) -> None:
        run_id = new_run_id()  # chosen now: the document names the run before it starts
        self.steps.append(_Step(when, run_id))
        self.last_run = LastRun(run_id, iso(when), self.clock())
        self.running = True

    def skip_or_start(self, when: dt.datetime) -> None:
        """``overlap="skip"``: skipped while the last fire's run goes on."""
        if not self.running:
            self.start(when)
            return
        previous = self.last_run.run_id if self.last_run is not None else "?"
        self.steps.append(_Step(when, None, f"the previous fire's run {previous} is still running"))

    def queue(self, due: list[dt.datetime]) -> None:
        """``overlap="queue"``: one at a time, in order; the rest wait in ``pending``."""
        queue = sorted({*(parse_time(p, "pending") for p in self.sd.pending), *due})
        if queue and not self.running:
            self.start(queue.pop(0))
        if len(queue) > MAX_CATCHUP:
            log.warning(
                "schedule %s: %d fires queued; the oldest %d are dropped",
                self.sd.name,
                len(queue),
                len(queue) - MAX_CATCHUP,
            )
        if queue:
            log.info(
                "schedule %s: %d fire(s) queued behind a running one", self.sd.name, len(queue)
            )
        self.pending = tuple(iso(t) for t in queue[-MAX_CATCHUP:])


class Scheduler:
    """Fires the schedules (and triggers) of one store. One object belongs to one thread.

    ``interval``: seconds between ticks of :meth:`serve`; the lease lasts ``ttl`` (default
    3 x ``interval``). ``grace``: how late a fire may be and still count as due now for
    ``catchup="none"`` (default 2 x ``interval``, at least 60 s). ``clock``: wall time
    (epoch seconds) for the lease, the tick's default time and the start grace.
    ``starter``: starts a :class:`Launch` (default :func:`launch.start` writing logs to
    ``log_dir``). ``triggers``: also evaluate the store's triggers.
    """

    def __init__(
        self,
        store: Store,
        *,
        interval: float = 30.0,
        ttl: float | None = None,
        grace: float | None = None,
        holder: str | None = None,
        clock: Callable[[], float] = time.time,
        starter: Starter | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        triggers: bool = True,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval={interval!r}: give a positive number of seconds")
        self.store = store
        self.interval = float(interval)
        self.grace = float(grace) if grace is not None else max(60.0, 2 * self.interval)
        self.clock = clock
        self.lease = Lease(store, LEASE_NAME, holder=holder, ttl=ttl or 3 * interval, clock=clock)
        self.starter: Starter = starter or functools.partial(launch.start, log_dir=log_dir)
        self.triggers = triggers

    @property
    def holder(self) -> str:
        return self.lease.holder

    # -- one tick ----------------------------------------------------------------------------

    def tick(self, now: dt.datetime | None = None) -> Tick:
        """One tick at ``now`` (an aware datetime; default: the clock's time)."""
        when = to_utc(now) if now is not None else dt.datetime.fromtimestamp(self.clock(), UTC)
        if not self.lease.acquire():
            return Tick(held=False)
        fires: list[Fire] = []
        problems: list[str] = []
        for name in schedules.names(self.store):
            try:
                fires += self._tick_schedule(name, when)
            except Exception as exc:  # one bad schedule must not stop the others
                problems.append(f"schedule {name}: {type(exc).__name__}: {exc}")
                log.warning("%s", problems[-1])
        triggered = self._triggers(when, problems) if self.triggers else []
        return Tick(True, tuple(fires), tuple(triggered), tuple(problems))

    def _tick_schedule(self, name: str, now: dt.datetime) -> list[Fire]:
        """Decide the schedule's fires and record the decision in its document by
        compare-and-swap (redone on a race, from what the winner wrote), then claim and
        start them. A scheduler deciding from a stale document (another one fired
        meanwhile) loses the swap and decides again, so catch-up never re-runs what the
        other passed over; the claims keep each fire once whatever happens."""
        for _ in range(schedules.CAS_TRIES):
            try:
                sd, version = schedules.read_versioned(self.store, name)
            except schedules.UnknownScheduleError:
                return []  # removed since the listing
            if sd.paused:
                return []
            steps, new = self._plan(sd, now)
            if new == sd:
                break
            if self.store.replace_doc(definition_path(name), new.to_dict(), version):
                break
        else:
            raise StoreError(f"schedule {name}: the document kept changing; try at the next tick")
        return [
            fire(
                self.store, new, s.when, self.starter, run_id=s.run_id, skip=s.skip, by=self.holder
            )
            for s in steps
        ]

    def _plan(self, sd: ScheduleDef, now: dt.datetime) -> tuple[list[_Step], ScheduleDef]:
        """(the fires to decide now, the document recording them) under ``sd``'s policies."""
        due, advance = self._due(sd, now)
        last_fire = sd.last_fire
        if advance is not None and (last_fire is None or advance > parse_time(last_fire, "")):
            last_fire = iso(advance)
        if not due and not sd.pending:
            return [], dataclasses.replace(sd, last_fire=last_fire)
        # read the previous run's header only when it matters
        plan = _Planner(sd, sd.overlap != "allow" and self._still_running(sd.last_run), self.clock)
        if sd.overlap == "allow":
            for when in due:
                plan.start(when)
        elif sd.overlap == "skip":
            for when in due:
                plan.skip_or_start(when)
        else:
            plan.queue(due)
        new = dataclasses.replace(
            sd, last_fire=last_fire, pending=plan.pending, last_run=plan.last_run
        )
        return plan.steps, new

    def _due(
        self, sd: ScheduleDef, now: dt.datetime
    ) -> tuple[list[dt.datetime], dt.datetime | None]:
        """(fire times to fire now, the new ``last_fire``) under ``sd.catchup``."""
        cron = Cron(sd.cron, sd.tz)
        anchor = sd.anchor()
        if sd.catchup == "all":
            due = cron.between(anchor, now, MAX_CATCHUP + 1)
            if len(due) > MAX_CATCHUP:
                log.warning(
                    "schedule %s: more than %d missed fires; firing the oldest %d now and the "
                    "rest at the next ticks",
                    sd.name,
                    MAX_CATCHUP,
                    MAX_CATCHUP,
                )
                due = due[:MAX_CATCHUP]
            return due, (due[-1] if due else None)
        last = cron.latest(now)
        if last is None or last <= anchor:
            return [], None
        if sd.catchup == "none" and (now - last).total_seconds() > self.grace:
            log.info(
                "schedule %s: missed fire(s) up to %s not run (catchup none)",
                sd.name,
                cron.local(last).isoformat(),
            )
            return [], last
        return [last], last

    def _still_running(self, last_run: LastRun | None) -> bool:
        """Whether the last fire's run goes on: its header says running (or submitted to
        Ray); a header not written yet counts as running for :data:`START_GRACE`."""
        if last_run is None:
            return False
        seen = runs.view(self.store, last_run.run_id)
        if seen.damage is not None:  # no header (yet)
            return self.clock() - last_run.started < START_GRACE
        return seen.status in _STILL_GOING

    def _triggers(self, now: dt.datetime, problems: list[str]) -> list[Launch]:
        """Start the runs the store's triggers want now (each claimed by the triggers)."""
        try:
            launches: Sequence[Launch] = triggers.due(self.store, now.timestamp())
        except Exception as exc:
            problems.append(f"triggers: {type(exc).__name__}: {exc}")
            log.warning("%s", problems[-1])
            return []
        started = []
        for one in launches:
            try:
                self.starter(one)
            except Exception as exc:
                problems.append(f"trigger run {one.run_id}: could not start: {exc}")
                log.error("%s", problems[-1])
            else:
                started.append(one)
        return started

    # -- the loop ------------------------------------------------------------------------------

    def serve(self, stop: threading.Event, on_tick: Callable[[Tick], None] | None = None) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set; then give the lease up (a
        stand-by scheduler takes over at once). A failing tick (the store unreachable) is
        logged and the loop goes on."""
        try:
            while not stop.is_set():
                try:
                    result = self.tick()
                except Exception:
                    log.exception("scheduler tick failed; trying again in %.0f s", self.interval)
                else:
                    if on_tick is not None:
                        on_tick(result)
                stop.wait(self.interval)
        finally:
            self.close()

    def close(self) -> None:
        """Give the lease up if held."""
        try:
            self.lease.release()
        except Exception as exc:  # it lapses by itself within ttl
            log.warning("could not release the scheduler lease: %s", exc)


__all__ = ["LEASE_NAME", "MAX_CATCHUP", "START_GRACE", "Scheduler", "Tick"]

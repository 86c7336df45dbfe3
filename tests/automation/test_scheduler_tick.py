"""The scheduler's tick (flowkit.automation.scheduler) on real stores, stepping its time.

Runs are started by injected starters (schedule_flows.py): a recorder for the timing logic,
and real ``fk.run`` calls on threads where a fire's run must be seen running or ended.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schedule_flows import InProcess, Recorder, gate

from flowkit import runs
from flowkit.automation import schedules
from flowkit.automation.claims import claimed
from flowkit.automation.crontimes import UTC, Cron
from flowkit.automation.launch import Launch
from flowkit.automation.lease import Lease
from flowkit.automation.schedule_defs import (
    CATCHUPS,
    Catchup,
    Overlap,
    ScheduleDef,
    fire_path,
    fires_folder,
)
from flowkit.automation.scheduler import MAX_CATCHUP, Scheduler
from flowkit.store import Store

PARIS = "Europe/Paris"
TARGET = "/nowhere/schedule_flows.py:gated"


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[arg-type,misc]


class Clock:
    """The schedulers' wall clock, set by the test."""

    def __init__(self, when: dt.datetime) -> None:
        self.t = when.timestamp()

    def __call__(self) -> float:
        return self.t

    def at(self, when: dt.datetime) -> dt.datetime:
        self.t = when.timestamp()
        return when


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store")
    s.check()
    return s


def add(
    store: Store,
    name: str = "every",
    cron: str = "0 * * * *",
    *,
    start: dt.datetime,
    tz: str = "UTC",
    catchup: Catchup = "latest",
    overlap: Overlap = "skip",
) -> ScheduleDef:
    sd = schedules.make(
        TARGET,
        cron=cron,
        name=name,
        tz=tz,
        catchup=catchup,
        overlap=overlap,
        start=start,
        now=start,
        fire_time_param="when",
    )
    return schedules.add(store, sd)


def scheduler(store: Store, clock: Clock, starter: object, **kw: object) -> Scheduler:
    return Scheduler(store, clock=clock, starter=starter, triggers=False, **kw)  # type: ignore[arg-type]


def step(start: dt.datetime, end: dt.datetime, every: dt.timedelta) -> Iterator[dt.datetime]:
    when = start
    while when <= end:
        yield when
        when += every


# -- time zones and DST ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "start", "end", "expected"),
    [
        (
            "30 2 * * *",
            utc(2026, 3, 27),
            utc(2026, 3, 31),
            [
                "2026-03-27T02:30:00+01:00",
                "2026-03-28T02:30:00+01:00",
                "2026-03-29T03:30:00+02:00",
                "2026-03-30T02:30:00+02:00",
            ],
        ),
        (
            "30 2 * * *",
            utc(2026, 10, 23),
            utc(2026, 10, 27),
            [
                "2026-10-23T02:30:00+02:00",
                "2026-10-24T02:30:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-26T02:30:00+01:00",
            ],
        ),
    ],
)
def test_stepping_across_a_dst_change_fires_each_due_time_once(
    store: Store, cron: str, start: dt.datetime, end: dt.datetime, expected: list[str]
) -> None:
    add(store, "paris", cron, start=start, tz=PARIS)
    clock = Clock(start)
    got = Recorder()
    sched = scheduler(store, clock, got)
    for now in step(start, end, dt.timedelta(minutes=45)):
        sched.tick(clock.at(now))
    assert got.fire_times() == expected
    assert [launch.params["when"] for launch in got.launches] == expected
    stamps = store.list_dir(fires_folder("paris"))
    assert len(stamps) == len(expected)


@pytest.mark.parametrize("start", [utc(2026, 3, 28, 12), utc(2026, 10, 24, 12)])
def test_hourly_in_paris_fires_once_per_real_hour_through_the_change(
    store: Store, start: dt.datetime
) -> None:
    add(store, "hourly", "0 * * * *", start=start, tz=PARIS)
    clock = Clock(start)
    got = Recorder()
    sched = scheduler(store, clock, got)
    end = start + dt.timedelta(hours=24)
    for now in step(start, end, dt.timedelta(minutes=20)):
        sched.tick(clock.at(now))
    expected = [t.astimezone(dt.timezone.utc) for t in Cron("0 * * * *", PARIS).between(start, end)]
    assert len(got.launches) == len(expected) == 24
    instants = [dt.datetime.fromisoformat(t) for t in got.fire_times()]
    assert instants == expected
    assert len(set(got.fire_times())) == 24  # 02:00+02:00 and 02:00+01:00 are two fires


# -- catch-up --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("catchup", "after_downtime"),
    [
        ("none", []),
        ("latest", ["2026-05-01T05:00:00+00:00"]),
        (
            "all",
            [
                "2026-05-01T02:00:00+00:00",
                "2026-05-01T03:00:00+00:00",
                "2026-05-01T04:00:00+00:00",
                "2026-05-01T05:00:00+00:00",
            ],
        ),
    ],
)
def test_catchup_after_downtime(store: Store, catchup: Catchup, after_downtime: list[str]) -> None:
    start = utc(2026, 5, 1)
    add(store, start=start, catchup=catchup, overlap="allow")
    clock = Clock(start)
    got = Recorder()
    sched = scheduler(store, clock, got)
    sched.tick(clock.at(utc(2026, 5, 1, 1, 0, 10)))
    assert got.fire_times() == ["2026-05-01T01:00:00+00:00"]
    # no scheduler from 01:00:10 until 05:30
    sched.tick(clock.at(utc(2026, 5, 1, 5, 30)))
    assert got.fire_times()[1:] == after_downtime
    # and it goes on as usual: the 06:00 fire, on time
    sched.tick(clock.at(utc(2026, 5, 1, 6, 0, 5)))
    assert got.fire_times()[-1] == "2026-05-01T06:00:00+00:00"
    assert len(got.launches) == 2 + len(after_downtime)
    assert schedules.read(store, "every").last_fire == "2026-05-01T06:00:00+00:00"


def test_catchup_all_fires_at_most_a_hundred_a_tick_with_a_warning(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    start = utc(2026, 5, 1)
    add(store, cron="* * * * *", start=start, catchup="all", overlap="allow")
    clock = Clock(start)
    got = Recorder()
    sched = scheduler(store, clock, got)
    now = clock.at(start + dt.timedelta(hours=3))
    with caplog.at_level(logging.WARNING, logger="flowkit.automation"):
        sched.tick(now)
    assert len(got.launches) == MAX_CATCHUP
    assert any("more than 100 missed fires" in r.getMessage() for r in caplog.records)
    sched.tick(now)
    sched.tick(now)
    assert len(got.launches) == 180
    assert len(set(got.fire_times())) == 180


# -- overlap ---------------------------------------------------------------------------------


@pytest.fixture
def in_process(store: Store) -> Iterator[InProcess]:
    starter = InProcess(store)
    yield starter
    starter.join()


def wait_status(store: Store, run_id: str, wanted: str) -> None:
    deadline = time.monotonic() + 60
    while runs.view(store, run_id).status != wanted:
        assert time.monotonic() < deadline, f"run {run_id} never became {wanted}"
        time.sleep(0.05)


def overlap_setup(
    store: Store, overlap: Overlap, starter: InProcess
) -> tuple[Scheduler, Clock, list[dt.datetime]]:
    start = utc(2026, 5, 1)
    add(store, start=start, overlap=overlap, catchup="all")
    clock = Clock(start)
    hours = [utc(2026, 5, 1, h) for h in (1, 2, 3)]
    return scheduler(store, clock, starter), clock, hours


def test_overlap_skip_skips_a_fire_while_the_previous_run_runs(
    store: Store, in_process: InProcess
) -> None:
    sched, clock, (h1, h2, h3) = overlap_setup(store, "skip", in_process)
    first = sched.tick(clock.at(h1)).fires[0]
    assert first.outcome == "started"
    wait_status(store, str(first.run_id), "running")
    second = sched.tick(clock.at(h2)).fires[0]
    assert second.outcome == "skipped"
    assert str(first.run_id) in second.reason
    assert claimed(store, fire_path("every", h2))["status"] == "skipped"  # type: ignore[index]
    gate(h1.isoformat()).set()
    wait_status(store, str(first.run_id), "succeeded")
    third = sched.tick(clock.at(h3)).fires[0]
    assert third.outcome == "started"
    assert [launch.tags["fire_time"] for launch in in_process.launches] == [
        h1.isoformat(),
        h3.isoformat(),
    ]
    assert runs.get(str(first.run_id), store=store).output == h1.isoformat()


def test_overlap_queue_runs_the_fires_one_after_another_in_order(
    store: Store, in_process: InProcess
) -> None:
    sched, clock, (h1, h2, h3) = overlap_setup(store, "queue", in_process)
    first = sched.tick(clock.at(h1)).fires[0]
    wait_status(store, str(first.run_id), "running")
    assert sched.tick(clock.at(h2)).fires == ()
    assert sched.tick(clock.at(h3)).fires == ()
    assert schedules.read(store, "every").pending == (h2.isoformat(), h3.isoformat())
    gate(h1.isoformat()).set()
    wait_status(store, str(first.run_id), "succeeded")
    second = sched.tick(clock.at(h3 + dt.timedelta(minutes=1))).fires
    assert [f.time for f in second] == [h2.isoformat()]
    wait_status(store, str(second[0].run_id), "running")
    assert sched.tick(clock.at(h3 + dt.timedelta(minutes=2))).fires == ()
    gate(h2.isoformat()).set()
    wait_status(store, str(second[0].run_id), "succeeded")
    third = sched.tick(clock.at(h3 + dt.timedelta(minutes=3))).fires
    assert [f.time for f in third] == [h3.isoformat()]
    assert schedules.read(store, "every").pending == ()


def test_overlap_allow_starts_a_fire_beside_the_running_one(
    store: Store, in_process: InProcess
) -> None:
    sched, clock, (h1, h2, _) = overlap_setup(store, "allow", in_process)
    first = sched.tick(clock.at(h1)).fires[0]
    wait_status(store, str(first.run_id), "running")
    second = sched.tick(clock.at(h2)).fires[0]
    assert second.outcome == "started"
    wait_status(store, str(second.run_id), "running")
    assert runs.view(store, str(first.run_id)).status == "running"
    tagged = runs.list(store=store, tags={"schedule": "every"})
    assert {r.tags["fire_time"] for r in tagged} == {h1.isoformat(), h2.isoformat()}


def test_a_lost_previous_run_counts_as_ended(store: Store) -> None:
    start = utc(2026, 5, 1)
    add(store, start=start)
    clock = Clock(start)
    got = Recorder()
    sched = scheduler(store, clock, got)
    first = sched.tick(clock.at(utc(2026, 5, 1, 1))).fires[0]
    # the run's process died: its header still says running, its pid is gone
    store.write_run(
        str(first.run_id),
        {
            "id": first.run_id,
            "workflow": "gated",
            "status": "running",
            "started": time.time() - 5,
            "heartbeat": time.time(),
            "host": socket.gethostname(),
            "pid": 2**22 + 12345,
        },
    )
    assert runs.view(store, str(first.run_id)).status == "lost"
    second = sched.tick(clock.at(utc(2026, 5, 1, 2))).fires[0]
    assert second.outcome == "started"


def test_a_run_not_seen_yet_counts_as_running_for_a_minute(store: Store) -> None:
    start = utc(2026, 5, 1)
    add(store, cron="* * * * *", start=start)
    clock = Clock(start)
    got = Recorder()  # its runs never write a header
    sched = scheduler(store, clock, got)
    # the 00:01 fire starts 30 s late; the 00:02 fire finds it 30 s young, the 00:03 one 90 s
    assert sched.tick(clock.at(utc(2026, 5, 1, 0, 1, 30))).fires[0].outcome == "started"
    assert sched.tick(clock.at(utc(2026, 5, 1, 0, 2))).fires[0].outcome == "skipped"
    assert sched.tick(clock.at(utc(2026, 5, 1, 0, 3))).fires[0].outcome == "started"


# -- exactly once ----------------------------------------------------------------------------


def race(stores: list[Store], split_brain: bool) -> tuple[Recorder, list[dt.datetime]]:
    """Two schedulers, each on its own Store object and thread, tick at the same 50 times.

    ``split_brain``: each holds a lease of its own name, so both always believe they hold
    it (what two schedulers do when clocks disagree or a lease lapses mid-tick): only the
    claims keep each fire once. Otherwise they share the store's lease, with a TTL shorter
    than a step, so it changes hands as their threads interleave."""
    start = utc(2026, 5, 1)
    add(stores[0], cron="*/10 * * * *", start=start, catchup="all", overlap="allow")
    got = Recorder()
    nows = [start + dt.timedelta(minutes=7 * i) for i in range(1, 51)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def one(i: int, store: Store) -> None:
        clock = Clock(start)
        sched = scheduler(store, clock, got, interval=60.0, ttl=1.0)
        if split_brain:
            sched.lease = Lease(store, f"split-{i}", holder=sched.holder, ttl=1.0, clock=clock)
        try:
            for now in nows:
                barrier.wait(30)
                sched.tick(clock.at(now))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=one, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    expected = Cron("*/10 * * * *").between(start, nows[-1])
    return got, expected


@pytest.mark.parametrize("split_brain", [False, True], ids=["shared-lease", "split-brain"])
@pytest.mark.parametrize("kind", ["local", "s3"])
def test_two_racing_schedulers_start_each_fire_exactly_once(
    kind: str, split_brain: bool, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "local":
        stores = [Store(tmp_path / "store"), Store(tmp_path / "store")]
    else:
        first = request.getfixturevalue("s3_stores").new()
        stores = [first, Store(first.url, **request.getfixturevalue("s3_stores").options)]
    for s in stores:
        s.check()
    got, expected = race(stores, split_brain)
    wanted = [t.isoformat() for t in expected]
    assert len(wanted) == 35
    assert sorted(got.fire_times()) == wanted  # each started once
    stamps = stores[0].list_dir(fires_folder("every"))
    assert len(stamps) == len(wanted)  # each claimed once
    by_claim = {claimed(stores[0], fire_path("every", t))["run_id"] for t in expected}  # type: ignore[index]
    assert by_claim == {launch.run_id for launch in got.launches}
    assert schedules.read(stores[0], "every").last_fire == wanted[-1]


# -- the lease -------------------------------------------------------------------------------


def test_a_dead_schedulers_lease_is_taken_over_once_it_lapses(store: Store) -> None:
    start = utc(2026, 5, 1)
    add(store, start=start, overlap="allow")
    got = Recorder()
    clock_a, clock_b = Clock(start), Clock(start)
    a = scheduler(store, clock_a, got, interval=30.0)  # lease: 90 s
    b = scheduler(store, clock_b, got, interval=30.0)
    assert a.tick(clock_a.at(utc(2026, 5, 1, 1))).held
    # a dies here: no release, no renewal
    assert not b.tick(clock_b.at(utc(2026, 5, 1, 1, 1))).held
    took = b.tick(clock_b.at(utc(2026, 5, 1, 2)))
    assert took.held
    assert [f.time for f in took.fires] == ["2026-05-01T02:00:00+00:00"]
    assert store.read_doc("leases/scheduler.json")["holder"] == b.holder
    # a comes back: b's lease is live, a does nothing
    assert not a.tick(clock_a.at(utc(2026, 5, 1, 2, 0, 30))).held
    assert got.fire_times() == ["2026-05-01T01:00:00+00:00", "2026-05-01T02:00:00+00:00"]


def test_a_closed_scheduler_hands_over_at_once(store: Store) -> None:
    start = utc(2026, 5, 1)
    clock = Clock(start)
    a = scheduler(store, clock, Recorder())
    b = scheduler(store, clock, Recorder())
    assert a.tick(clock.at(start)).held
    assert not b.tick(clock.at(start)).held
    a.close()
    assert b.tick(clock.at(start)).held


# -- paused, damaged, planted, failing ------------------------------------------------------


def test_a_paused_schedule_does_not_fire_and_resumes_without_the_missed_fires(
    store: Store,
) -> None:
    start = utc(2026, 5, 1)
    add(store, start=start, catchup="all", overlap="allow")
    clock = Clock(start)
    got = Recorder()
    sched = scheduler(store, clock, got)
    sched.tick(clock.at(utc(2026, 5, 1, 1)))
    schedules.set_paused(store, "every", True, now=utc(2026, 5, 1, 1, 5))
    sched.tick(clock.at(utc(2026, 5, 1, 3)))
    schedules.set_paused(store, "every", False, now=utc(2026, 5, 1, 3, 30))
    sched.tick(clock.at(utc(2026, 5, 1, 3, 45)))
    sched.tick(clock.at(utc(2026, 5, 1, 4)))
    assert got.fire_times() == ["2026-05-01T01:00:00+00:00", "2026-05-01T04:00:00+00:00"]


def test_damaged_schedules_are_skipped_and_planted_claims_win(store: Store) -> None:
    start = utc(2026, 5, 1)
    add(store, "good", start=start, catchup="all", overlap="allow")
    good = schedules.read(store, "good")
    store.write_doc("schedules/bad.json", {"format": 1, "name": "bad", "cron": 5})
    store.write_doc("schedules/other.json", dataclasses.replace(good, name="x").to_dict())
    (Path(store.root) / "schedules" / "junk.json").write_bytes(b"\x00not json")
    # someone claimed the 02:00 fire already (another scheduler, or a planted file)
    store.create_doc(fire_path("good", utc(2026, 5, 1, 2)), {"body": {"run_id": "elsewhere"}})
    clock = Clock(start)
    got = Recorder()
    tick = scheduler(store, clock, got).tick(clock.at(utc(2026, 5, 1, 3)))
    assert got.fire_times() == ["2026-05-01T01:00:00+00:00", "2026-05-01T03:00:00+00:00"]
    assert [f.outcome for f in tick.fires] == ["started", "taken", "started"]
    problems = " | ".join(tick.problems)
    assert "schedule bad" in problems and "'target'" in problems
    assert "schedule other" in problems and "names schedule 'x'" in problems
    assert "schedule junk" in problems


def test_a_fire_that_cannot_start_is_recorded_and_not_tried_again(store: Store) -> None:
    start = utc(2026, 5, 1)
    add(store, start=start)
    clock = Clock(start)

    def broken(launch: Launch) -> None:
        raise OSError("no interpreter here")

    sched = scheduler(store, clock, broken)
    fire = sched.tick(clock.at(utc(2026, 5, 1, 1))).fires[0]
    assert fire.outcome == "failed"
    assert "no interpreter here" in fire.reason
    body = claimed(store, fire_path("every", utc(2026, 5, 1, 1)))
    assert body is not None and body["status"] == "failed to start"
    assert sched.tick(clock.at(utc(2026, 5, 1, 1, 0, 30))).fires == ()


def test_a_schedule_removed_mid_tick_is_not_written_again(store: Store) -> None:
    start = utc(2026, 5, 1)
    add(store, start=start)
    clock = Clock(start)

    def remove_then_record(launch: Launch) -> None:
        schedules.remove(store, "every")

    scheduler(store, clock, remove_then_record).tick(clock.at(utc(2026, 5, 1, 1)))
    assert schedules.names(store) == []


# -- any sequence of ticks -------------------------------------------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gaps=st.lists(st.integers(min_value=1, max_value=6 * 60), min_size=1, max_size=12),
    catchup=st.sampled_from(CATCHUPS),
    expr=st.sampled_from(["*/10 * * * *", "0 * * * *", "30 2 * * *", "15 1-3 * * *"]),
    tz=st.sampled_from(["UTC", PARIS, "America/New_York"]),
    day=st.sampled_from([utc(2026, 3, 28, 20), utc(2026, 10, 24, 20), utc(2026, 3, 7, 20)]),
)
def test_any_sequence_of_ticks_fires_cron_times_once_in_order(
    gaps: list[int], catchup: Catchup, expr: str, tz: str, day: dt.datetime
) -> None:
    """Ticks minutes apart (1 min to 6 h): every fire is a cron time, fired once, in order;
    ``all`` fires every time up to the last tick, ``latest`` at least the last one due, and
    ``none`` only times a tick saw within the grace."""
    store = Store(f"memory://fk-{uuid.uuid4().hex[:12]}")
    store.check()
    try:
        add(store, cron=expr, start=day, tz=tz, catchup=catchup, overlap="allow")
        clock = Clock(day)
        got = Recorder()
        sched = scheduler(store, clock, got)
        nows = list(itertools.accumulate((dt.timedelta(minutes=g) for g in gaps), initial=day))[1:]
        for now in nows:
            sched.tick(clock.at(now))
    finally:
        fsspec.filesystem("memory").rm("/" + store.url.split("://", 1)[1], recursive=True)
    fired = [dt.datetime.fromisoformat(t) for t in got.fire_times()]
    cron = Cron(expr, tz)
    due = cron.between(day, nows[-1])
    assert fired == sorted(set(fired))
    assert set(fired) <= set(due)
    if catchup == "all":
        assert fired == due
    elif catchup == "latest" and due:
        assert fired[-1] == due[-1]
    elif catchup == "none":
        grace = dt.timedelta(seconds=sched.grace)
        assert all(any(dt.timedelta(0) <= n - t <= grace for n in nows) for t in fired)


def test_a_signed_stores_scheduler_skips_schedules_written_without_the_key(tmp_path: Path) -> None:
    signed = Store(tmp_path / "store", key="team-key")
    signed.check()
    start = utc(2026, 5, 1)
    add(signed, "ours", start=start)
    # someone without the key plants a schedule of their own
    planted = dataclasses.replace(schedules.read(signed, "ours"), name="theirs")
    Store(tmp_path / "store").write_doc("schedules/theirs.json", planted.to_dict())
    clock = Clock(start)
    got = Recorder()
    tick = scheduler(signed, clock, got).tick(clock.at(utc(2026, 5, 1, 1)))
    assert [launch.tags["schedule"] for launch in got.launches] == ["ours"]
    assert any(p.startswith("schedule theirs:") for p in tick.problems)

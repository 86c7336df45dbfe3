"""``flowkit schedule`` and ``flowkit scheduler`` through ``flowkit.cli.main``; the fires are
real ``flowkit run`` processes (a few), and a real scheduler process is killed."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import flowkit as fk
from flowkit.automation import launch as launch_mod
from flowkit.automation import schedules
from flowkit.automation.crontimes import UTC
from flowkit.automation.launch import Launch, run_command
from flowkit.automation.scheduler import Scheduler
from flowkit.cli import main
from flowkit.cli.params import RESERVED
from flowkit.fsio import ObjectUnavailable
from flowkit.store import Store

FLOWS = """
import flowkit as fk

@fk.task
def stamp(when: fk.FireTime, n: int) -> str:
    return f"{when.isoformat()} n={n}"

@fk.workflow
def stamped(when: fk.FireTime, n: int = 1) -> str:
    return stamp(when, n)

@fk.task
def needs(k: int) -> int:
    return k

@fk.workflow
def strict(k: int) -> int:
    return needs(k)

@fk.workflow(schedule="*/30 * * * *")
def declared(n: int = 2) -> int:
    return needs(n)
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    path = tmp_path / "flows.py"
    path.write_text(FLOWS)
    return path


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return str(tmp_path / "store")


def cli(*args: str) -> int:
    return main(list(args))


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--cron", "61 * * * *"], "cron expression '61 * * * *' is not valid"),
        (["--cron", "0 * * * * *"], "has 6 fields; write five fields"),
        (["--cron", "0 * * * *", "--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["--cron", "0 * * * *", "--param", "n=many"], "--param n: expected int"),
        (["--cron", "0 * * * *", "--param", "m=1"], "has no input 'm'; its inputs: when, n"),
        (["--cron", "0 * * * *", "--param", "when=now"], "is an fk.FireTime"),
        (["--cron", "0 * * * *", "--param", "n"], "write NAME=VALUE"),
        (["--cron", "@daily", "--param", "n=1", "--param", "n=2"], "--param n is given twice"),
        (["--cron", "0 * * * *", "--name", "a/b"], "schedule name 'a/b' is not valid"),
        (["--cron", "0 * * * *", "--backend", "nope"], "--backend 'nope' is not installed"),
        (["--cron", "0 * * * *", "--catchup", "some"], "invalid choice: 'some'"),
        (["--cron", "0 * * * *", "--start", "yesterday"], "--start 'yesterday' is not an ISO"),
        (["--cron", "@daily", "--tz", "Nowhere", "--start", "2026-01-01"], "time zone 'Nowhere'"),
    ],
)
def test_add_refuses_bad_input_with_exit_2_naming_it(
    flows: Path, store_path: str, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert cli("schedule", "add", f"{flows}:stamped", "--store", store_path, *args) == 2
    err = capsys.readouterr().err
    assert says in err
    assert err.count("\n") == 1  # one line
    assert not Path(store_path, "schedules").exists()


def test_add_names_the_required_inputs(
    flows: Path, store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("schedule", "add", f"{flows}:strict", "--cron", "@daily", "--store", store_path) == 2
    err = capsys.readouterr().err
    assert "needs input 'k' (" in err and "no default): give --param k=VALUE" in err


@pytest.mark.parametrize("action", ["pause", "resume", "remove"])
def test_an_unknown_schedule_name_exits_2_naming_the_known_ones(
    flows: Path, store_path: str, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    assert (
        cli("schedule", "add", f"{flows}:stamped", "--cron", "@daily", "--store", store_path) == 0
    )
    capsys.readouterr()
    assert cli("schedule", action, "stampd", "--store", store_path) == 2
    err = capsys.readouterr().err
    assert "no schedule 'stampd'" in err and "schedules: stamped" in err
    assert "flowkit schedule list" in err


def test_backfill_of_an_unknown_schedule_or_a_bad_window_exits_2(
    flows: Path, store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cli("schedule", "add", f"{flows}:stamped", "--cron", "* * * * *", "--store", store_path)
    window = ["--from", "2026-01-01", "--to", "2026-01-02"]
    assert cli("schedule", "backfill", "x", *window, "--store", store_path) == 2
    assert "no schedule 'x'" in capsys.readouterr().err
    assert cli("schedule", "backfill", "stamped", *window, "--store", store_path) == 2
    assert "holds more than 500 fire times" in capsys.readouterr().err
    back = ["--from", "2026-01-02", "--to", "2026-01-01"]
    assert cli("schedule", "backfill", "stamped", *back, "--store", store_path) == 2
    assert "is before --from" in capsys.readouterr().err


def test_scheduler_refuses_now_without_once_or_an_offset(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("scheduler", "--now", "2026-01-01T00:00Z", "--store", store_path) == 2
    assert "--now needs --once" in capsys.readouterr().err
    assert cli("scheduler", "--once", "--now", "2026-01-01T00:00", "--store", store_path) == 2
    assert "has no offset" in capsys.readouterr().err
    assert cli("scheduler", "--once", "--interval", "0", "--store", store_path) == 2
    assert "positive number of seconds" in capsys.readouterr().err


def test_a_declared_schedule_with_a_bad_cron_or_required_inputs_is_refused(
    tmp_path: Path, store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.py"
    head = "import flowkit as fk\n\n"
    bad.write_text(
        head + '@fk.workflow(schedule="0 25 * * *")\ndef w(n: int = 1) -> int:\n    return n\n'
    )
    assert cli("scheduler", str(bad), "--once", "--store", store_path) == 2
    assert "cron expression '0 25 * * *' is not valid" in capsys.readouterr().err
    needs = tmp_path / "needs.py"
    needs.write_text(
        head + '@fk.workflow(schedule="@daily")\ndef w(n: int) -> int:\n    return n\n'
    )
    assert cli("scheduler", str(needs), "--once", "--store", store_path) == 2
    err = capsys.readouterr().err
    assert "needs input(s) n" in err and "give them defaults" in err


def test_a_file_without_declared_schedules_is_refused(
    tmp_path: Path, store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.py"
    plain.write_text(
        "import flowkit as fk\n\n@fk.workflow\ndef w(n: int = 1) -> int:\n    return n\n"
    )
    assert cli("scheduler", str(plain), "--once", "--store", store_path) == 2
    assert '@fk.workflow(schedule="0 * * * *")' in capsys.readouterr().err


# -- list, pause, resume, remove -------------------------------------------------------------


def test_list_pause_resume_remove(
    flows: Path, store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    add = ["schedule", "add", f"{flows}:stamped", "--cron", "30 2 * * *", "--tz", "Europe/Paris"]
    assert cli(*add, "--param", "n=3", "--store", store_path) == 0
    out = capsys.readouterr().out
    assert "schedule stamped added" in out and "when gets each fire's time" in out
    assert cli(*add, "--store", store_path) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli("schedule", "list", "--store", store_path) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["NAME", "STATE", "CRON", "TZ"]
    assert table[1].split()[:2] == ["stamped", "active"]
    assert cli("schedule", "pause", "stamped", "--store", store_path) == 0
    cli("schedule", "list", "--store", store_path)
    assert "paused" in capsys.readouterr().out
    assert cli("schedule", "resume", "stamped", "--store", store_path) == 0
    assert "next fire" in capsys.readouterr().out
    sd = schedules.read(Store(store_path), "stamped")
    assert sd.params == {"n": "3"} and sd.fire_param == "when" and not sd.paused
    assert cli("schedule", "remove", "stamped", "--store", store_path) == 0
    cli("schedule", "list", "--store", store_path)
    assert "no schedules" in capsys.readouterr().err


def test_scheduler_file_adds_the_declared_schedules_once(
    flows: Path, store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # an empty store and a tick in the past: nothing is due, the schedule is stored
    args = ["scheduler", str(flows), "--once", "--now", "2020-01-01T00:00Z", "--store", store_path]
    assert cli(*args) == 0
    assert "schedule declared added" in capsys.readouterr().err
    assert cli(*args) == 0
    assert "schedule declared unchanged" in capsys.readouterr().err
    sd = schedules.read(Store(store_path), "declared")
    assert sd.cron == "*/30 * * * *" and sd.target == f"{flows}:declared"


# -- fires are ordinary runs -----------------------------------------------------------------


def wait_for_runs(store: str, schedule: str, count: int) -> list[fk.runs.RunView]:
    deadline = time.monotonic() + 120
    while True:
        found = (
            fk.runs.list(store=store, tags={"schedule": schedule}) if Path(store).exists() else []
        )
        if len(found) == count and all(r.status == "succeeded" for r in found):
            return found
        assert time.monotonic() < deadline, [(r.id, r.status) for r in found]
        time.sleep(0.2)


def test_fires_across_the_spring_change_are_runs_that_get_their_fire_time(
    flows: Path, store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ticks an hour apart across the night 02:30 does not exist in Paris: one fire per
    day, each a `flowkit run` process tagged with the schedule and its logical time, which
    the workflow receives; a backfill then runs only the window's fire not run yet."""
    logs = str(tmp_path / "logs")
    add = ["schedule", "add", f"{flows}:stamped", "--cron", "30 2 * * *", "--tz", "Europe/Paris"]
    start = ["--start", "2026-03-28T00:00", "--param", "n=7", "--overlap", "allow"]
    start += ["--store", store_path]
    assert cli(*add, *start) == 0
    fired = []
    # every 45 minutes of UTC from 00:15 on the 28th to 02:15 on the 29th
    for step in range(36):
        now = dt.datetime(2026, 3, 28, 0, 15, tzinfo=UTC) + step * dt.timedelta(minutes=45)
        tick = ["--once", "--now", now.isoformat(), "--log-dir", logs, "--store", store_path]
        assert cli("scheduler", *tick) == 0
        fired += [line for line in capsys.readouterr().out.splitlines() if "started run" in line]
    assert [line.split()[1] for line in fired] == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:30:00+02:00",
    ]
    found = wait_for_runs(store_path, "stamped", 2)
    by_time = {r.tags["fire_time"]: r for r in found}
    for when, seen in by_time.items():
        assert seen.output == f"{when} n=7"
        assert seen.workflow == "stamped"
    # the 27th was before the schedule's start: a backfill of the 27th..29th runs just it
    window = ["--from", "2026-03-27", "--to", "2026-03-29T12:00"]
    assert (
        cli("schedule", "backfill", "stamped", *window, "--log-dir", logs, "--store", store_path)
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert [[line.split()[1], line.split()[2].rstrip(":")] for line in out] == [
        ["2026-03-27T02:30:00+01:00", "started"],
        ["2026-03-28T02:30:00+01:00", "taken"],
        ["2026-03-29T03:30:00+02:00", "taken"],
    ]
    found = wait_for_runs(store_path, "stamped", 3)
    assert {r.tags["fire_time"] for r in found} == {*by_time, "2026-03-27T02:30:00+01:00"}
    assert sorted(os.listdir(logs)) == sorted(f"{r.id}.log" for r in found)


def test_a_killed_scheduler_process_is_taken_over(tmp_path: Path, flows: Path) -> None:
    store_path = str(tmp_path / "store")
    Store(store_path).check()
    process = subprocess.Popen(
        [sys.executable, "-m", "flowkit", "scheduler", "--interval", "0.5", "--store", store_path],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        store = Store(store_path)
        wait_until_holding(store, process)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        if process.stderr is not None:
            process.stderr.close()
    # the schedule appears while nobody fires: the standby takes over once the lease lapses
    hour_ago = dt.datetime.now(UTC) - dt.timedelta(hours=1)
    schedules.add(
        store,
        schedules.make(
            f"{flows}:stamped", cron="* * * * *", start=hour_ago, fire_time_param="when"
        ),
    )
    started: list[Launch] = []
    standby = Scheduler(store, interval=0.5, starter=started.append, triggers=False)
    deadline = time.monotonic() + 60
    tick = standby.tick()
    while not tick.held:
        assert started == []
        assert time.monotonic() < deadline, "the lease of the killed scheduler never lapsed"
        time.sleep(0.2)
        tick = standby.tick()
    assert [f.outcome for f in tick.fires] == ["started"]
    assert [launch.run_id for launch in started] == [tick.fires[0].run_id]
    lease = store.read_doc("leases/scheduler.json")
    assert lease["holder"] == standby.holder
    assert lease["generation"] >= 2
    standby.close()


def test_sigterm_stops_the_loop_and_releases_the_lease(tmp_path: Path) -> None:
    store_path = str(tmp_path / "store")
    store = Store(store_path)
    store.check()
    process = subprocess.Popen(
        [sys.executable, "-m", "flowkit", "scheduler", "--interval", "0.5", "--store", store_path],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_until_holding(store, process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        err = process.stderr.read().decode() if process.stderr else ""
        if process.stderr is not None:
            process.stderr.close()
    assert "stopped (lease released)" in err
    assert store.read_doc("leases/scheduler.json")["expires"] == 0
    standby = Scheduler(store, interval=0.5, starter=lambda launch: None, triggers=False)
    assert standby.tick().held  # at once: no term to wait out
    standby.close()


def wait_until_holding(store: Store, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            holder = store.read_doc("leases/scheduler.json")["holder"]
        except ObjectUnavailable:
            holder = ""
        if f":{process.pid}:" in holder:
            return
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the scheduler process never took the lease"
        time.sleep(0.1)


# -- how a fire's process is started ---------------------------------------------------------


def test_the_run_command_gives_inputs_as_flowkit_run_reads_them() -> None:
    assert launch_mod.RUN_OWN_NAMES == RESERVED
    launch = Launch(
        target="/a/flows.py:wf",
        run_id="r1",
        store="/s",
        params={"n": "-5", "store": "x", "run_id": "y"},
        tags={"schedule": "s", "fire_time": "2026-01-01T00:00:00+00:00"},
        backend="threads",
        notify=("http://127.0.0.1:9/hook",),
    )
    argv = run_command(launch)
    assert argv[:5] == [sys.executable, "-m", "flowkit", "run", "/a/flows.py:wf"]
    assert argv[argv.index("--run-id") + 1] == "r1"
    assert argv[argv.index("--backend") + 1] == "threads"
    assert argv[argv.index("--notify") + 1] == "http://127.0.0.1:9/hook"
    assert "--tag" in argv and "schedule=s" in argv
    assert "--n=-5" in argv and "--input-store=x" in argv and "--input-run-id=y" in argv

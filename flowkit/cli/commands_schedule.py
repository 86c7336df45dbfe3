"""``flowkit schedule add|list|pause|resume|remove|backfill`` and ``flowkit scheduler``.

* ``schedule add FILE.py[:WORKFLOW] --cron EXPR``: loads the file (the workflow and every
  ``--param NAME=VALUE`` are checked as ``flowkit run`` would check them), then stores the
  schedule in the store's ``schedules/``. The workflow's input annotated ``fk.FireTime`` is
  recorded: each fire passes it its logical time.
* ``schedule list``: the store's schedules, their next and last fire times.
* ``schedule pause|resume|remove NAME``.
* ``schedule backfill NAME --from ISO --to ISO``: starts the fires of the window that were
  not fired already.
* ``scheduler [FILE.py ...] [--once] [--now ISO]``: the loop
  (:class:`flowkit.automation.scheduler.Scheduler`); FILEs' ``@fk.workflow(schedule=...)``
  workflows are added (or updated) first. ``--once`` does one tick, prints what it fired
  and exits 0; ``--now`` (with ``--once``) ticks at that time instead of the clock's.

A bad cron expression, an unknown time zone or schedule name, a bad input value: exit 2
with one line naming the thing and the fix.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import signal
import sys
import threading
import zoneinfo
from collections.abc import Sequence

from flowkit.automation import fires, schedules
from flowkit.automation.crontimes import UTC, Cron, CronError, check_zone
from flowkit.automation.launch import default_log_dir, start
from flowkit.automation.lease import default_holder
from flowkit.automation.schedule_defs import CATCHUPS, OVERLAPS, ScheduleDef, ScheduleDefError
from flowkit.automation.scheduler import Scheduler, Tick
from flowkit.backend import available_backends
from flowkit.cli.common import (
    EXIT_OK,
    CliParser,
    UsageError,
    add_store_option,
    existing_store,
    format_table,
    say,
    store_url,
)
from flowkit.cli.launchparams import param_texts
from flowkit.cli.loading import find_workflows, load_module, parse_target, select_workflow
from flowkit.store import Store

_FIX_STORE = "(pass --store, or set FLOWKIT_STORE, to the store the schedules are in)"


# -- flowkit schedule ---------------------------------------------------------------------------


def command(argv: Sequence[str]) -> int:
    p = CliParser(
        prog="flowkit schedule",
        description="Run workflows on a clock: schedules live in the store and are fired "
        "by `flowkit scheduler`.",
    )
    sub = p.add_subparsers(
        dest="action",
        metavar="{add,list,pause,resume,remove,backfill}",
        parser_class=CliParser,
    )
    sub.required = True
    _add_parser(sub.add_parser("add", help="add a schedule"))
    listing = sub.add_parser("list", help="the store's schedules")
    add_store_option(listing)
    for action, what in (
        ("pause", "stop firing a schedule (until resumed)"),
        ("resume", "fire a paused schedule again (the fires it missed are not run)"),
        ("remove", "delete a schedule"),
    ):
        one = sub.add_parser(action, help=what)
        one.add_argument("name", metavar="NAME")
        add_store_option(one)
    back = sub.add_parser("backfill", help="start the fires of a window not fired already")
    back.add_argument("name", metavar="NAME")
    back.add_argument("--from", dest="start", required=True, metavar="ISO", help=_WINDOW_HELP)
    back.add_argument("--to", dest="end", required=True, metavar="ISO", help=_WINDOW_HELP)
    _log_dir_option(back)
    add_store_option(back)
    ns = p.parse_args(list(argv))
    try:
        return int(_ACTIONS[ns.action](ns))
    except ScheduleDefError as exc:  # a name, expression, zone or input the user can fix
        raise UsageError(str(exc)) from exc


_WINDOW_HELP = (
    "ISO 8601 time; without an offset it is read in the schedule's zone (both ends included)"
)


def _add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="FILE.py[:WORKFLOW]")
    p.add_argument("--cron", required=True, metavar="EXPR", help="e.g. '0 * * * *' (hourly)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a workflow input, as `flowkit run --NAME VALUE` takes it (repeatable)",
    )
    p.add_argument("--name", help="the schedule's name (default: the workflow's)")
    p.add_argument("--tz", default="UTC", metavar="ZONE", help="IANA zone (default: UTC)")
    p.add_argument(
        "--catchup",
        choices=CATCHUPS,
        default="latest",
        help="fires missed while no scheduler ran: none, the latest (default) or all",
    )
    p.add_argument(
        "--overlap",
        choices=OVERLAPS,
        default="skip",
        help="a fire while the previous one runs: skip it (default), queue it, or allow it",
    )
    p.add_argument("--backend", metavar="NAME", help="the runs' backend (default: local)")
    p.add_argument(
        "--address",
        metavar="URL",
        help="submit each fire to this Ray cluster as a job (http://HEAD:8265)",
    )
    p.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="URL",
        help="webhook told when each fire's run ends (repeatable)",
    )
    p.add_argument(
        "--start",
        metavar="ISO",
        help="the first fire is the first cron time after this (default: now)",
    )
    add_store_option(p)


def _add(ns: argparse.Namespace) -> int:
    target = parse_target(ns.target)
    module = load_module(target.path)
    wf = select_workflow(module, target)
    attr = next((k for k, v in find_workflows(module).items() if v is wf), wf.name)
    timed = schedules.fire_param(wf)
    texts = param_texts(
        wf, ns.param, timed, "this input is an fk.FireTime; each fire gives it its own time"
    )
    try:
        check_zone(ns.tz)  # before --start is read in it
    except CronError as exc:
        raise UsageError(str(exc)) from exc
    if ns.backend is not None and ns.backend not in available_backends():
        raise UsageError(
            f"--backend {ns.backend!r} is not installed; backends: "
            f"{', '.join(available_backends())}"
        )
    definition = schedules.make(
        f"{os.path.abspath(target.path)}:{attr}",
        cron=ns.cron,
        name=ns.name or wf.name,
        params=texts,
        tz=ns.tz,
        catchup=ns.catchup,
        overlap=ns.overlap,
        backend=ns.backend,
        address=ns.address,
        notify=ns.notify,
        start=None if ns.start is None else _instant(ns.start, "--start", ns.tz),
        fire_time_param=timed,
    )
    definition = dataclasses.replace(definition, workflow=wf.name)
    store = Store(store_url(ns.store))
    store.check()
    schedules.add(store, definition)
    print(f"schedule {definition.name} added: {_describe(definition)}")
    print("it fires while `flowkit scheduler` runs on this store", file=sys.stderr)
    return EXIT_OK


def _list(ns: argparse.Namespace) -> int:
    store = existing_store(ns.store)
    if store is None or not schedules.names(store):
        where = store.url if store is not None else store_url(ns.store)
        print(f"no schedules in store {where}", file=sys.stderr)
        return EXIT_OK
    now = dt.datetime.now(UTC)
    rows = []
    for name in schedules.names(store):
        try:
            sd = schedules.read(store, name)
        except ScheduleDefError as exc:
            rows.append([name, "damaged", "-", "-", "-", "-", str(exc)])
            continue
        cron = Cron(sd.cron, sd.tz)
        upcoming = cron.next_after(max(now, sd.anchor()))
        rows.append(
            [
                name,
                "paused" if sd.paused else "active",
                sd.cron,
                sd.tz,
                "-" if upcoming is None or sd.paused else _short(cron.local(upcoming)),
                "-" if sd.last_fire is None else _short(cron.local(_utc(sd.last_fire))),
                sd.target,
            ]
        )
    headers = ["NAME", "STATE", "CRON", "TZ", "NEXT FIRE", "LAST FIRE", "TARGET"]
    print(format_table(headers, rows))
    return EXIT_OK


def _pause(ns: argparse.Namespace) -> int:
    sd = schedules.set_paused(_store(ns), ns.name, True)
    print(f"schedule {sd.name} paused")
    return EXIT_OK


def _resume(ns: argparse.Namespace) -> int:
    sd = schedules.set_paused(_store(ns), ns.name, False)
    cron = Cron(sd.cron, sd.tz)
    upcoming = cron.next_after(sd.anchor())
    when = "never" if upcoming is None else cron.local(upcoming).isoformat()
    print(f"schedule {sd.name} resumed; next fire {when}")
    return EXIT_OK


def _remove(ns: argparse.Namespace) -> int:
    schedules.remove(_store(ns), ns.name)
    print(f"schedule {ns.name} removed")
    return EXIT_OK


def _backfill(ns: argparse.Namespace) -> int:
    store = _store(ns)
    sd = schedules.read(store, ns.name)
    first = _instant(ns.start, "--from", sd.tz)
    last = _instant(ns.end, "--to", sd.tz)
    if last < first:
        raise UsageError(f"--to {ns.end} is before --from {ns.start}")
    log_dir = ns.log_dir or default_log_dir()
    try:
        done = fires.backfill(
            store,
            sd,
            first,
            last,
            lambda launch: start(launch, log_dir=log_dir),
            by=f"backfill:{default_holder()}",
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    for one in done:
        print(one.line())
    started = sum(1 for one in done if one.outcome == "started")
    print(
        f"backfill of {sd.name}: {started} of {len(done)} fire time(s) started "
        f"(the others were fired already); logs in {log_dir}",
        file=sys.stderr,
    )
    return EXIT_OK


_ACTIONS = {
    "add": _add,
    "list": _list,
    "pause": _pause,
    "resume": _resume,
    "remove": _remove,
    "backfill": _backfill,
}


# -- flowkit scheduler --------------------------------------------------------------------------


def scheduler_command(argv: Sequence[str]) -> int:
    p = CliParser(
        prog="flowkit scheduler",
        description="Fire the store's schedules and triggers, every --interval seconds, "
        "until stopped (Ctrl-C, SIGTERM). Several schedulers may run on one store: one "
        "holds the store's lease and fires; the others take over if it stops.",
    )
    p.add_argument(
        "files",
        nargs="*",
        metavar="FILE.py",
        help="add or update the schedules of these files' @fk.workflow(schedule=...) first",
    )
    p.add_argument("--once", action="store_true", help="one tick, then exit")
    p.add_argument(
        "--now", metavar="ISO", help="with --once: tick at this time (ISO 8601 with an offset)"
    )
    p.add_argument(
        "--interval",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="seconds between ticks (default 30); the lease lasts 3 intervals",
    )
    _log_dir_option(p)
    add_store_option(p)
    ns = p.parse_args(list(argv))
    if ns.now is not None and not ns.once:
        raise UsageError("flowkit scheduler: --now needs --once (the loop follows the clock)")
    now = None if ns.now is None else _instant(ns.now, "--now", None)
    store = Store(store_url(ns.store))
    store.check()
    try:
        for path in ns.files:
            _declare(store, path)
        sched = Scheduler(store, interval=ns.interval, log_dir=ns.log_dir or default_log_dir())
    except (ScheduleDefError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    if ns.once:
        try:
            result = sched.tick(now)
        finally:
            sched.close()
        _show(result, store)
        return EXIT_OK
    return _loop(sched, store)


def _declare(store: Store, path: str) -> None:
    """Add or update the schedules that ``path``'s workflows declare."""
    declared = [wf for wf in find_workflows(load_module(path)).values() if wf.schedule]
    if not declared:
        raise UsageError(
            f"{path} declares no schedule: decorate a workflow with "
            '@fk.workflow(schedule="0 * * * *")'
        )
    for wf in declared:
        assert wf.schedule is not None
        try:
            definition = schedules.make(wf, cron=wf.schedule)
        except ScheduleDefError as exc:
            raise UsageError(
                f"{path}: @fk.workflow(schedule={wf.schedule!r}) on `{wf.name}`: {exc} (a "
                "declared schedule passes no inputs: give them defaults, or call "
                "fk.schedule(wf, cron=..., params=...) instead)"
            ) from exc
        sd, what = schedules.upsert(store, definition)
        say(f"schedule {sd.name} {what} from {path}: {_describe(sd)}")


def _loop(sched: Scheduler, store: Store) -> int:
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    say(
        f"flowkit scheduler: store {store.url}, a tick every {sched.interval:g} s, as "
        f"{sched.holder}; Ctrl-C stops"
    )
    try:
        sched.serve(stop, on_tick=lambda result: _show(result, store, quiet=True))
    except KeyboardInterrupt:
        sched.close()
    finally:
        signal.signal(signal.SIGTERM, previous)
    say("flowkit scheduler: stopped (lease released)")
    return EXIT_OK


def _show(result: Tick, store: Store, *, quiet: bool = False) -> None:
    if not result.held:
        if not quiet:
            say(
                f"another scheduler holds the lease of store {store.url} "
                "(leases/scheduler.json); nothing fired"
            )
        return
    for line in result.lines():
        print(line, flush=True)
    for problem in result.problems:
        say(f"flowkit scheduler: warning: {problem}")


# -- helpers ------------------------------------------------------------------------------------


def _store(ns: argparse.Namespace) -> Store:
    store = existing_store(ns.store)
    if store is None:
        raise UsageError(f"there is no store at {store_url(ns.store)} {_FIX_STORE}")
    return store


def _log_dir_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-dir",
        metavar="DIR",
        help="where each started run's process writes its output "
        "(default: $FLOWKIT_SCHEDULER_LOGS or ~/.local/state/flowkit/scheduler-logs)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _instant(text: str, option: str, tz: str | None) -> dt.datetime:
    """An ISO 8601 time as an aware datetime; without an offset it is read in zone ``tz``
    (an error when ``tz`` is None)."""
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not an ISO 8601 time (write 2026-03-29T02:00:00+01:00)"
        ) from None
    if when.tzinfo is None:
        if tz is None:
            raise UsageError(
                f"{option} {text!r} has no offset: write it with one (2026-03-29T01:00Z)"
            )
        when = when.replace(tzinfo=zoneinfo.ZoneInfo(tz))
    return when


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


def _short(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M %z")


def _describe(sd: ScheduleDef) -> str:
    cron = Cron(sd.cron, sd.tz)
    upcoming = cron.next_after(sd.anchor())
    when = "never" if upcoming is None else cron.local(upcoming).isoformat()
    takes = f", {sd.fire_param} gets each fire's time" if sd.fire_param else ""
    return f"{sd.target} at '{sd.cron}' ({sd.tz}), next fire {when}{takes}"


__all__ = ["command", "scheduler_command"]

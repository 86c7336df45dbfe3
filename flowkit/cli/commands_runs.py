"""``flowkit runs list|show|logs|output``: read the runs recorded in a store (``fk.runs``).

The engine writes a header per run and task records in batches as calls finish; these
commands only read them, so they work on a store another process is still writing (a run in
progress shows as ``running`` with the calls recorded so far). None of them creates a store:
a missing local store has no runs.

* ``list``: the newest runs (``--status``, ``--workflow``, ``--tag``, ``--limit``; ``--json``).
* ``show RUN``: the header and one row per call: cached or reused, attempts, whether its
  outputs are kept and whether it logged anything; then the attempts that failed.
* ``logs RUN [NODE] [--attempt N] [--follow]``: what calls printed and logged (every call,
  under ``[node]`` headers, when NODE is omitted), each failed attempt's traceback after its
  logs; ``--follow`` prints each call as it is recorded until the run ends.
* ``output RUN [NODE] [-o FILE]``: the workflow's (or a call's) output: JSON on stdout, or
  written to FILE (:mod:`flowkit.cli.runs_output`).

A run id may be a unique prefix. An unknown or ambiguous id, an unknown node and an output
that is not JSON without ``-o`` exit 2 with a message naming the candidates or the fix.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from flowkit import runs
from flowkit.cli.common import (
    EXIT_OK,
    CliParser,
    UsageError,
    add_store_option,
    existing_store,
    format_table,
    format_time,
    parse_tags,
    shorten,
    store_url,
)
from flowkit.cli.runs_output import json_text, kind, write_value
from flowkit.reprs import format_duration
from flowkit.runview import RunView, UnknownNodeError
from flowkit.taskview import AttemptView, TaskView


def command(argv: Sequence[str]) -> int:
    p = CliParser(prog="flowkit runs", description="List and inspect recorded runs.")
    sub = p.add_subparsers(dest="action", metavar="{list,show,logs,output}", parser_class=CliParser)
    sub.required = True
    _list_parser(sub.add_parser("list", help="recent runs, newest first"))
    show = sub.add_parser("show", help="one run: its header and a table of its task calls")
    _run_argument(show)
    show.add_argument("--json", action="store_true", help="print the records as JSON")
    logs = sub.add_parser("logs", help="what a run's calls printed and logged")
    _run_argument(logs, node="a call (train, train[3]) or a map node (all its items)")
    logs.add_argument(
        "--attempt", type=_positive_int, metavar="N", help="only attempt N (1: the first)"
    )
    logs.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing each call's logs as it finishes, until the run ends",
    )
    out = sub.add_parser("output", help="a run's (or a call's) output, as JSON or to a file")
    _run_argument(out, node="a call (train, train[3]); default: the workflow's output")
    out.add_argument(
        "-o",
        "--output",
        dest="file",
        metavar="FILE",
        help="write the value to FILE (needed when it is not JSON: an array, a table...)",
    )
    ns = p.parse_args(list(argv))
    handlers = {"list": _list, "show": _show, "logs": _logs, "output": _output}
    return handlers[ns.action](ns)


def _list_parser(ls: argparse.ArgumentParser) -> None:
    add_store_option(ls)
    ls.add_argument(
        "--limit", type=_positive_int, default=20, metavar="N", help="at most N runs (default 20)"
    )
    ls.add_argument(
        "--status",
        choices=runs.STATUSES,
        help="only runs with this status (lost: its process died while it ran)",
    )
    ls.add_argument("--workflow", metavar="NAME", help="only runs of this workflow")
    ls.add_argument(
        "--tag",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="only runs tagged KEY=VALUE (repeatable: every one must match)",
    )
    ls.add_argument("--json", action="store_true", help="print the run headers as JSON")


def _run_argument(parser: argparse.ArgumentParser, node: str | None = None) -> None:
    parser.add_argument("run_id", metavar="RUN", help="a run id or a unique prefix of one")
    if node is not None:
        parser.add_argument("node", metavar="NODE", nargs="?", help=node)
    add_store_option(parser)


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


def _run(ns: argparse.Namespace) -> RunView:
    """The run RUN names (UsageError, exit 2, naming the candidates if none or several)."""
    store = existing_store(ns.store)
    if store is None:
        raise UsageError(
            f"no run {ns.run_id!r}: there is no store at {store_url(ns.store)}; "
            "pass --store URL or set FLOWKIT_STORE"
        )
    try:
        return runs.get(ns.run_id, store=store)
    except runs.UnknownRunError as e:
        raise UsageError(str(e)) from e


def _calls(run: RunView, node: str) -> list[TaskView]:
    """The call of ``node``, or every item of a map node of that name."""
    if node in run:
        return [run[node]]
    items = run.map_items(node)
    if items:
        return items
    try:
        run[node]  # raises, naming the nodes there are
    except UnknownNodeError as e:
        raise UsageError(str(e)) from e
    raise AssertionError("unreachable")  # pragma: no cover


# -- list ------------------------------------------------------------------------------------


def _list(ns: argparse.Namespace) -> int:
    store = existing_store(ns.store)
    found = (
        []
        if store is None
        else runs.list(
            store=store,
            workflow=ns.workflow,
            status=ns.status,
            limit=ns.limit,
            tags=parse_tags(ns.tag),
        )
    )
    if ns.json:
        print(json.dumps([dict(v.header) for v in found], indent=2, default=str))
        return EXIT_OK
    if not found:
        print(f"no runs in {store_url(ns.store)}", file=sys.stderr)
        return EXIT_OK
    rows = []
    for v in found:
        # a running (or killed) run's header still has the counts written at its start
        s = v.summary if v.status not in ("running", "submitted") else {}
        rows.append(
            [
                v.id,
                v.workflow,
                v.status,
                format_time(v.started),
                format_duration(v.duration),
                _count(s, "run"),
                _count(s, "cached"),
                _count(s, "failed"),
            ]
        )
    print(
        format_table(
            ["RUN ID", "WORKFLOW", "STATUS", "STARTED", "DURATION", "RUN", "CACHED", "FAILED"], rows
        )
    )
    return EXIT_OK


def _count(summary: Any, name: str) -> str:
    v = summary.get(name)
    return str(v) if isinstance(v, int) else "-"


# -- show ------------------------------------------------------------------------------------


def _show(ns: argparse.Namespace) -> int:
    run = _run(ns)
    tasks = run.tasks
    if ns.json:
        doc = {"run": dict(run.header), "tasks": [dict(t.record) for t in tasks]}
        print(json.dumps(doc, indent=2, default=str))
        return EXIT_OK
    _print_header(run, tasks)
    if not tasks:
        print("(no task records)")
        return EXIT_OK
    rows = [
        [
            t.node,
            t.name,
            t.status,
            _source(t),
            _attempt_count(t),
            format_duration(t.duration),
            _kept(t),
            "yes" if any(a.has_logs for a in t.attempts) else "-",
        ]
        for t in tasks
    ]
    headers = ["NODE", "TASK", "STATUS", "CACHED", "ATTEMPTS", "DURATION", "KEPT", "LOGS"]
    print(format_table(headers, rows))
    _print_failures(tasks)
    return EXIT_OK


def _print_header(run: RunView, tasks: Sequence[TaskView]) -> None:
    summary = dict(run.summary) if run.status != "running" else {}
    summary = summary or _summarise(tasks)
    fields = [
        ("run", run.id),
        ("workflow", run.workflow),
        ("status", run.status),
        ("backend", run.backend or "-"),
        ("started", format_time(run.started)),
        ("ended", format_time(run.ended)),
        ("duration", format_duration(run.duration)),
        ("inputs", _inputs(run.header.get("inputs"))),
        (
            "tasks",
            f"{_count(summary, 'run')} run, {_count(summary, 'cached')} cached, "
            f"{_count(summary, 'failed')} failed",
        ),
    ]
    if run.tags:
        fields.append(("tags", " ".join(f"{k}={v}" for k, v in sorted(run.tags.items()))))
    fields.extend(("tolerated", line) for line in _tolerated(run.header.get("tolerated")))
    reused = sum(1 for t in tasks if t.reused_from)
    if run.resumed_from:
        fields.append(("resumed", f"from run {run.resumed_from} ({reused} calls reused)"))
    if run.error:
        fields.append(("error", shorten(run.error, 300)))
    from flowkit.automation import rayfollow  # here: every command imports this module

    note = rayfollow.job_note(run.header)  # a run submitted to Ray that has not started
    if note is not None:
        fields.append(("ray job", note))
    started_by = run.header.get("log")  # a scheduler's fire: where its process wrote
    if isinstance(started_by, str) and run.status in ("submitted", "lost"):
        fields.append(("log", f"{started_by} (what the process printed before the run)"))
    if run.damage:
        fields.append(("damage", run.damage))
    width = max(len(k) for k, _ in fields)
    for k, v in fields:
        print(f"{k.ljust(width)}  {v}")
    print()


def _tolerated(entries: Any) -> list[str]:
    """One line per map with ``min_success`` that had failed items (the header's
    ``tolerated``; a planted or damaged entry is shown as far as it reads)."""
    if not isinstance(entries, dict):
        return []
    lines = []
    for node, e in entries.items():
        e = e if isinstance(e, dict) else {}
        listed = e.get("failed")
        failed: list[Any] = listed if isinstance(listed, list) else []
        shown = ", ".join(f"{node}[{i}]" for i in failed[:10])
        more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
        lines.append(
            f"{node}: {len(failed)} of {e.get('items', '?')} items failed "
            f"(min_success={e.get('min_success', '?')}): {shown}{more}"
        )
    return lines


def _source(t: TaskView) -> str:
    """Where the call's result came from: ``yes`` (the cache), ``reused`` (``--resume``)."""
    if t.reused_from:
        return "reused"
    return "yes" if t.cached else "no"


def _kept(t: TaskView) -> str:
    """Whether the call's outputs are in the store (``partly``: one could not be stored)."""
    if t.status != "succeeded":
        return "-"
    outputs = t.record.get("outputs")
    if not isinstance(outputs, dict) or not outputs:
        return "no"
    return "yes" if all(isinstance(a, dict) for a in outputs.values()) else "partly"


def _attempt_count(t: TaskView) -> Any:
    count = t.record.get("attempts")
    return count if type(count) is int else len(t.attempts) or "-"


def _print_failures(tasks: Sequence[TaskView]) -> None:
    """Each failed attempt (retries included) and the error that ended each failed call."""
    retried = [
        (t, a) for t in tasks for a in t.attempts if a.status == "failed" and t.status != "failed"
    ]
    if retried:
        print("\nfailed attempts retried:")
        for t, a in retried:
            print(f"  {t.node} #{a.n}: {shorten(a.error or '?', 300)}")
    failed = [t for t in tasks if t.error]
    if failed:
        print("\nerrors:")
        for t in failed:
            print(f"  {t.node}: {shorten(t.error or '', 300)}")
        print("\n(`flowkit runs logs RUN NODE` shows a call's logs and full traceback)")


def _summarise(tasks: Sequence[TaskView]) -> dict[str, int]:
    return {
        "run": sum(1 for t in tasks if t.status == "succeeded" and not t.cached),
        "cached": sum(1 for t in tasks if t.cached),
        "failed": sum(1 for t in tasks if t.status == "failed"),
    }


def _inputs(inputs: Any) -> str:
    if not isinstance(inputs, dict) or not inputs:
        return "-"
    return shorten(", ".join(f"{k}={_input(v)}" for k, v in inputs.items()), 200)


def _input(entry: Any) -> str:
    """One recorded input: a value as it is, markers as what they stand for (nothing loaded)."""
    if isinstance(entry, dict) and len(entry) == 1:
        (mark, inner), *_ = entry.items()
        if mark == "$secret":
            return "***"
        if mark == "$repr":
            return str(inner)
        if mark == "$artifact" and isinstance(inner, dict):
            return f"<stored {inner.get('format', '?')} value, {inner.get('size', '?')} bytes>"
    return repr(entry)


# -- logs ------------------------------------------------------------------------------------


def _check_logs_options(ns: argparse.Namespace) -> None:
    if ns.attempt is not None and ns.node is None:
        raise UsageError("--attempt needs a NODE: flowkit runs logs RUN NODE --attempt N")
    if ns.follow and ns.attempt is not None:
        raise UsageError("--follow prints every attempt as it ends: drop --attempt")


def _logs(ns: argparse.Namespace) -> int:
    _check_logs_options(ns)
    if ns.follow:
        return _follow(ns)
    run = _run(ns)
    calls = list(run.tasks) if ns.node is None else _calls(run, ns.node)
    if ns.attempt is not None:
        if len(calls) != 1:
            raise UsageError(f"`{ns.node}` is a map node: --attempt needs one item, {ns.node}[i]")
        _write(_attempt(calls[0], ns.attempt), header=None)
        return EXIT_OK
    headed = ns.node is None or len(calls) > 1
    wrote = False
    for t in calls:
        for a in t.attempts:
            header = None
            if headed or len(t.attempts) > 1:
                header = f"[{t.node}]" if len(t.attempts) == 1 else f"[{t.node}] attempt {a.n}"
            wrote = _write(a, header) or wrote
    if not wrote and ns.node is None and not calls and _job_logs(run):
        return EXIT_OK
    if not wrote:
        which = "its calls" if ns.node is None else f"`{ns.node}`"
        print(f"run {run.id}: {which} printed and logged nothing", file=sys.stderr)
    return EXIT_OK


_FOLLOW_POLL = 1.0
_ASK_RAY_EVERY = 5.0
_GOING = ("running", "submitted")


def _follow(ns: argparse.Namespace) -> int:
    """Print each attempt's logs once it is recorded (calls are recorded as they finish),
    under a ``[node]`` header, until the run ends. A submitted run whose Ray job ends before
    starting it: the job's output, then stop."""
    printed: set[tuple[str, int]] = set()
    asked = 0.0
    while True:
        run = _run(ns)  # read again: the header and the calls recorded so far
        calls = list(run.tasks) if ns.node is None else _calls_so_far(run, ns.node)
        for t in calls:
            for a in t.attempts:
                if (t.node, a.n) not in printed:
                    printed.add((t.node, a.n))
                    label = f"[{t.node}]" if a.n <= 1 else f"[{t.node}] attempt {a.n}"
                    _write(a, label)
                    sys.stdout.flush()
        if run.status not in _GOING:
            return EXIT_OK
        if run.status == "submitted" and time.monotonic() - asked >= _ASK_RAY_EVERY:
            asked = time.monotonic()
            if _job_ended(run):
                _job_logs(run)
                return EXIT_OK
        time.sleep(_FOLLOW_POLL)


def _calls_so_far(run: RunView, node: str) -> list[TaskView]:
    """The calls of ``node`` recorded so far (none yet is not an error while it runs)."""
    if node in run:
        return [run[node]]
    return run.map_items(node)


def _job_ended(run: RunView) -> bool:
    from flowkit.automation import rayfollow, rayjobs

    job = rayfollow.job_of(run.header)
    if job is None:
        return False
    try:
        return rayjobs.state(job[1], job[0]).ended
    except rayjobs.RayJobError:  # out of reach for now: keep following the store
        return False


def _job_logs(run: RunView) -> bool:
    """Print what the Ray job of a run with no calls printed (its driver failed before the
    run began, or it has not begun); False if the run was not submitted to Ray."""
    from flowkit.automation import rayfollow, rayjobs

    job = rayfollow.job_of(run.header)
    if job is None:
        return False
    try:
        text = rayjobs.logs(job[1], job[0])
    except rayjobs.RayJobError as e:
        raise UsageError(f"run {run.id} has no calls yet, and {e}") from e
    print(f"run {run.id} has no calls; the output of its Ray job {job[0]}:", file=sys.stderr)
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    return True


def _attempt(t: TaskView, n: int) -> AttemptView:
    for a in t.attempts:
        if a.n == n:
            return a
    count = len(t.attempts)
    raise UsageError(
        f"call `{t.node}` of run {t.run_id} has no attempt {n}: it has "
        + (f"attempts 1 to {count}" if count else "none (it was cached or reused)")
    )


def _write(a: AttemptView, header: str | None) -> bool:
    """Print an attempt's logs (then its traceback, if it failed); False if it has neither."""
    text = a.logs + (a.traceback or "")
    if not text:
        return False
    if header is not None:
        status = " (failed)" if a.status == "failed" else ""
        sys.stdout.write(f"{header}{status}\n")
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return True


# -- output ----------------------------------------------------------------------------------


def _output(ns: argparse.Namespace) -> int:
    run = _run(ns)
    if ns.node is None:
        value, what = run.output, f"the output of run {run.id}"
    else:
        calls = _calls(run, ns.node)
        if len(calls) > 1:
            raise UsageError(
                f"`{ns.node}` is a map node of run {run.id} with {len(calls)} items: name one, "
                f"{calls[0].node} to {calls[-1].node}"
            )
        value, what = calls[0].output, f"the output of `{ns.node}` in run {run.id}"
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        value = value._asdict()  # a call's named outputs: an object, not a list
    if ns.file is not None:
        written = write_value(value, ns.file)
        print(f"wrote {what}: {written}", file=sys.stderr)
        return EXIT_OK
    text = json_text(value)
    if text is None:
        raise UsageError(f"{what} is {kind(value)}, not JSON: pass -o FILE to write it to a file")
    print(text)
    return EXIT_OK

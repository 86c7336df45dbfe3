"""``flowkit runs list`` and ``flowkit runs show RUN_ID``: read the run records in a store.

The engine writes a header per run (``Store.write_run``) and task records in batches
(``Store.write_task_records``); these commands only read them, so they work on a store
that another process is still writing (a run in progress shows as ``running`` with the
tasks recorded so far). ``--json`` prints the records as JSON for scripts.

A run id may be abbreviated to a unique prefix. An unknown id exits 2 naming it. Neither
command creates a store: a missing local store has no runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from flowkit.cli.common import (
    EXIT_OK,
    CliParser,
    UsageError,
    add_store_option,
    existing_store,
    format_duration,
    format_table,
    format_time,
    shorten,
    store_url,
)
from flowkit.errors import StoreError


def command(argv: Sequence[str]) -> int:
    p = CliParser(prog="flowkit runs", description="List and inspect recorded runs.")
    sub = p.add_subparsers(dest="action", metavar="{list,show}", parser_class=CliParser)
    sub.required = True
    ls = sub.add_parser("list", help="recent runs, newest first")
    add_store_option(ls)
    ls.add_argument(
        "--limit",
        type=_positive_int,
        default=20,
        metavar="N",
        help="show at most N runs (default 20)",
    )
    ls.add_argument(
        "--status",
        choices=["running", "succeeded", "failed", "interrupted", "lost"],
        help="only runs with this status (lost: its process died while it ran)",
    )
    ls.add_argument("--json", action="store_true", help="print the run headers as JSON")
    show = sub.add_parser("show", help="one run: its header and a table of its task calls")
    show.add_argument("run_id", metavar="RUN_ID", help="a run id or a unique prefix of one")
    add_store_option(show)
    show.add_argument("--json", action="store_true", help="print the records as JSON")
    ns = p.parse_args(list(argv))
    if ns.action == "list":
        return _list(ns)
    return _show(ns)


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


def _list(ns: argparse.Namespace) -> int:
    store = existing_store(ns.store)
    headers = [] if store is None else store.list_runs(limit=None if ns.status else ns.limit)
    if ns.status:
        headers = [h for h in headers if h.get("status") == ns.status][: ns.limit]
    if ns.json:
        print(json.dumps(headers, indent=2, default=str))
        return EXIT_OK
    if not headers:
        print(f"no runs in {store_url(ns.store)}", file=sys.stderr)
        return EXIT_OK
    rows = []
    for h in headers:
        # a running (or killed) run's header still has the counts written at its start
        s = (h.get("summary") or {}) if h.get("status") != "running" else {}
        rows.append(
            [
                h["id"],
                h.get("workflow", "?"),
                h.get("status", "?"),
                format_time(h.get("started")),
                format_duration(h.get("duration")),
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


def _count(summary: dict[str, Any], name: str) -> str:
    v = summary.get(name)
    return str(v) if isinstance(v, int) else "-"


def _show(ns: argparse.Namespace) -> int:
    store = existing_store(ns.store)
    if store is None:
        raise UsageError(
            f"no run {ns.run_id!r}: there is no store at {store_url(ns.store)}; "
            "pass --store URL or set FLOWKIT_STORE"
        )
    try:
        header, tasks = store.read_run(ns.run_id)
    except StoreError as e:
        raise UsageError(str(e)) from e
    tasks = sorted(tasks, key=_task_order)
    if ns.json:
        print(json.dumps({"run": header, "tasks": tasks}, indent=2, default=str))
        return EXIT_OK
    summary = header.get("summary") if header.get("status") != "running" else None
    summary = summary or _summarise(tasks)
    fields = [
        ("run", header.get("id", ns.run_id)),
        ("workflow", header.get("workflow", "?")),
        ("status", header.get("status", "?")),
        ("backend", header.get("backend") or "-"),
        ("started", format_time(header.get("started"))),
        ("ended", format_time(header.get("ended"))),
        ("duration", format_duration(header.get("duration"))),
        ("inputs", _inputs(header.get("inputs"))),
        (
            "tasks",
            f"{_count(summary, 'run')} run, {_count(summary, 'cached')} cached, "
            f"{_count(summary, 'failed')} failed",
        ),
    ]
    if header.get("error"):
        fields.append(("error", shorten(str(header["error"]), 300)))
    width = max(len(k) for k, _ in fields)
    for k, v in fields:
        print(f"{k.ljust(width)}  {v}")
    print()
    if not tasks:
        print("(no task records)")
        return EXIT_OK
    rows = [
        [
            t.get("node", "?"),
            t.get("name", "?"),
            t.get("status", "?"),
            "yes" if t.get("cached") else "no",
            t.get("attempts", "-"),
            format_duration(t.get("duration")),
        ]
        for t in tasks
    ]
    print(format_table(["NODE", "TASK", "STATUS", "CACHED", "ATTEMPTS", "DURATION"], rows))
    failed = [t for t in tasks if t.get("error")]
    if failed:
        print("\nerrors:")
        for t in failed:
            print(f"  {t.get('node', '?')}: {shorten(str(t['error']), 300)}")
    return EXIT_OK


def _task_order(t: dict[str, Any]) -> tuple[float, str]:
    started = t.get("started")
    return (started if isinstance(started, (int, float)) else float("inf"), str(t.get("node")))


def _summarise(tasks: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "run": sum(1 for t in tasks if t.get("status") == "succeeded" and not t.get("cached")),
        "cached": sum(1 for t in tasks if t.get("cached")),
        "failed": sum(1 for t in tasks if t.get("status") == "failed"),
    }


def _inputs(inputs: Any) -> str:
    if not isinstance(inputs, dict) or not inputs:
        return "-"
    return shorten(", ".join(f"{k}={v!r}" for k, v in inputs.items()), 200)

"""``flowkit cache explain FILE.py[:WORKFLOW] TASK [--PARAM VALUE ...]`` and
``flowkit cache gc [--older-than DAYS]``.

``explain`` prints, for each call of TASK (a task name or a node id) with these workflow
inputs, ``hit``, ``miss`` with what changed since the nearest earlier entry (``helper `clean`
changed``, ``input `n` changed``, ``version changed``), ``cannot tell`` with the input that
needs an upstream task to run first, or ``not cached``. It never runs a task; see
:mod:`flowkit.cli.explain`. Exit 0 whatever the answer; 2 for an unknown task.

``gc`` removes cache entries older than DAYS (default 30), and the stored objects and code
fingerprint documents nothing recent refers to (see :func:`flowkit.cachegc.gc`), and prints
what it removed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from flowkit import cachegc
from flowkit.cli import wfargs
from flowkit.cli.common import (
    EXIT_OK,
    CliParser,
    UsageError,
    add_store_option,
    add_traceback_option,
    existing_store,
    format_time,
    plural,
    store_url,
)
from flowkit.cli.explain import CallReport, Explainer
from flowkit.store import Store
from flowkit.workflow import bind_inputs

DEFAULT_GC_DAYS = 30.0

EXPLAIN_DESCRIPTION = """\
Say whether a task's call would hit the cache for these workflow inputs, and on a miss
which parts of its key changed since the nearest earlier entry. Nothing runs: upstream
outputs are found in the cache, so run the workflow once before explaining a task that
reads another task's output.
"""


def command(argv: Sequence[str]) -> int:
    args = list(argv)
    if args and args[0] == "explain":
        return _explain(args[1:])
    p = CliParser(prog="flowkit cache", description="Inspect and clean the cache.")
    sub = p.add_subparsers(dest="action", metavar="{explain,gc}", parser_class=CliParser)
    sub.required = True
    sub.add_parser("explain", add_help=False, help="why a task's call would hit or miss the cache")
    gc = sub.add_parser("gc", help="remove old cache entries and the objects only they used")
    gc.add_argument(
        "--older-than",
        type=_days,
        default=DEFAULT_GC_DAYS,
        metavar="DAYS",
        help=f"remove entries created more than DAYS ago (default {DEFAULT_GC_DAYS:g}; "
        "0 removes every entry)",
    )
    add_store_option(gc)
    ns = p.parse_args(args)
    return _gc(ns)


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not days >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number of days >= 0, got {text!r}")
    return days


def _gc(ns: argparse.Namespace) -> int:
    store = existing_store(ns.store)
    if store is None:
        print(f"no store at {store_url(ns.store)}: nothing to remove", file=sys.stderr)
        return EXIT_OK
    report = cachegc.gc(store, ns.older_than)
    print(
        f"removed {plural(report.entries_removed, 'cache entry', 'cache entries')}"
        f" and {plural(report.objects_removed, 'object')} ({_size(report.bytes_freed)}) "
        f"older than {ns.older_than:g} days from {store.url}"
    )
    if report.fingerprints_removed:
        print(
            f"and {plural(report.fingerprints_removed, 'code fingerprint document')} "
            "no remaining entry names"
        )
    return EXIT_OK


def _size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"  # pragma: no cover - the loop always returns


def _explain_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", metavar="FILE.py[:WORKFLOW]")
    p.add_argument("task", nargs="?", metavar="TASK", help="a task name or a node id")
    add_store_option(p)
    add_traceback_option(p)


def _explain(argv: Sequence[str]) -> int:
    ns, wf, given = wfargs.parse(
        "flowkit cache explain", EXPLAIN_DESCRIPTION, _explain_options, argv
    )
    if ns.task is None:
        raise UsageError("flowkit cache explain: error: missing TASK (a task name or a node id)")
    inputs = bind_inputs(wf, (), given)
    store = existing_store(ns.store) or Store(store_url(ns.store))
    explainer = Explainer(wf.graph, inputs, store)
    nodes = explainer.targets(ns.task)
    if not nodes:
        raise UsageError(
            f"workflow `{wf.name}` has no task or node {ns.task!r}; tasks: "
            + ", ".join(explainer.task_names())
        )
    for node in nodes:
        for report in explainer.explain(node):
            print(format_report(report))
    return EXIT_OK


_STATUS_TEXT = {"hit": "hit", "miss": "miss", "unknown": "cannot tell", "uncached": "not cached"}


def format_report(r: CallReport) -> str:
    """The lines printed for one call."""
    where = f"task `{r.task}`" + ("" if r.node == r.task else f" (node `{r.node}`)")
    lines = [f"{where}: {_STATUS_TEXT[r.status]}"]
    if r.status == "hit":
        stored = f", stored {format_time(r.entry.created)}" if r.entry is not None else ""
        lines.append(f"  key {(r.key or '?')[:16]}{stored}")
        return "\n".join(lines)
    lines += [f"  - {reason}" for reason in r.reasons]
    stored = "" if r.entry is None else format_time(r.entry.created)
    if r.status == "miss" and r.entry is not None:
        lines.append(f"  (compared with the nearest earlier entry, stored {stored})")
    if r.status == "unknown" and r.entry is not None:
        if r.changes:
            lines.append(f"  compared with the newest entry (stored {stored}):")
            lines += [f"  - {c}" for c in r.changes]
        else:
            lines.append("  the code and the known inputs match the newest entry")
    return "\n".join(lines)

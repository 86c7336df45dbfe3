"""``flowkit run FILE.py[:WORKFLOW] [--backend NAME] [--store URL] [--no-cache | --refresh]
[--resume RUN] [--quiet] [--PARAM VALUE ...]``.

Output policy: the workflow's output (its ``repr``, shortened) goes to stdout, alone, so
``flowkit run wf.py > out.txt`` keeps just the result; the run summary (id, status, tasks
run / cached / failed, wall time), errors and the progress line go to stderr. What tasks
print and log is captured with each attempt (:mod:`flowkit.capture`) and shown live on
stderr as ``[node] line`` (``--quiet``: not shown); anything else printed to stdout while
the run lasts (a callback, the driver) is sent to stderr too.

Exit codes: 0 the run succeeded; 1 a task failed (the message names the task, the node,
the attempts and the run id; ``--traceback`` adds the task's traceback); 2 the run could
not start (bad file, input, backend or store).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import reprlib
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from flowkit import capture, notify
from flowkit.api import run as fk_run
from flowkit.callbacks import Callback
from flowkit.cli import attach as cli_attach
from flowkit.cli import wfargs
from flowkit.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_store_option,
    add_traceback_option,
    parse_tags,
    plural,
    store_url,
)
from flowkit.cli.progress import ProgressLine, progress_for
from flowkit.engine import CacheMode
from flowkit.errors import BackendNotFoundError, FlowkitError, StoreError, TaskFailedError
from flowkit.records import Run
from flowkit.reprs import format_duration
from flowkit.secret import mask
from flowkit.store import Store

_OUTPUT_CHARS = 2000
_OUTPUT_LINES = 40

DESCRIPTION = """\
Run a workflow defined in a Python file.

FILE.py is imported as a module (its `if __name__ == "__main__":` block does not run);
:WORKFLOW picks a workflow when the file defines several. Workflow inputs are options,
converted by their annotations: --n 5, --depths 2,4,8 or --depths '[2,4,8]', --flag true.

exit codes: 0 success, 1 a task failed, 2 bad usage or bad input
"""


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", metavar="FILE.py[:WORKFLOW]")
    p.add_argument(
        "--backend",
        metavar="NAME",
        default=None,
        help="local, threads, ray or any installed backend (default: $FLOWKIT_BACKEND or local)",
    )
    add_store_option(p)
    p.add_argument(
        "--read-only",
        action="store_true",
        help="serve cached calls from a store this run must not write (compute misses unstored)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    mode.add_argument(
        "--refresh", action="store_true", help="recompute cached tasks and overwrite their entries"
    )
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="reuse every call of run RUN (an id or unique prefix) that succeeded and whose "
        "key still matches; run the failed, interrupted and changed ones",
    )
    p.add_argument(
        "--tag",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="keep KEY=VALUE in the run's header (repeatable; shown by flowkit runs and the UI)",
    )
    p.add_argument(
        "--run-id",
        metavar="ID",
        help="give the run this id (letters, digits, '._-'; no run of that id in the store)",
    )
    p.add_argument(
        "--pool-limit",
        metavar="POOL=N",
        action="append",
        default=[],
        help="at most N calls in flight at once for the tasks of @fk.task(pool=POOL) "
        "(repeatable; fk.run(limits=...))",
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="do not show what tasks print and log as they run (it is still kept with the run)",
    )
    p.add_argument(
        "--secret",
        metavar="NAME=env:VAR|file:PATH",
        action="append",
        default=[],
        help="fill the fk.Secret input NAME from an environment variable or a file's first "
        "line (repeatable; the same as --NAME env:VAR)",
    )
    p.add_argument(
        "--notify",
        metavar="URL",
        action="append",
        default=[],
        help="POST a Slack-compatible JSON message to URL when the run fails (repeatable; "
        "env:VAR or file:PATH read the URL from there, for URLs that are secrets)",
    )
    p.add_argument(
        "--notify-on",
        metavar="EVENTS",
        default="failed",
        help="for --notify: comma-separated events among "
        + ", ".join(notify.EVENTS)
        + " (default: failed)",
    )
    p.add_argument(
        "--callback",
        metavar="MODULE:FACTORY",
        action="append",
        default=[],
        help="attach the fk.Callback that FACTORY() returns (repeatable), e.g. "
        "flowkit.ml:MLflowTracker",
    )
    add_traceback_option(p)


class _Last(Callback):
    """Keeps the run record, so the summary can be printed after a failure too."""

    def __init__(self) -> None:
        self.run: Run | None = None

    def on_run_start(self, run: Run) -> None:
        self.run = run


def command(argv: Sequence[str]) -> int:
    argv, secrets = cli_attach.secret_options(argv)
    ns, wf, inputs = cli_attach.parse_with_secrets(
        secrets,
        cli_attach.target_of(argv, add_options),
        lambda: wfargs.parse("flowkit run", DESCRIPTION, add_options, argv),
    )
    cache: CacheMode = False if ns.no_cache else ("refresh" if ns.refresh else True)
    last = _Last()
    callbacks: list[Callback] = [last]
    callbacks += cli_attach.notifiers(ns.notify, ns.notify_on)
    callbacks += cli_attach.factories(ns.callback)
    progress = progress_for(sys.stderr, wf.graph)
    if progress is not None:
        callbacks.append(progress)
    try:
        with _task_output(quiet=ns.quiet, progress=progress):
            record = fk_run(
                wf,
                backend=ns.backend,
                store=Store(store_url(ns.store), read_only=True)
                if ns.read_only
                else store_url(ns.store),
                cache=cache,
                callbacks=callbacks,
                resume=ns.resume,
                run_id=ns.run_id,
                tags=parse_tags(ns.tag),
                limits=_pool_limits(ns.pool_limit),
                inputs=inputs,  # not **: an input may be named like an option (store, tags)
            )
    except TaskFailedError as e:
        _report_failure(e, last.run, ns)
        return EXIT_FAILED
    except (BackendNotFoundError, StoreError) as e:
        raise UsageError(str(e)) from e
    except FlowkitError as e:
        if last.run is None:  # refused before it started: bad inputs, a graph error
            raise UsageError(mask(f"{type(e).__name__}: {e}")) from e
        _report_failure(e, last.run, ns)
        return EXIT_FAILED
    if record.output is not None:
        print(format_output(record.output))
    print(summary_line(record), file=sys.stderr)
    return EXIT_OK


@contextlib.contextmanager
def _task_output(*, quiet: bool, progress: ProgressLine | None) -> Iterator[None]:
    """While the run lasts: stdout goes to stderr (only the result is printed on stdout);
    live task lines are drawn above the progress line, or not at all with ``quiet`` --
    ``FLOWKIT_QUIET`` is set too, so worker processes the run starts (Ray) inherit it."""
    saved_env = os.environ.get("FLOWKIT_QUIET")
    saved_live = capture.set_live(False) if quiet else None
    if quiet:
        os.environ["FLOWKIT_QUIET"] = "1"
    saved_sink = capture.set_live_sink(progress.print_above if progress is not None else None)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        capture.set_live_sink(saved_sink)
        if quiet:
            capture.set_live(saved_live)
            if saved_env is None:
                os.environ.pop("FLOWKIT_QUIET", None)
            else:
                os.environ["FLOWKIT_QUIET"] = saved_env


def _pool_limits(texts: Sequence[str]) -> dict[str, int]:
    """``["api=2"]`` as ``{"api": 2}``; UsageError naming a text that is not POOL=N (N >= 1)."""
    limits: dict[str, int] = {}
    for text in texts:
        pool, sep, count = text.partition("=")
        if not sep or not pool or not count.isdecimal() or not count.isascii() or int(count) < 1:
            raise UsageError(f"--pool-limit {text!r}: write POOL=N, N a whole number >= 1")
        limits[pool] = int(count)
    return limits


def summary_line(run: Run) -> str:
    """``run <id> succeeded in 1.23s: 5 tasks run, 3 cached, 0 failed``."""
    s = run.summary()
    return (
        f"run {run.id} {run.status} in {format_duration(run.duration)}: "
        f"{plural(s['run'], 'task')} run, {s['cached']} cached, {s['failed']} failed"
    )


def _report_failure(e: FlowkitError, run: Run | None, ns: argparse.Namespace) -> None:
    """The failure on stderr, secrets masked (a task's error may quote one it was given)."""
    err = sys.stderr
    if ns.traceback:
        remote = getattr(e, "remote_traceback", None)
        if remote:
            print(mask(remote.rstrip()), file=err)
        else:
            print(mask("".join(traceback.format_exception(e)).rstrip()), file=err)
    print(mask(f"flowkit run: {e}"), file=err)
    if run is not None:
        print(summary_line(run), file=err)
        store = f" --store {ns.store}" if ns.store else ""
        hint = "" if ns.traceback else "; add --traceback for the task's traceback"
        print(f"details: flowkit runs show {run.id}{store}{hint}", file=err)


_repr = reprlib.Repr()
_repr.maxlevel = 4
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxfrozenset = _repr.maxdeque = 30
_repr.maxdict = 30
_repr.maxstring = 400
_repr.maxlong = 200
_repr.maxother = _OUTPUT_CHARS


def format_output(value: Any) -> str:
    """A readable, bounded ``repr``: long containers elided (``...``), then at most 40
    lines and 2000 characters, with a note saying how much was cut."""
    if isinstance(value, (list, tuple, dict, set, frozenset, str, int)):
        text = _repr.repr(value)
    else:
        text = repr(value)
    lines = text.splitlines() or [""]
    cut = len(lines) > _OUTPUT_LINES or len(text) > _OUTPUT_CHARS
    if cut:
        kept = "\n".join(lines[:_OUTPUT_LINES])[:_OUTPUT_CHARS]
        return f"{kept}\n... ({len(text)} characters in all, shortened)"
    return text

"""The ``flowkit`` command line: ``run``, ``graph``, ``runs list|show|logs|output``,
``cache explain|gc``, ``ui``, ``report``, ``serve``.

``main(argv)`` returns the exit code (the console script ``flowkit`` and ``python -m
flowkit`` call it). Exit codes: 0 success, 1 a task failed, 2 bad usage or bad input.

Policy: the CLI owns the terminal. A problem the user can fix is one line on stderr
(``flowkit run: error: ...``), no traceback unless ``--traceback`` is given; an unexpected
error (a bug) prints its traceback and exits 1. flowkit's log records of level WARNING and
above go to stderr while a command runs (``-v`` for INFO). Each command lives in its own
module; see ``docs/cli.md``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence

from flowkit.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from flowkit.cli.loading import LoadError
from flowkit.cli.wfargs import HelpShown
from flowkit.errors import FlowkitError

USAGE = """\
usage: flowkit [-v] COMMAND ...

commands:
  run FILE.py[:WORKFLOW] [--backend NAME] [--store URL] [--no-cache | --refresh] [--PARAM VALUE ...]
                                   run a workflow
  graph FILE.py[:WORKFLOW] [--format text|mermaid|dot]
                                   print a workflow's typed graph
  runs list [--store URL] [--limit N] [--status S] [--workflow W]
                                   recent runs
  runs show RUN_ID [--store URL]   one run and its task calls
  runs logs RUN_ID [NODE] [--attempt N]
                                   what a run's calls printed and logged
  runs output RUN_ID [NODE] [-o FILE]
                                   a run's (or a call's) output: JSON, or written to FILE
  cache explain FILE.py[:WORKFLOW] TASK [--PARAM VALUE ...]
                                   why a task's call would hit or miss the cache
  cache gc [--older-than DAYS] [--store URL]
                                   remove old cache entries and unused objects
  ui [--store URL] [--host 127.0.0.1] [--port 8765] [--tracking-uri URI]
                                   browse the runs in a web page (needs flowkit[ui])
  report RUN_ID [-o FILE] [--store URL]
                                   one run as a self-contained HTML file
  serve MODEL[@ALIAS] [--port 8080] [--follow SECONDS | --pin] [--canary MODEL@ALIAS:FRACTION]
                                   serve a registered model over HTTP (needs flowkit[serve])
  schedule add FILE.py:WORKFLOW --cron EXPR [--name N] | list | pause N | resume N | remove N
                                   run a workflow on a clock (fired by `flowkit scheduler`)
  schedule backfill N --from ISO --to ISO
                                   start the fires of a window that were not fired
  scheduler [FILE.py ...] [--once] [--now ISO]
                                   the loop that fires schedules and triggers
  trigger add FILE.py:WORKFLOW --on-success W | --on-failure W | --on-alias M@A | --on-new URL
          | list | pause N | resume N | remove N
                                   run a workflow when something happens
  submit FILE.py[:WORKFLOW] --address http://HEAD:8265 [--PARAM VALUE ...]
                                   run a workflow as a Ray Job; prints its run id at once

options:
  -h, --help     show this help (or a command's: flowkit run --help, flowkit run FILE.py --help)
  -v, --verbose  show flowkit's INFO log records
  --version      print the flowkit version

The store defaults to $FLOWKIT_STORE or ./.flowkit, the backend to $FLOWKIT_BACKEND or local.
exit codes: 0 success, 1 a task failed, 2 bad usage or bad input
"""


def _commands() -> dict[str, Callable[[Sequence[str]], int]]:
    # imported here so `flowkit --help` stays quick and one broken command cannot break others
    from flowkit.cli import commands_cache, commands_graph, commands_run, commands_runs

    return {
        "run": commands_run.command,
        "graph": commands_graph.command,
        "runs": commands_runs.command,
        "cache": commands_cache.command,
        "ui": _later("commands_ui", "command"),
        "report": _later("commands_report", "main"),
        "serve": _later("commands_serve", "command"),
        "schedule": _later("commands_schedule", "command"),
        "scheduler": _later("commands_schedule", "scheduler_command"),
        "trigger": _later("commands_trigger", "command"),
        "submit": _later("commands_submit", "command"),
    }


def _later(module: str, name: str) -> Callable[[Sequence[str]], int]:
    """The command ``name`` of ``flowkit.cli.<module>``, imported when it runs (the web
    commands import their extra's libraries only then)."""

    def run_command(argv: Sequence[str]) -> int:
        import importlib

        found: Callable[[Sequence[str]], int] = getattr(
            importlib.import_module(f"flowkit.cli.{module}"), name
        )
        return found(argv)

    return run_command


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``flowkit`` command; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = False
    while args and args[0] in ("-v", "--verbose"):
        verbose = True
        args.pop(0)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return EXIT_OK if args else EXIT_USAGE
    if args[0] == "--version":
        from flowkit import __version__

        print(f"flowkit {__version__}")
        return EXIT_OK
    commands = _commands()
    name, rest = args[0], args[1:]
    if name not in commands:
        _error(
            f"flowkit: unknown command {name!r}; commands: {', '.join(commands)} "
            "(see `flowkit --help`)"
        )
        return EXIT_USAGE
    with _log_to_stderr(logging.INFO if verbose else logging.WARNING):
        return _call(commands[name], rest, _label(name, rest))


def _label(name: str, rest: Sequence[str]) -> str:
    """Names the subcommand in messages: ``flowkit cache explain: error: ...``."""
    if name in ("runs", "cache") and rest and not rest[0].startswith("-"):
        return f"{name} {rest[0]}"
    return name


@contextlib.contextmanager
def _log_to_stderr(level: int) -> Iterator[None]:
    """flowkit's log records of ``level`` and above go to stderr while a command runs."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("flowkit: %(levelname)s: %(message)s"))
    logger = logging.getLogger("flowkit")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def _call(command: Callable[[Sequence[str]], int], rest: list[str], label: str) -> int:
    """Run ``command(rest)`` and turn what it raises into a message and an exit code."""
    try:
        return command(rest)
    except HelpShown:
        return EXIT_OK
    except SystemExit as e:  # argparse after printing a command's --help
        return e.code if isinstance(e.code, int) else (EXIT_OK if e.code is None else EXIT_USAGE)
    except (UsageError, FlowkitError) as e:
        if "--traceback" in rest:
            traceback.print_exception(_cause(e), file=sys.stderr)
        _error(_one_line(e, label))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _error(f"flowkit {label}: interrupted")
        return 130
    except BrokenPipeError:  # `flowkit runs list | head`: the reader left; stop quietly
        with contextlib.suppress(OSError, ValueError):
            # as the Python docs advise: no second BrokenPipeError when stdout is flushed at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception:
        traceback.print_exc(file=sys.stderr)
        _error(f"flowkit {label}: internal error (the traceback above); please report it")
        return EXIT_FAILED


def _cause(e: BaseException) -> BaseException:
    cause = getattr(e, "cause", None)
    return cause if isinstance(cause, BaseException) else e


def _one_line(e: BaseException, command: str) -> str:
    text = str(e)
    if isinstance(e, UsageError) and text.startswith("flowkit"):
        first = text
    elif isinstance(e, (UsageError, LoadError)):
        first = f"flowkit {command}: error: {text}"
    else:
        first = f"flowkit {command}: error: {type(e).__name__}: {text}"
    return " ".join(first.split("\n"))


def _error(message: str) -> None:
    print(message, file=sys.stderr)


__all__ = ["main"]

"""Parse a command whose options depend on a workflow file (``run``, ``cache explain``).

Two passes: the first finds ``FILE.py[:WORKFLOW]`` among the command's own arguments;
the file is loaded; the second pass parses everything with one parser that also has an
option per workflow input. So ``flowkit run FILE.py --help`` lists the workflow's inputs
with their types and defaults, and every error is argparse's one line (exit 2).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from flowkit.cli.common import CliParser, UsageError
from flowkit.cli.loading import load_workflow
from flowkit.cli.params import add_workflow_options, check_runnable, workflow_inputs
from flowkit.workflow import WorkflowDef

AddOptions = Callable[[argparse.ArgumentParser], None]


class HelpShown(Exception):
    """``--help`` was printed; the command ends with exit 0."""


def parse(
    prog: str,
    description: str,
    add_options: AddOptions,
    argv: Sequence[str],
    *,
    epilog: str | None = None,
) -> tuple[argparse.Namespace, WorkflowDef[..., Any], dict[str, Any]]:
    """(namespace, workflow, inputs given) for ``argv``; ``add_options`` must add a
    positional ``target``. Raises :class:`HelpShown` after printing help."""
    # no abbreviations here: `--n 5` (an input `n`) must not be read as a prefix of the
    # command's own options (`--no-cache`, `--notify`), which fails when it is ambiguous
    first = CliParser(prog=prog, add_help=False, allow_abbrev=False)
    add_options(first)
    first.add_argument("-h", "--help", action="store_true")
    known, _ = first.parse_known_args(list(argv))
    if known.target is None:
        full = _parser(prog, description, add_options, epilog)
        if known.help:
            full.print_help()
            raise HelpShown
        full.parse_args(list(argv))  # reports the missing FILE as a usage error
        raise UsageError(f"{prog}: error: missing FILE.py[:WORKFLOW]")
    wf = load_workflow(known.target)
    full = _parser(prog, description, add_options, epilog)
    add_workflow_options(full, wf)
    try:
        ns = full.parse_args(list(argv))
    except SystemExit as e:  # argparse exits 0 after printing --help
        if e.code in (0, None):
            raise HelpShown from None
        raise
    problem = check_runnable(wf)
    if problem is not None:
        raise UsageError(problem)
    return ns, wf, workflow_inputs(ns)


def _parser(prog: str, description: str, add_options: AddOptions, epilog: str | None) -> CliParser:
    p = CliParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(p)
    return p

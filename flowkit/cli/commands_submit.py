"""``flowkit submit FILE.py[:WORKFLOW] --address http://HEAD:8265 [--store URL] [--backend B]
[--tag K=V] [--run-id ID] [--notify URL] [--working-dir DIR] [--wait] [--PARAM VALUE ...]``.

Runs a workflow on a Ray cluster as a Ray Job (:mod:`flowkit.automation.raysubmit`), so the
machine that submits it may then go to sleep. The workflow and its inputs are checked here
first, as ``flowkit run`` checks them (a bad input is exit 2 and nothing is submitted); the
inputs travel as the texts given. The run id goes to stdout at once, alone (``RUN=$(flowkit
submit ...)``); the Ray job id and how to follow the run go to stderr.

Exit codes: 0 submitted (with ``--wait``: the run succeeded); 1 with ``--wait``, the run did
not succeed; 2 bad usage or input, or no job server at the address (nothing submitted).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from flowkit.automation import rayfollow, raysubmit
from flowkit.automation.launch import Launch
from flowkit.automation.rayjobs import RayJobError
from flowkit.cli import wfargs
from flowkit.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CliParser,
    UsageError,
    add_store_option,
    add_traceback_option,
    parse_tags,
    say,
    store_url,
)
from flowkit.cli.params import option_names
from flowkit.errors import StoreError
from flowkit.records import new_run_id
from flowkit.reprs import format_duration
from flowkit.store import Store
from flowkit.workflow import WorkflowDef

DESCRIPTION = """\
Run a workflow on a Ray cluster as a Ray Job; print its run id at once.

The workflow file's folder is shipped to the cluster (without .flowkit, .venv, .git and files
over 16 MiB), so modules beside the file import there. The run's tasks run on the cluster's
Ray backend (--backend to choose another). The store must be one the cluster reaches.
Follow the run with `flowkit runs show RUN` and `flowkit runs logs RUN`.

exit codes: 0 submitted (--wait: succeeded), 1 --wait: the run did not succeed,
2 bad usage or input, or no Ray job server at --address
"""


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", metavar="FILE.py[:WORKFLOW]")
    p.add_argument(
        "--address",
        metavar="URL",
        help="the Ray job server: the head's dashboard, http://HEAD:8265 (required)",
    )
    add_store_option(p)
    p.add_argument(
        "--backend",
        metavar="NAME",
        default=None,
        help=f"the run's backend on the cluster (default: {raysubmit.DEFAULT_BACKEND})",
    )
    p.add_argument(
        "--tag",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="keep KEY=VALUE in the run's header (repeatable)",
    )
    p.add_argument("--run-id", metavar="ID", help="give the run this id (default: a new one)")
    p.add_argument(
        "--notify",
        metavar="URL",
        action="append",
        default=[],
        help="a webhook told when the run ends (repeatable; as flowkit run --notify, read on "
        "the cluster: env:VAR and file:PATH there)",
    )
    p.add_argument(
        "--working-dir",
        metavar="DIR",
        help="the folder shipped to the cluster (default: the workflow file's folder)",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="follow the run until it ends; exit 0 if it succeeded, 1 if not",
    )
    add_traceback_option(p)


def command(argv: Sequence[str]) -> int:
    try:
        ns, wf, _ = wfargs.parse("flowkit submit", DESCRIPTION, add_options, argv)
    except argparse.ArgumentError as e:  # an input named like one of this command's options
        raise UsageError(
            f"flowkit submit: error: {e}: a workflow input has the name of one of flowkit "
            "submit's own options; rename the input to submit this workflow"
        ) from e
    if not ns.address:
        raise UsageError(
            "flowkit submit: error: --address is required: the Ray job server, "
            "http://HEAD:8265 (see `flowkit submit --help`)"
        )
    launch = Launch(
        target=ns.target,
        run_id=ns.run_id or new_run_id(),
        store=store_url(ns.store),
        params=input_texts(wf, argv),
        tags=parse_tags(ns.tag),
        backend=ns.backend,
        address=ns.address,
        notify=tuple(ns.notify),
    )
    try:
        job = raysubmit.submit(launch, working_dir=ns.working_dir, workflow=wf.name)
    except (RayJobError, StoreError) as e:
        raise UsageError(str(e)) from e
    print(launch.run_id, flush=True)
    store = f" --store {ns.store}" if ns.store else ""
    say(
        f"submitted run {launch.run_id} as Ray job {job} to {ns.address}; follow it: "
        f"flowkit runs show {launch.run_id}{store}, flowkit runs logs {launch.run_id}{store}"
    )
    if not ns.wait:
        return EXIT_OK
    return _wait(Store(launch.store), launch.run_id, store)


def input_texts(wf: WorkflowDef[..., Any], argv: Sequence[str]) -> dict[str, str]:
    """The workflow inputs given in ``argv``, as the texts given (the last one of a repeated
    option), by input name; ``wfargs.parse`` has checked that each converts."""
    p = CliParser(prog="flowkit submit", add_help=False)
    add_options(p)
    p.add_argument("-h", "--help", action="store_true")
    for inp in wf.inputs:
        p.add_argument(*option_names(inp.name), dest=f"input:{inp.name}", default=None)
    ns = p.parse_args(list(argv))
    return {
        key.split(":", 1)[1]: value
        for key, value in vars(ns).items()
        if key.startswith("input:") and value is not None
    }


def _wait(store: Store, run_id: str, store_option: str) -> int:
    try:
        header = rayfollow.wait(store, run_id)
    except KeyboardInterrupt:
        say(f"stopped following; the run goes on: flowkit runs show {run_id}{store_option}")
        raise
    status = header.get("status")
    took = header.get("duration")
    line = f"run {run_id} {status}"
    if isinstance(took, (int, float)):
        line += f" in {format_duration(took)}"
    say(line)
    if status == "succeeded":
        return EXIT_OK
    error = header.get("error")
    if isinstance(error, str) and error:
        say(f"flowkit submit: {' '.join(error.split())[:2000]}")
    say(f"details: flowkit runs show {run_id}{store_option}")
    return EXIT_FAILED

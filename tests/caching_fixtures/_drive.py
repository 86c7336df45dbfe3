"""Test driver for the caching end-to-end tests: run a workflow with ``fk.run``, print JSON.

A fixture workflow file ends with::

    if __name__ == "__main__":
        from _drive import main
        main(the_workflow)

and the test runs it as ``python FILE.py [--store URL] [--cache true|false|refresh]
[--backend NAME] [--repeat N] [--until PATH] [--workflow NAME] [NAME=JSON ...]`` in a fresh
interpreter (``--workflow`` picks one of several workflows given to ``main``; ``--until`` runs
again and again, at least ``--repeat`` times, until PATH exists). Each run prints one JSON
line on stdout: ``{"id", "status", "output", "cached": {node: bool}, "keys": {node: key}}``; a
flowkit error prints ``{"error", "message", "cause", "cause_message", "run_id"}`` and exits 1.
flowkit's log warnings go to stderr, one per line.

``$FK_STORE_OPTIONS`` (JSON) turns the store URL into ``fk.Store(url, **options)``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

import flowkit as fk


def _parse(argv: list[str]) -> tuple[dict[str, str], dict[str, Any]]:
    opts = {
        "store": "",
        "cache": "true",
        "backend": "local",
        "repeat": "1",
        "workflow": "",
        "until": "",
    }
    inputs: dict[str, Any] = {}
    it = iter(argv)
    for arg in it:
        if arg.startswith("--"):
            opts[arg[2:]] = next(it)
        else:
            name, _, value = arg.partition("=")
            inputs[name] = json.loads(value)
    return opts, inputs


def main(*workflows: fk.WorkflowDef[..., Any], **extra_inputs: Any) -> None:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    opts, inputs = _parse(sys.argv[1:])
    inputs.update(extra_inputs)
    wf = next(w for w in workflows if opts["workflow"] in ("", w.name))
    store: Any = opts["store"] or None
    options = os.environ.get("FK_STORE_OPTIONS")
    if store is not None and options:
        store = fk.Store(store, **json.loads(options))
    cache: Any = {"true": True, "false": False}.get(opts["cache"], opts["cache"])
    done = 0
    while done < int(opts["repeat"]) or (opts["until"] and not os.path.exists(opts["until"])):
        done += 1
        try:
            run = fk.run(wf, store=store, backend=opts["backend"], cache=cache, **inputs)
        except fk.FlowkitError as e:
            cause = e.__cause__
            print(
                json.dumps(
                    {
                        "error": type(e).__name__,
                        "message": str(e),
                        "cause": None if cause is None else type(cause).__name__,
                        "cause_message": None if cause is None else str(cause),
                        "run_id": getattr(e, "run_id", None),
                    }
                ),
                flush=True,
            )
            sys.exit(1)
        print(
            json.dumps(
                {
                    "id": run.id,
                    "status": run.status,
                    "output": run.output,
                    "cached": {t.node: t.cached for t in run.tasks},
                    "keys": {t.node: t.key for t in run.tasks},
                },
                default=repr,
            ),
            flush=True,
        )

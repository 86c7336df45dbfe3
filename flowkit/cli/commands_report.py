"""``flowkit report RUN [--store URL] [-o FILE]``: write one run as a self-contained HTML file.

The file (default ``<run id>.html`` in the current folder) is the run page of ``flowkit ui``,
frozen: it opens from disk with no server and no network (:mod:`flowkit.ui.report`). Needs
the ``ui`` extra. A run id may be a unique prefix; an unknown or ambiguous one exits 2
naming the candidates, as ``flowkit runs`` does.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from flowkit import runs
from flowkit.cli.common import (
    EXIT_OK,
    CliParser,
    UsageError,
    add_store_option,
    existing_store,
    store_url,
)
from flowkit.runview import RunView


def command(argv: Sequence[str]) -> int:
    p = CliParser(
        prog="flowkit report",
        description="Write a run as one self-contained HTML file (opens from disk, offline).",
    )
    p.add_argument("run_id", metavar="RUN", help="a run id, or a unique prefix of one")
    add_store_option(p)
    p.add_argument(
        "-o",
        "--output",
        dest="file",
        metavar="FILE",
        help="where to write the report (default: <run id>.html)",
    )
    ns = p.parse_args(list(argv))
    try:
        from flowkit.ui.report import write_report
    except ImportError as exc:  # the ui extra is not installed
        raise UsageError(
            f'flowkit report needs the ui extra ({exc}): pip install "flowkit[ui]"'
        ) from exc
    run = _run(ns.run_id, ns.store)
    path = write_report(run, ns.file or f"{run.id}.html")
    print(path, file=sys.stdout)
    return EXIT_OK


def _run(run_id: str, store_option: str | None) -> RunView:
    """The run ``run_id`` names (UsageError, exit 2, naming the candidates if none or several)."""
    store = existing_store(store_option)
    if store is None:
        raise UsageError(
            f"no run {run_id!r}: there is no store at {store_url(store_option)}; "
            "pass --store URL or set FLOWKIT_STORE"
        )
    try:
        return runs.get(run_id, store=store)
    except runs.UnknownRunError as e:
        raise UsageError(str(e)) from e


main = command  # the name flowkit.cli registers it by

"""``flowkit graph FILE.py[:WORKFLOW] [--format text|mermaid|dot]``: print the traced graph.

Nothing runs: the file is imported (which traces the workflow) and the graph is rendered by
``Graph.to_text`` / ``to_mermaid`` / ``to_dot`` on stdout, ready to paste or pipe into
``dot -Tsvg``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from flowkit.cli.common import EXIT_OK, CliParser, add_traceback_option
from flowkit.cli.loading import load_workflow


def command(argv: Sequence[str]) -> int:
    p = CliParser(
        prog="flowkit graph",
        description="Print a workflow's typed graph without running it.",
    )
    p.add_argument("target", metavar="FILE.py[:WORKFLOW]")
    p.add_argument(
        "--format",
        choices=("text", "mermaid", "dot"),
        default="text",
        help="text (default): one line per node; mermaid: a flowchart for Markdown; dot: Graphviz",
    )
    add_traceback_option(p)
    ns = p.parse_args(list(argv))
    graph = load_workflow(ns.target).graph
    render = {"text": graph.to_text, "mermaid": graph.to_mermaid, "dot": graph.to_dot}
    sys.stdout.write(render[ns.format]())
    return EXIT_OK

"""``flowkit ui``: serve the web pages over a store (:mod:`flowkit.ui`) with uvicorn.

Binds 127.0.0.1 unless ``--host`` says otherwise, and then answers only requests naming a
loopback host (a web page elsewhere cannot reach it through a DNS name rebound to
127.0.0.1). The pages have no authentication: binding another address prints a warning.
The web libraries are an extra (``pip install "flowkit[ui]"``), imported only when the
command runs, so ``import flowkit`` and the other commands never load them.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from flowkit import runs
from flowkit.cli.common import (
    EXIT_OK,
    CliParser,
    UsageError,
    add_store_option,
    is_loopback,
    say,
    store_url,
)
from flowkit.errors import FlowkitError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
_EXTRA = ("starlette", "uvicorn", "jinja2", "markdown_it")
# The Host header values a loopback server answers (without the port).
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def command(argv: Sequence[str]) -> int:
    ns = _parser().parse_args(list(argv))
    _check_extra()
    import uvicorn

    from flowkit.ui.app import create_app

    url = store_url(ns.store)
    try:
        runs.open_store(url)
    except FlowkitError as exc:  # served anyway: each page says so until the store is readable
        say(f"warning: {exc}")
    loopback = is_loopback(ns.host)
    if not loopback:
        say(
            f"warning: flowkit ui has no authentication; on {ns.host} anyone who can reach "
            f"port {ns.port} can read every run in {url}"
        )
    # Starlette's host check cannot parse "[::1]:port": an IPv6 loopback answers any Host
    checked = loopback and ":" not in ns.host
    app = create_app(
        url, tracking_uri=ns.tracking_uri, allowed_hosts=LOOPBACK_NAMES if checked else None
    )
    shown = f"[{ns.host}]" if ":" in ns.host else ns.host
    say(f"flowkit ui: serving {url} at http://{shown}:{ns.port}/ (Ctrl-C to stop)")
    uvicorn.run(app, host=ns.host, port=ns.port, log_level="warning", access_log=False)
    return EXIT_OK


def _parser() -> CliParser:
    p = CliParser(
        prog="flowkit ui",
        description="Browse the runs of a store in a web page (read-only). Needs the ui "
        'extra: pip install "flowkit[ui]".',
    )
    add_store_option(p)
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to bind (default {DEFAULT_HOST}; the pages have no authentication)",
    )
    p.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        default=None,
        help="MLflow tracking URI: adds the Models pages (needs flowkit[ml])",
    )
    return p


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number (1-65535), got {text!r}")
    return int(text)


def _check_extra() -> None:
    missing = []
    for name in _EXTRA:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise UsageError(
            f"flowkit ui needs the ui extra (missing: {', '.join(missing)}): "
            'pip install "flowkit[ui]"'
        )


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "command"]

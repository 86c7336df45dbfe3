"""What every ``flowkit`` command shares: the usage error, the parser, the store, formatting.

Policy: a command reports a problem the user can fix (a bad path, value, name or store) by
raising :class:`UsageError`; :func:`flowkit.cli.main` prints it as one line on stderr and
exits 2. Argument-parsing errors take the same path (:class:`CliParser` raises instead of
printing argparse's two-line usage block). Tables and durations are formatted here so that
``runs list``, ``runs show`` and ``run`` look alike.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from flowkit.config import default_store_url
from flowkit.store import Store

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad usage or bad input: printed as one line on stderr, exit code 2."""


class CliParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors raise :class:`UsageError` (one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message} (see `{self.prog} --help`)")


def add_store_option(parser: argparse.ArgumentParser) -> None:
    """``--store URL``, defaulting to ``$FLOWKIT_STORE`` or ``./.flowkit`` (read when used)."""
    parser.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help="store URL or path (default: $FLOWKIT_STORE or ./.flowkit)",
    )


def add_traceback_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="show Python tracebacks of errors (hidden by default)",
    )


def store_url(option: str | None) -> str:
    """The store URL a command uses: ``--store``, else ``$FLOWKIT_STORE``, else ``./.flowkit``."""
    return option or default_store_url()


def existing_store(option: str | None) -> Store | None:
    """Open the store for a read or cleanup command; None if a local store does not exist.

    A read-only command must not create ``./.flowkit`` in whatever folder it is run from, so
    a missing local folder is "no store" rather than a new one. An existing location is
    checked (format marker, reachability) and a StoreError propagates.
    """
    store = Store(store_url(option))
    if store.local and not os.path.isdir(store.root):
        return None
    store.check()
    return store


def format_time(stamp: Any) -> str:
    """A Unix time as local ``YYYY-MM-DD HH:MM:SS``; ``-`` when missing."""
    if not isinstance(stamp, (int, float)) or isinstance(stamp, bool):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces, with a header row."""
    cells = [list(headers)] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 task``, ``2 tasks``; ``many`` for irregular plurals."""
    return f"{n} {word}" if n == 1 else f"{n} {many or word + 's'}"


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def is_loopback(host: str) -> bool:
    """Whether a server bound to ``host`` answers this machine only (``flowkit ui``, ``serve``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: assume it can be reached from elsewhere
        return False


def say(message: str) -> None:
    """A line on stderr, now (a server's address, a warning)."""
    print(message, file=sys.stderr, flush=True)


def parse_tags(texts: Sequence[str]) -> dict[str, str]:
    """``["team=ml", "why=retry"]`` as a dict; UsageError naming a text without ``=``."""
    tags: dict[str, str] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise UsageError(f"--tag {text!r}: write KEY=VALUE")
        tags[key] = value
    return tags

"""``flowkit report``: one run as a single self-contained HTML file, :func:`write_report`.

The file is :func:`flowkit.ui.runpage.run_page` with ``report=True``: CSS, JS and SVG inline,
every call the task table shows embedded (its inputs, output previews, logs, traceback,
cards), images as ``data:`` URIs. It opens from disk with no network and no server, and
names nothing outside itself (:func:`external_refs` checks that).
"""

from __future__ import annotations

import os
import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path

from flowkit.runview import RunView
from flowkit.ui.runpage import run_page

_URL_ATTRS = frozenset({"src", "href", "action", "formaction", "poster", "data", "xlink:href"})
_OUTSIDE_RE = re.compile(r"[a-z][a-z0-9+.-]*://|//", re.IGNORECASE)  # any attribute
_LOCAL_RE = re.compile(r"(#|data:|mailto:)", re.IGNORECASE)  # in the page, or inline


def report_html(run: RunView) -> str:
    """The report of ``run`` as HTML text."""
    return run_page(run, report=True)


def write_report(run: RunView, path: str | os.PathLike[str]) -> Path:
    """Write the report of ``run`` to ``path`` (replaced whole: a reader never sees half a
    file); returns the path."""
    html = report_html(run)
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(html)
        os.chmod(tmp, 0o666 & ~_umask())  # as open() would make it (mkstemp's file is 0600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            outside = _OUTSIDE_RE.match(value.strip()) is not None
            if outside or (name in _URL_ATTRS and not _LOCAL_RE.match(value.strip())):
                self.found.append(f"<{tag} {name}={value!r}>")
            if name == "style" and value and "url(" in value:
                self.found.append(f"<{tag} style={value!r}>")


def external_refs(html: str) -> list[str]:
    """Attributes of ``html`` that would fetch or link outside the page (empty: none)."""
    parser = _Refs()
    parser.feed(html)
    parser.close()
    return parser.found


__all__ = ["external_refs", "report_html", "write_report"]

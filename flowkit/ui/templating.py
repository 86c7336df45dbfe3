"""The pages' templates: one cached Jinja2 :func:`env` (autoescape on) and :func:`render`.

Templates live in ``flowkit/ui/templates`` and every page extends ``base.html``, which has
the blocks ``title``, ``head``, ``content`` and ``scripts`` and takes these variables:

* ``inline_assets`` -- True for ``flowkit report``: the CSS and JS are inlined from
  ``static/`` (the file opens from disk with no network) and the nav has no server links;
* ``live_run_id`` -- set on a running run's page: ``flowkit.js`` polls
  ``/api/runs/<id>/status`` every 2 s;
* ``models_link`` -- show "Models" in the nav; the app sets it per request (when it has a
  tracking URI) through :func:`page_defaults`, so page modules need not pass it.

Filters: ``when`` (a Unix time as local ``YYYY-MM-DD HH:MM:SS``), ``duration`` (``0.42s``,
``2m05s``), ``bytes`` (``12.3 MB``), ``shorten(n)``, ``status_class`` (``status-failed``; a
status it does not know is ``status-unknown``), ``counts`` (a run's summary as ``3 run · 1
cached · 0 failed``), ``pathq`` (one URL path segment:
``/runs/{{ run.id }}/tasks/{{ node | pathq }}``). Values are escaped by autoescape; a
component that builds HTML itself returns :class:`markupsafe.Markup`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import time
from collections.abc import Iterator, Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from flowkit.reprs import format_duration

#: Statuses with a colour (runs, calls and graph nodes).
STATUS_NAMES: Final = frozenset(
    {
        "succeeded",
        "failed",
        "running",
        "pending",
        "submitted",
        "skipped",
        "interrupted",
        "lost",
        "unknown",
    }
)

_NO_DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType({})
_DEFAULTS: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "flowkit_ui_page_defaults", default=_NO_DEFAULTS
)


@functools.cache
def env() -> jinja2.Environment:
    """The templates' environment (built once): autoescape on for every template, undefined
    variables an error rather than silent blanks."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("flowkit.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        when=format_time,
        duration=format_duration,
        bytes=format_bytes,
        shorten=shorten,
        pathq=path_quote,
        status_class=status_class,
        counts=format_counts,
    )
    environment.globals.update(asset_text=asset_text, inline_assets=False, models_link=False)
    environment.globals.update(live_run_id=None)
    return environment


def render(template: str, **context: Any) -> str:
    """The page ``template`` rendered with ``context`` (over the request's defaults)."""
    return env().get_template(template).render({**_DEFAULTS.get(), **context})


@contextlib.contextmanager
def page_defaults(**defaults: Any) -> Iterator[None]:
    """Within the block (one request's thread), :func:`render` uses ``defaults`` for the
    variables a page does not pass itself (the nav's ``models_link``)."""
    token = _DEFAULTS.set(defaults)
    try:
        yield
    finally:
        _DEFAULTS.reset(token)


@functools.cache
def asset_text(name: str) -> Markup:
    """The text of ``static/<name>``, to inline in a ``<style>`` or ``<script>`` (the report).
    Only the shipped files; raw text there is not HTML-decoded, so it goes in unescaped, and
    it must not hold ``</`` (which would end the element early)."""
    if name not in ("flowkit.css", "flowkit.js"):
        raise ValueError(f"no static asset {name!r}")
    text = resources.files("flowkit.ui").joinpath("static", name).read_text(encoding="utf-8")
    if "</" in text:
        raise ValueError(f"static/{name} holds '</' and cannot be inlined")
    return Markup(text)  # our own shipped file, checked above


def format_time(stamp: Any) -> str:
    """A Unix time as local ``YYYY-MM-DD HH:MM:SS``; ``-`` when missing."""
    if not isinstance(stamp, (int, float)) or isinstance(stamp, bool):
        return "-"
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))
    except (OverflowError, OSError, ValueError):  # a planted 1e300
        return "-"


def format_bytes(n: Any) -> str:
    """``512 B``, ``1.5 KB``, ``12.3 MB`` (powers of 1024); ``-`` when unknown."""
    if not isinstance(n, (int, float)) or isinstance(n, bool) or n < 0:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def status_class(status: Any) -> str:
    """``status-<status>`` for a known status, ``status-unknown`` for anything else (a
    planted header's status never becomes a class name of its choosing)."""
    return f"status-{status}" if status in STATUS_NAMES else "status-unknown"


def format_counts(summary: Any) -> str:
    """A run's summary as ``3 run · 1 cached · 0 failed`` (``-`` for a missing count)."""
    found = summary if isinstance(summary, Mapping) else {}
    parts = []
    for name in ("run", "cached", "failed"):
        n = found.get(name)
        parts.append(f"{n if type(n) is int else '-'} {name}")
    return " · ".join(parts)


def path_quote(text: Any) -> str:
    """``text`` quoted to be one URL path segment (``train[3]`` -> ``train%5B3%5D``)."""
    return quote(str(text), safe="")


def shorten(text: Any, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    shown = str(text)
    return shown if len(shown) <= limit else shown[: max(0, limit - 1)] + "…"


__all__ = [
    "STATUS_NAMES",
    "asset_text",
    "env",
    "format_bytes",
    "format_counts",
    "format_duration",
    "format_time",
    "page_defaults",
    "path_quote",
    "render",
    "shorten",
    "status_class",
]

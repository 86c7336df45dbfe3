"""How the app answers: HTML pages and error pages, the headers every response carries,
and the per-request page defaults.

Errors are pages, never tracebacks: :func:`error_page` renders a :class:`Problem` with
``error.html`` (a ``<div class="error">`` naming it) and its status; :func:`guarded` turns
what a handler raises into one (an unknown run or node 404, an ambiguous run id 300 with the
candidates, a store that cannot be read 503, any other flowkit error 500, and a bug a 500
that says so, its traceback in the server's log only).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowkit import runs
from flowkit.errors import FlowkitError, StoreError
from flowkit.runview import RunView, UnknownNodeError
from flowkit.ui.templating import page_defaults, render

log = logging.getLogger(__name__)

#: Scripts and styles from this server only (no inline script: the pages have none),
#: images from it or inline (``data:`` PNGs of cards and previews).
CSP: Final = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class PageMiddleware:
    """Adds :data:`HEADERS` to every response and sets the page defaults (the nav's
    ``models_link``) for the request; handlers run in a thread pool, which inherits them."""

    def __init__(self, app: ASGIApp, *, models_link: bool) -> None:
        self.app = app
        self.models_link = models_link

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
            await send(message)

        with page_defaults(models_link=self.models_link):
            await self.app(scope, receive, send_with_headers)


def html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status)


@dataclass(frozen=True, slots=True)
class Problem:
    """What went wrong, as an error page says it."""

    status: int
    title: str
    message: str
    hint: str | None = None
    candidates: Sequence[RunView] = ()
    candidates_label: str = ""


def error_page(problem: Problem) -> HTMLResponse:
    """The error page: ``<h1>`` the title, ``<div class="error">`` the message."""
    fields = {f.name: getattr(problem, f.name) for f in dataclasses.fields(problem)}
    return html(render("error.html", **fields), problem.status)


Handler = Callable[..., Response]


def guarded(handler: Handler) -> Handler:
    """``handler`` with what it raises answered as an error page (as JSON ``{"error":
    message}`` on an ``/api/`` path)."""

    @functools.wraps(handler)
    def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return handler(request, *args, **kwargs)
        except Exception as exc:  # every error is a page; a bug's traceback goes to the log
            problem = problem_for(exc, request.path_params.get("run_id"))
            if request.url.path.startswith("/api/"):
                return JSONResponse({"error": problem.message}, status_code=problem.status)
            return error_page(problem)

    return wrapper


def problem_for(exc: Exception, run_id: str | None = None) -> Problem:
    """The problem a handler's exception is (``run_id``: the id the request named)."""
    if isinstance(exc, runs.UnknownRunError):
        return _unknown_run(exc, run_id or "")
    if isinstance(exc, UnknownNodeError):
        return Problem(404, "Unknown task", str(exc))
    if isinstance(exc, StoreError):
        return Problem(
            503,
            "The store cannot be read",
            str(exc),
            hint="flowkit ui reads the store given by --store (or $FLOWKIT_STORE, else "
            "./.flowkit); it never creates or changes one.",
        )
    if isinstance(exc, FlowkitError):
        return Problem(500, "flowkit could not show this page", f"{type(exc).__name__}: {exc}")
    log.error("flowkit ui: internal error", exc_info=exc)
    return Problem(
        500,
        "Internal error",
        f"flowkit ui failed on this page ({type(exc).__name__}); the server's log has the "
        "traceback. Please report it.",
    )


def _unknown_run(exc: runs.UnknownRunError, wanted: str) -> Problem:
    """300 with the candidates for an id that begins several runs, else 404."""
    candidates = exc.candidates
    if wanted and len(candidates) > 1 and all(c.id.startswith(wanted) for c in candidates):
        label = "Runs it begins (the newest first):"
        return Problem(300, "Ambiguous run id", str(exc), None, candidates, label)
    return Problem(404, "Unknown run", str(exc), None, candidates, "The newest runs:")


__all__ = [
    "CSP",
    "HEADERS",
    "PageMiddleware",
    "Problem",
    "error_page",
    "guarded",
    "html",
    "problem_for",
]

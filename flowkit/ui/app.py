"""The ``flowkit ui`` app: :func:`create_app` (Starlette), read-only over one store.

Routes (GET only; any other method is 405):

* ``/`` -- the runs (:mod:`flowkit.ui.runlist`);
* ``/runs/{run_id}`` and ``/runs/{run_id}/tasks/{node}`` -- a run and one call
  (:mod:`flowkit.ui.runpage`, :mod:`flowkit.ui.taskpage`); a unique prefix of a run id
  redirects to the full id;
* ``/workflows/{name}`` -- a workflow's runs over time (:mod:`flowkit.ui.workflowpage`);
* ``/api/runs/{run_id}/status`` -- the JSON a running run's page polls (:mod:`flowkit.ui.live`);
* ``/models...`` -- registered models (:mod:`flowkit.ui.models`), when a tracking URI is given;
* ``/static/...`` -- the CSS and JS shipped in the package.

Handlers are plain functions (Starlette runs them in a thread pool) that open the store on
each request: a store that appears, moves or breaks while the server runs is seen at once,
as an error page (:mod:`flowkit.ui.pages`) rather than a crash. Nothing is written.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from flowkit import runs
from flowkit.runview import RunView
from flowkit.store import Store
from flowkit.ui import live, runlist, workflowpage
from flowkit.ui.pages import PageMiddleware, Problem, error_page, guarded, html
from flowkit.ui.runpage import run_page
from flowkit.ui.taskpage import task_page
from flowkit.ui.templating import render

log = logging.getLogger(__name__)


class _Pages:
    """The handlers of one app: its store URL and the headers of runs that ended."""

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url
        self.headers = runlist.HeaderCache()

    def store(self) -> Store:
        """The store, opened read-only now (StoreError, shown as a page, if it cannot be)."""
        return runs.open_store(self.store_url)

    def runs(self, request: Request) -> Response:
        store = self.store()
        filters, page_no, problems = runlist.parse_filters(request.query_params)
        page = runlist.runs_page(store, filters, page_no, self.headers)
        return html(
            render(
                "runs.html",
                store_url=store.url,
                filters=filters,
                problems=problems,
                page=page,
                statuses=runlist.STATUSES,
                workflow_names=runlist.workflows(store, self.headers),
            )
        )

    def run(self, request: Request) -> Response:
        run = self._run(request)
        if isinstance(run, Response):
            return run
        return html(run_page(run))

    def task(self, request: Request) -> Response:
        run = self._run(request)
        if isinstance(run, Response):
            return run
        node = request.path_params["node"]
        if node not in run and not run.map_items(node):
            run[node]  # raises UnknownNodeError naming the run's nodes: a 404 page
        return html(task_page(run, node))

    def workflow(self, request: Request) -> Response:
        name = request.path_params["name"]
        views, more = workflowpage.workflow_runs(self.store(), name, self.headers)
        if not views:
            problem = Problem(404, "Unknown workflow", f"no run of workflow {name!r} in this store")
            return error_page(problem)
        return html(render("workflow.html", **workflowpage.page_context(views, name, more)))

    def status(self, request: Request) -> Response:
        run = runs.get(request.path_params["run_id"], store=self.store())
        return JSONResponse(live.status_doc(run))

    def _run(self, request: Request) -> RunView | Response:
        """The run the path names; a redirect to its full id when the path gave a prefix."""
        wanted = request.path_params["run_id"]
        run = runs.get(wanted, store=self.store())
        if run.id == wanted:
            return run
        path = request.url.path
        full = "/runs/" + quote(run.id, safe="") + path[len("/runs/" + quote(wanted, safe="")) :]
        return RedirectResponse(full, status_code=307)


def create_app(
    store_url: str,
    *,
    tracking_uri: str | None = None,
    allowed_hosts: Sequence[str] | None = None,
) -> Starlette:
    """The app over the store at ``store_url`` (read-only; a store that cannot be read is an
    error page on each request, not an error here). ``tracking_uri``: the MLflow tracking
    URI the models pages read. ``allowed_hosts``: the ``Host`` header values to answer
    (``flowkit ui`` passes the loopback names, so a page elsewhere cannot reach the server
    through a DNS name rebound to 127.0.0.1); None answers any."""
    pages = _Pages(store_url)
    routes: list[BaseRoute] = [
        _get("/", pages.runs),
        _get("/runs/{run_id}", pages.run),
        _get("/runs/{run_id}/tasks/{node:path}", pages.task),
        _get("/workflows/{name:path}", pages.workflow),
        _get("/api/runs/{run_id}/status", pages.status),
        Mount("/static", app=StaticFiles(packages=[("flowkit.ui", "static")]), name="static"),
        *_model_routes(tracking_uri, store_url),
    ]
    middleware = [Middleware(PageMiddleware, models_link=tracking_uri is not None)]
    if allowed_hosts is not None:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )


def _get(path: str, handler: Callable[[Request], Response]) -> Route:
    return Route(path, guarded(handler), methods=["GET"])


def _model_routes(tracking_uri: str | None, store_url: str) -> list[BaseRoute]:
    """The models pages' routes, when their module (and the ml extra) is there."""
    try:
        models = importlib.import_module("flowkit.ui.models")
    except ImportError as exc:
        log.info("flowkit ui: no models pages (%s)", exc)
        return []
    found: list[BaseRoute] = models.routes(tracking_uri, store_url=store_url)
    return found


def _http_error(request: Request, exc: Exception) -> Response:
    """404 (no such page) and 405 (not GET) as error pages."""
    assert isinstance(exc, HTTPException)
    titles = {404: "Not found", 405: "Method not allowed"}
    title = titles.get(exc.status_code, "Error")
    message = {
        404: f"there is no page at {request.url.path}",
        405: f"flowkit ui is read-only: {request.method} is not allowed here (GET only)",
    }.get(exc.status_code, exc.detail)
    response = error_page(Problem(exc.status_code, title, message))
    response.headers.update(exc.headers or {})
    return response


def _server_error(request: Request, exc: Exception) -> Response:
    """A bug outside the guarded handlers (a models page): a page, not a traceback."""
    del request
    log.error("flowkit ui: internal error", exc_info=exc)
    message = f"flowkit ui failed on this page ({type(exc).__name__}); see the server's log"
    return error_page(Problem(500, "Internal error", message))


__all__ = ["create_app"]

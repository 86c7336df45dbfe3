"""The models pages: ``/models`` (the registered models of an MLflow registry) and
``/models/{name}`` (its versions with their metrics and runs, its aliases with their
promote/rollback history, and the drift reports of the store's latest runs).

:func:`routes` gives the app its routes. They need a tracking URI (``flowkit ui
--tracking-uri URI``) and MLflow (``pip install "flowkit[ml]"``); without either, both pages
say how to enable them (:func:`unavailable_reason`). MLflow is imported in the handlers,
never with this module, so the app starts as fast without it. The registry is read through
:mod:`flowkit.ui.models_registry`, the drift reports through :mod:`flowkit.ui.models_drift`.

Errors are pages (:mod:`flowkit.ui.pages`): a registry that cannot be reached or read names
its URI (503), an unknown model is a 404, a store that cannot be read leaves the drift
section with a note rather than failing the page.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flowkit import runs
from flowkit.errors import FlowkitError
from flowkit.ui.models_drift import RUNS_LOOKED_AT, drift_reports
from flowkit.ui.models_registry import Registry, RegistryUnavailable, UnknownModel, shown_uri
from flowkit.ui.pages import Problem, error_page, guarded, html
from flowkit.ui.templating import render


def unavailable_reason(tracking_uri: str | None) -> str | None:
    """Why the models pages cannot show a registry (None: they can): no tracking URI, or
    no MLflow installed (looked up without importing it)."""
    if not tracking_uri:
        return "no tracking URI was given"
    if importlib.util.find_spec("mlflow") is None:
        return "MLflow is not installed"
    return None


def available(tracking_uri: str | None) -> bool:
    """True when the models pages can show the registry at ``tracking_uri``."""
    return unavailable_reason(tracking_uri) is None


def routes(tracking_uri: str | None, *, store_url: str | None = None) -> list[Route]:
    """The routes of ``/models`` and ``/models/{name}`` (GET). The drift reports come from
    the app's store (``request.app.state.store_url``), else from ``store_url``."""
    pages = _ModelPages(tracking_uri, store_url)
    return [
        Route("/models", guarded(pages.index), methods=["GET"]),
        Route("/models/{name:path}", guarded(pages.model), methods=["GET"]),
    ]


class _ModelPages:
    def __init__(self, tracking_uri: str | None, store_url: str | None) -> None:
        self.reason = unavailable_reason(tracking_uri)
        self.registry = Registry(tracking_uri) if tracking_uri and self.reason is None else None
        self.store_url = store_url

    def index(self, request: Request) -> Response:
        del request
        if self.registry is None:
            return self._off()
        try:
            models, more = self.registry.models()
        except RegistryUnavailable as exc:
            return self._unreachable(exc)
        return html(render("models.html", uri=self._uri(), models=models, more=more))

    def model(self, request: Request) -> Response:
        if self.registry is None:
            return self._off()
        name = request.path_params["name"]
        try:
            detail = self.registry.model(name)
        except RegistryUnavailable as exc:
            return self._unreachable(exc)
        except UnknownModel as exc:
            return error_page(Problem(404, "Unknown model", str(exc)))
        reports, drift_problem = self._drift(request)
        return html(
            render(
                "model.html",
                uri=self._uri(),
                model=detail,
                reports=reports,
                drift_problem=drift_problem,
                runs_looked_at=RUNS_LOOKED_AT,
            )
        )

    def _drift(self, request: Request) -> tuple[list[Any], str | None]:
        """The drift reports of the store, or why there are none to show."""
        url = getattr(request.app.state, "store_url", None) or self.store_url
        if not url:
            return [], "flowkit ui was not given a store, so no drift report is shown"
        try:
            return drift_reports(runs.open_store(url)), None
        except FlowkitError as exc:
            return [], f"the store's drift reports cannot be read: {exc}"

    def _uri(self) -> str:
        assert self.registry is not None
        return shown_uri(self.registry.uri)

    def _off(self) -> Response:
        return html(render("models_off.html", reason=self.reason or ""))

    def _unreachable(self, exc: RegistryUnavailable) -> Response:
        hint = (
            "flowkit ui reads the registry given by --tracking-uri, read-only; check that the "
            "server is up (or the database file is there) and restart flowkit ui if it moved."
        )
        return error_page(Problem(503, "The model registry cannot be reached", str(exc), hint))


__all__ = ["available", "routes", "unavailable_reason"]

"""The ``flowkit serve`` app: :func:`create_app` (Starlette) over one registered model.

Routes:

* ``POST /invocations`` -- MLflow's scoring protocol (:mod:`flowkit.serve.scoring`):
  ``{"predictions": [...]}``, with the headers ``X-Model-Version`` (the version that
  answered), ``X-Model-Alias`` (the alias it answered for: the primary's or the canary's)
  and ``X-Request-Id``;
* ``GET /health`` (and ``/ping``) -- 200 ``{"status": "ok", "version": ...}`` while a version
  is loaded, else 503; either way ``failure`` says why the newest version could not be loaded;
* ``GET /version`` -- ``{"name", "version", "alias", "run_id"}`` of the primary version;
* ``GET /metrics`` -- Prometheus text (:mod:`flowkit.serve.metrics`).

Errors are JSON ``{"error_code": ..., "message": ...}`` as MLflow's server writes them. The
app starts by loading the versions (so a server is ready when its port opens), then a thread
follows the aliases (:mod:`flowkit.serve.models`). After each answer, the request is recorded
in the prediction log, if one is configured, and queued for the shadow version: neither
delays nor fails the answer.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flowkit.serve import scoring
from flowkit.serve.batching import Batcher
from flowkit.serve.metrics import CONTENT_TYPE, ServeMetrics
from flowkit.serve.models import Deployment, Follower, LoadedModel, ServeConfig, Slot

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: A body is parsed on the event loop when it is at most this many bytes (else on a thread);
#: a batch is scored on the loop while its version's last batch took under INLINE_SECONDS.
INLINE_BYTES = 64 * 1024
INLINE_SECONDS = 0.002

SHADOW_QUEUE = 1000  # requests waiting for the shadow version; more are dropped and counted
# (request id, (parsed rows, columns named?), the version that answered)
_Shadowed = tuple[str, tuple["pd.DataFrame", bool], int]


class ShadowScorer:
    """Scores answered requests with the shadow version, on its own thread, in order."""

    def __init__(self, slot: Slot, metrics: ServeMetrics, app: _Handlers) -> None:
        self.slot = slot
        self.metrics = metrics
        self.app = app
        self._queue: queue.Queue[_Shadowed | None] = queue.Queue(SHADOW_QUEUE)
        self._thread: threading.Thread | None = None
        self._warned: set[int] = set()  # versions whose failure was logged

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="flowkit-serve-shadow", daemon=True)
        self._thread.start()

    def submit(self, request_id: str, rows: tuple[pd.DataFrame, bool], answered_by: int) -> None:
        """Queue a request's parsed rows (and whether their columns were named)."""
        try:
            self._queue.put_nowait((request_id, rows, answered_by))
        except queue.Full:
            self.metrics.shadowed(None, self.slot.alias, "dropped")

    def stop(self) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=5)
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            request_id, (parsed, named), answered_by = item
            loaded = self.slot.current
            if loaded is None:
                self.metrics.shadowed(None, self.slot.alias, "error")
                continue
            started = time.perf_counter()
            try:
                frame = scoring.conform(parsed, named, loaded)
                predictions = scoring.as_list(scoring.predict(loaded, frame))
            except Exception as exc:
                self.metrics.shadowed(loaded.version, loaded.alias, "error")
                if loaded.version in self._warned:
                    continue  # counted in the metrics; logged once per version
                self._warned.add(loaded.version)
                log.warning(
                    "shadow version %d failed on request %s: %s", loaded.version, request_id, exc
                )
                continue
            self.metrics.shadowed(loaded.version, loaded.alias, "ok")
            log.debug(
                "shadow: request %s scored by version %d (%s), answered by version %d",
                request_id,
                loaded.version,
                loaded.alias,
                answered_by,
            )
            self.app.record(request_id, loaded, frame, predictions, time.perf_counter() - started)


class _Handlers:
    """The routes of one app and what they share."""

    def __init__(self, config: ServeConfig, deployment: Deployment, metrics: ServeMetrics) -> None:
        self.config = config
        self.deployment = deployment
        self.metrics = metrics
        self.shadow: ShadowScorer | None = None
        # version -> (the loaded model, its batcher)
        self._batchers: dict[int, tuple[LoadedModel, Batcher]] = {}

    async def invocations(self, request: Request) -> Response:
        started = time.perf_counter()
        loaded = self.deployment.pick()  # read once: this request's version, whatever moves
        if loaded is None:
            response = _error(503, _unavailable(self.deployment.primary), "MODEL_NOT_LOADED")
            self.metrics.answered(None, self.config.alias, 503, time.perf_counter() - started)
            return response
        headers = {"X-Model-Version": str(loaded.version), "X-Model-Alias": loaded.alias}
        try:
            body = await scoring.read_body(request, self.config.max_body_bytes)
            scored = await self._score(body, request.headers.get("content-type"), loaded)
        except scoring.BadRequest as exc:
            response = _error(exc.status, exc.message, exc.code, headers)
            self.metrics.answered(
                loaded.version, loaded.alias, exc.status, time.perf_counter() - started
            )
            return response
        except Exception as exc:  # the model itself failed: the server goes on serving
            log.exception("version %d of %r failed to score a request", loaded.version, loaded.name)
            message = f"version {loaded.version} failed to score: {type(exc).__name__}: {exc}"
            response = _error(500, message, "INTERNAL_ERROR", headers)
            self.metrics.answered(loaded.version, loaded.alias, 500, time.perf_counter() - started)
            return response
        request_id = uuid.uuid4().hex
        latency = time.perf_counter() - started
        self.metrics.answered(loaded.version, loaded.alias, 200, latency)
        after = None  # no thread hop after the answer when there is nothing to do then
        if self.config.prediction_log is not None or self.shadow is not None:
            after = BackgroundTask(self._after, request_id, loaded, scored, latency)
        return Response(
            scored.content,
            media_type="application/json",
            headers={**headers, "X-Request-Id": request_id},
            background=after,
        )

    async def _score(self, body: bytes, kind: str | None, loaded: LoadedModel) -> scoring.Scored:
        """Parse and check a body (on a thread when it is large), then score its rows with
        the other requests waiting for the same version (:mod:`flowkit.serve.batching`)."""
        if len(body) <= INLINE_BYTES:
            parsed, named, frame = _parsed(body, kind, loaded)
        else:
            parsed, named, frame = await anyio.to_thread.run_sync(_parsed, body, kind, loaded)
        predictions = await self._batcher(loaded).predict(frame)
        return scoring.Scored(parsed, named, frame, predictions, scoring.answer(predictions))

    def _batcher(self, loaded: LoadedModel) -> Batcher:
        found = self._batchers.get(loaded.version)
        if found is None or found[0] is not loaded:  # a version loaded again: a new batcher
            batcher = Batcher(
                functools.partial(scoring.predict, loaded),
                max_rows=self.config.max_batch_rows,
                inline_seconds=INLINE_SECONDS,
            )
            found = self._batchers[loaded.version] = (loaded, batcher)
        return found[1]

    def _after(
        self,
        request_id: str,
        loaded: LoadedModel,
        scored: scoring.Scored,
        latency: float,
    ) -> None:
        """After the answer is sent: the prediction log and the shadow's queue (the shadow
        takes the rows as parsed: its version may expect other columns)."""
        if self.config.prediction_log is not None:
            predictions = scoring.as_list(scored.predictions)
            self.record(request_id, loaded, scored.frame, predictions, latency)
        if self.shadow is not None:
            self.shadow.submit(request_id, (scored.parsed, scored.named), loaded.version)

    def record(
        self,
        request_id: str,
        loaded: LoadedModel,
        frame: pd.DataFrame,
        predictions: list[Any],
        latency: float,
    ) -> None:
        sink = self.config.prediction_log
        if sink is None:
            return
        try:  # the log promises not to raise; a broken one must still not stop serving
            sink.record(request_id, loaded.version, loaded.alias, frame, predictions, latency)
        except Exception:
            log.exception("the prediction log failed to record request %s", request_id)

    def health(self, request: Request) -> Response:
        del request
        primary = self.deployment.primary
        doc: dict[str, Any] = {"status": "ok" if primary.current else "unavailable"}
        doc.update(_slot_doc(primary))
        for role, slot in (("canary", self.deployment.canary), ("shadow", self.deployment.shadow)):
            if slot is not None:
                doc[role] = _slot_doc(slot)
        if self.deployment.canary is not None:
            doc["canary"]["fraction"] = self.deployment.fraction
        return JSONResponse(doc, status_code=200 if primary.current else 503)

    def version(self, request: Request) -> Response:
        del request
        loaded = self.deployment.primary.current
        if loaded is None:
            return _error(503, _unavailable(self.deployment.primary), "MODEL_NOT_LOADED")
        doc = {"name": loaded.name, "version": loaded.version, "alias": loaded.alias}
        return JSONResponse({**doc, "run_id": loaded.run_id})

    def metrics_text(self, request: Request) -> Response:
        del request
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)


def _parsed(
    body: bytes, kind: str | None, loaded: LoadedModel
) -> tuple[pd.DataFrame, bool, pd.DataFrame]:
    """(rows as parsed, columns named?, rows as the model takes them)."""
    parsed, named = scoring.parse(body, kind)
    return parsed, named, scoring.conform(parsed, named, loaded)


def _slot_doc(slot: Slot) -> dict[str, Any]:
    loaded = slot.current
    doc: dict[str, Any] = {
        "model": slot.name,
        "alias": slot.alias,
        "version": None if loaded is None else loaded.version,
    }
    failure = slot.failure
    if failure is not None:
        doc["failure"] = {"version": failure.version, "error": failure.error, "at": failure.at}
    return doc


def _unavailable(slot: Slot) -> str:
    failure = slot.failure
    why = f": {failure.error}" if failure is not None else " yet"
    return f"no version of {slot.name}@{slot.alias} is loaded{why}"


def _error(
    status: int, message: str, code: str, headers: Mapping[str, str] | None = None
) -> Response:
    return JSONResponse({"error_code": code, "message": message}, status, headers=headers)


def create_app(config: ServeConfig) -> Starlette:
    """The scoring app for ``config`` (the versions are loaded when the app starts)."""
    metrics = ServeMetrics(config.model)
    deployment = Deployment(config, on_failure=metrics.load_failed)
    handlers = _Handlers(config, deployment, metrics)
    if deployment.shadow is not None:
        handlers.shadow = ShadowScorer(deployment.shadow, metrics, handlers)
    follower = Follower(deployment, config.follow_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        del app
        await anyio.to_thread.run_sync(deployment.refresh)
        follower.start()
        if handlers.shadow is not None:
            handlers.shadow.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(_stop, follower, handlers, config)

    routes = [
        Route("/invocations", handlers.invocations, methods=["POST"]),
        Route("/health", handlers.health, methods=["GET"]),
        Route("/ping", handlers.health, methods=["GET"]),
        Route("/version", handlers.version, methods=["GET"]),
        Route("/metrics", handlers.metrics_text, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error}
    )
    app.state.deployment = deployment
    return app


def _stop(follower: Follower, handlers: _Handlers, config: ServeConfig) -> None:
    follower.stop()
    if handlers.shadow is not None:
        handlers.shadow.stop()
    if config.prediction_log is not None:
        config.prediction_log.close()  # flushes what is buffered


def _http_error(request: Request, exc: Exception) -> Response:
    """404 and 405 as JSON errors, like every other error of the server."""
    assert isinstance(exc, HTTPException)
    codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return _error(exc.status_code, message, codes.get(exc.status_code, "ERROR"), exc.headers)


__all__ = ["ShadowScorer", "create_app"]

"""Serve a registered model on Ray Serve: the ``flowkit serve`` app in every replica.

:func:`deploy` runs the same Starlette app as ``flowkit serve``
(:func:`flowkit.serve.app.create_app`) as a Ray Serve ASGI ingress deployment. Each replica
builds its own app from the :class:`~flowkit.serve.models.ServeConfig` when it starts (the app
is never pickled), so each replica loads the model itself and follows the alias on its own: a
promote or rollback reaches every replica within the follow interval, each switching
atomically as the single-process server does.

Ray Serve's HTTP proxy listens on ``host:port`` (default ``127.0.0.1:8000``) and forwards to
the replicas; ``proxy_location="HeadOnly"`` (the default here) runs one proxy, on the head
node, so one URL serves the model (``"EveryNode"`` runs one per node, for a load balancer in
front). A Serve instance already running on the cluster keeps its own HTTP options.

Connection policy: a Ray session already initialised in this process is used as it is;
otherwise ``address`` (or ``$RAY_ADDRESS``) is joined, or a local Ray is started. Ray is
imported only here, when called (``import flowkit`` never imports it).
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowkit.serve.models import ServeConfig

log = logging.getLogger(__name__)

# "module:function" building the ASGI app from a ServeConfig, imported inside each replica.
APP_FACTORY = "flowkit.serve.app:create_app"
_AUTOSCALING_KEYS = frozenset(
    {
        "min_replicas",
        "max_replicas",
        "initial_replicas",
        "target_ongoing_requests",
        "upscale_delay_s",
        "downscale_delay_s",
        "metrics_interval_s",
        "look_back_period_s",
    }
)


def import_serve() -> Any:
    """``ray.serve``, imported without its import-time warnings (pydantic deprecations in Ray's
    own schemas: about Ray, not the user's code, and errors in suites that fail on warnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ray import serve

    return serve


class RayServeError(ValueError):
    """Bad arguments to :func:`deploy` (nothing was deployed)."""


@dataclass(frozen=True)
class RayServeApp:
    """A model deployed on Ray Serve: its Serve application ``name`` and its ``url``."""

    name: str
    url: str

    def delete(self) -> None:
        """Delete the application; shut Serve down too when no other application is left."""
        serve = import_serve()
        serve.delete(self.name)
        if not serve.status().applications:
            serve.shutdown()


def _build_app(factory: str, config: Any, log_spec: Mapping[str, Any] | None) -> Any:
    """Import ``factory`` ("module:function") and call it on ``config`` (in the replica),
    with a prediction log of this replica's own when ``log_spec`` is given."""
    import importlib

    if log_spec is not None:
        from flowkit.serve.predlog import PredictionLog

        spec = dict(log_spec)
        config = replace(config, prediction_log=PredictionLog(spec.pop("store"), **spec))
    module, _, function = factory.partition(":")
    return getattr(importlib.import_module(module), function)(config)


def _deployment_class() -> type:
    """The ingress deployment class (made on first use: it needs ``ray.serve``)."""
    serve = import_serve()

    @serve.ingress()
    class FlowkitModel:
        # The app is built inside the replica (late-bound ingress): the model is loaded there
        # and the app's lifespan starts its own alias-following thread.
        def __init__(self, config: Any, factory: str, log_spec: Mapping[str, Any] | None) -> None:
            self._args = (factory, config, log_spec)

        def __serve_build_asgi_app__(self) -> Any:
            return _build_app(*self._args)

    return FlowkitModel


def _scaling(replicas: int | None, autoscaling: Mapping[str, Any] | None) -> dict[str, Any]:
    """Ray Serve's deployment options for a fixed replica count or autoscaling."""
    if replicas is not None and autoscaling is not None:
        raise RayServeError("give replicas or autoscaling, not both")
    if autoscaling is not None:
        unknown = sorted(set(autoscaling) - _AUTOSCALING_KEYS)
        if unknown:
            raise RayServeError(
                f"unknown autoscaling option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(_AUTOSCALING_KEYS))}"
            )
        return {"autoscaling_config": dict(autoscaling)}
    count = 1 if replicas is None else replicas
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise RayServeError(f"replicas must be a whole number >= 1, got {replicas!r}")
    return {"num_replicas": count}


def _portable(config: ServeConfig) -> tuple[ServeConfig, dict[str, Any] | None]:
    """``config`` as the replicas must see it, and how they open their prediction log.

    The registry URI is resolved here (a replica's working directory and environment are the
    cluster's). A prediction log holds a writer thread, so it cannot travel: each replica opens
    its own on the same store with the same settings (every replica writes its own part files;
    the store must be one every node reaches, e.g. S3, or a folder they share)."""
    from flowkit.ml import uris

    uri = uris.resolve_tracking_uri(config.tracking_uri)
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + os.path.abspath(uri[len("sqlite:///") :])
    log_spec = None
    plog = config.prediction_log
    if plog is not None:
        from flowkit.serve.predlog import PredictionLog

        if not isinstance(plog, PredictionLog):
            raise RayServeError(
                f"on Ray Serve the prediction log must be a PredictionLog, got {plog!r}"
            )
        log_spec = {
            "store": plog.store.url,
            "model": plog.model,
            "sample": plog.sample,
            "batch_rows": plog.batch_rows,
            "flush_seconds": plog.flush_seconds,
            "max_pending": plog.max_pending,
        }
    portable = replace(config, tracking_uri=uri, prediction_log=None)
    try:
        import cloudpickle

        cloudpickle.dumps(portable)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise RayServeError(
            f"the serving configuration cannot be sent to Ray Serve replicas: {exc}"
        ) from exc
    return portable, log_spec


def _connect(address: str | None) -> None:
    """Use this process's Ray session, else join ``address`` / $RAY_ADDRESS, else start one."""
    import ray

    if ray.is_initialized():
        return
    ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, log_to_driver=False)


def deploy(
    config: ServeConfig,
    *,
    replicas: int | None = None,
    autoscaling: Mapping[str, Any] | None = None,
    address: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    name: str | None = None,
    route_prefix: str = "/",
    proxy_location: str = "HeadOnly",
    num_cpus: float = 1.0,
    _factory: str = APP_FACTORY,
) -> RayServeApp:
    """Deploy ``config``'s model on Ray Serve and wait until its replicas answer.

    ``replicas`` (default 1) fixes the replica count; ``autoscaling`` instead gives Ray Serve's
    autoscaling options (``min_replicas``, ``max_replicas``, ``target_ongoing_requests``, ...).
    Each replica reserves ``num_cpus``. The application is named ``name`` (default
    ``flowkit-<model>``); deploying the same name again updates it in place.

    Example::

        app = ray_serve.deploy(ServeConfig(model="digits", alias="production"), replicas=2)
        app.url       # 'http://127.0.0.1:8000'  (POST /invocations, GET /version, ...)
        app.delete()
    """
    options = _scaling(replicas, autoscaling)
    portable, log_spec = _portable(config)
    _connect(address)
    serve = import_serve()

    serve.start(proxy_location=proxy_location, http_options={"host": host, "port": port})
    app_name = name or f"flowkit-{config.model}"
    deployment: Any = serve.deployment(
        _deployment_class(),
        name="model",
        ray_actor_options={"num_cpus": num_cpus},
        **options,
    )
    serve.run(
        deployment.bind(portable, _factory, log_spec),
        name=app_name,
        route_prefix=route_prefix,
        blocking=False,
    )
    url = f"http://{host}:{port}{route_prefix.rstrip('/')}"
    log.info("deployed %s on Ray Serve at %s", app_name, url)
    return RayServeApp(app_name, url)


def run(
    config: ServeConfig,
    *,
    replicas: int | None = None,
    autoscaling: Mapping[str, Any] | None = None,
    address: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    say: Callable[[str], None] = print,
) -> None:
    """``flowkit serve --backend ray``: deploy, then wait; Ctrl-C or SIGTERM deletes the app."""
    _connect(address)  # first: ray.init installs a SIGTERM handler of its own, replaced here
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _stop)  # a SIGTERM while deploying counts too
    try:
        try:
            app = deploy(config, replicas=replicas, autoscaling=autoscaling, host=host, port=port)
        except KeyboardInterrupt:  # Ctrl-C while deploying: take back what was started
            RayServeApp(f"flowkit-{config.model}", "").delete()
            raise
        say(f"serving {config.model}@{config.alias} on Ray Serve at {app.url} (Ctrl-C stops it)")
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        app.delete()
        say(f"deleted the Ray Serve application {app.name}")
    finally:
        signal.signal(signal.SIGTERM, previous)
        if config.prediction_log is not None:
            config.prediction_log.close()  # the replicas logged; this one holds nothing


__all__ = ["APP_FACTORY", "RayServeApp", "RayServeError", "deploy", "import_serve", "run"]

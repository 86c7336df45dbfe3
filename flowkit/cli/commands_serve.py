"""``flowkit serve MODEL[@ALIAS]``: serve a registered model over HTTP (:mod:`flowkit.serve`).

The app (MLflow's scoring protocol, ``/health``, ``/version``, ``/metrics``) runs under
uvicorn, or on Ray Serve with ``--backend ray``. It follows the alias (``--follow``, default
every 10 s) unless ``--pin``; ``--canary`` and ``--shadow`` name other aliases of the same
model. Binds 127.0.0.1 unless ``--host`` says otherwise; the server has no authentication,
so binding another address prints a warning. The web libraries are the ``serve`` extra,
imported only when the command runs.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from typing import Any

from flowkit.cli.common import (
    EXIT_OK,
    CliParser,
    UsageError,
    add_store_option,
    is_loopback,
    say,
    store_url,
)
from flowkit.serve.models import DEFAULT_MAX_BATCH_ROWS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
_EXTRA = ("starlette", "uvicorn", "prometheus_client", "mlflow", "pandas")


def command(argv: Sequence[str]) -> int:
    ns = _parser().parse_args(list(argv))
    model, alias = _model_alias(ns.model, "MODEL")
    routing = _routing(ns, model)  # usage errors first, before the slow imports
    _check_extra(ns.backend)
    config = _config(ns, model, alias, routing)
    if not is_loopback(ns.host):
        say(
            f"warning: flowkit serve has no authentication; on {ns.host} anyone who can reach "
            f"port {ns.port} can score the model"
        )
    if ns.backend == "ray":
        from flowkit.serve import ray_serve

        try:  # each replica opens its own prediction log; this one only gave the settings
            ray_serve.run(
                config, replicas=ns.replicas, address=ns.ray_address, host=ns.host,
                port=ns.port, say=say,
            )  # fmt: skip
        finally:
            if config.prediction_log is not None:
                config.prediction_log.close()
        return EXIT_OK
    import uvicorn

    from flowkit.serve.app import create_app

    app = create_app(config)
    shown = f"[{ns.host}]" if ":" in ns.host else ns.host
    from flowkit.serve.models import version_pin

    following = "pinned" if config.follow_seconds is None else f"every {config.follow_seconds:g} s"
    what = "a version: pinned" if version_pin(alias) else f"alias followed: {following}"
    say(
        f"flowkit serve: {model}@{alias} ({what}) at "
        f"http://{shown}:{ns.port}/invocations (Ctrl-C to stop)"
    )
    uvicorn.run(app, host=ns.host, port=ns.port, log_level="warning", access_log=False)
    return EXIT_OK


def _routing(ns: argparse.Namespace, model: str) -> tuple[tuple[str, float] | None, str | None]:
    """The canary's (alias, fraction) and the shadow's alias, from their options."""
    canary = None
    if ns.canary is not None:
        target, colon, fraction = ns.canary.rpartition(":")
        if not colon:
            raise UsageError(f"--canary: expected MODEL@ALIAS:FRACTION, got {ns.canary!r}")
        try:
            canary = (_same_model(target, model, "--canary"), _fraction(fraction))
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"--canary {ns.canary}: {exc}") from None
    shadow = None if ns.shadow is None else _same_model(ns.shadow, model, "--shadow")
    return canary, shadow


def _config(
    ns: argparse.Namespace,
    model: str,
    alias: str,
    routing: tuple[tuple[str, float] | None, str | None],
) -> Any:
    from flowkit.serve.models import DEFAULT_FOLLOW_SECONDS, ServeConfig

    canary, shadow = routing
    prediction_log = None
    if ns.log_predictions:
        from flowkit.serve.predlog import PredictionLog

        prediction_log = PredictionLog(store_url(ns.store), model, sample=ns.sample)
    return ServeConfig(
        model=model,
        alias=alias,
        tracking_uri=ns.tracking_uri,
        follow_seconds=None if ns.pin else (ns.follow or DEFAULT_FOLLOW_SECONDS),
        canary=canary,
        shadow=shadow,
        prediction_log=prediction_log,
        max_body_bytes=int(ns.max_body_mb * 2**20),
        max_batch_rows=ns.max_batch_rows,
    )


def _parser() -> CliParser:
    p = CliParser(
        prog="flowkit serve",
        description="Serve a registered model over HTTP (MLflow's scoring protocol), following "
        "its alias in the registry. Needs the serve and ml extras: "
        'pip install "flowkit[serve,ml]".',
    )
    p.add_argument(
        "model",
        metavar="MODEL[@ALIAS]",
        help="the model and its alias (default production), or a version: MODEL@3",
    )
    p.add_argument("--tracking-uri", metavar="URI", default=None, help="the MLflow registry")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    p.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    follow = p.add_mutually_exclusive_group()
    follow.add_argument(
        "--follow", metavar="SECONDS", type=_positive, default=None,
        help="poll the registry for alias moves every SECONDS (default 10)",
    )  # fmt: skip
    follow.add_argument("--pin", action="store_true", help="serve the versions found at start")
    p.add_argument(
        "--canary", metavar="MODEL@ALIAS:FRACTION", default=None,
        help="send FRACTION of the requests (counted, not drawn) to another alias's version",
    )  # fmt: skip
    p.add_argument(
        "--shadow", metavar="MODEL@ALIAS", default=None,
        help="also score every request with this alias's version, after answering",
    )  # fmt: skip
    p.add_argument(
        "--max-body-mb", metavar="N", type=_positive, default=16.0,
        help="refuse request bodies larger than N MiB (default 16)",
    )  # fmt: skip
    p.add_argument(
        "--max-batch-rows", metavar="N", type=_count, default=DEFAULT_MAX_BATCH_ROWS,
        help="score the requests waiting for one version together, up to N rows "
        f"(default {DEFAULT_MAX_BATCH_ROWS}; 1: each request alone)",
    )  # fmt: skip
    p.add_argument(
        "--log-predictions", action="store_true",
        help="log requests and predictions as Parquet in the store (--store)",
    )  # fmt: skip
    p.add_argument(
        "--sample", metavar="RATE", type=_fraction, default=1.0,
        help="with --log-predictions: the share of requests logged (default 1)",
    )  # fmt: skip
    add_store_option(p)
    p.add_argument(
        "--backend", choices=("local", "ray"), default="local",
        help="local: uvicorn in this process (default); ray: a Ray Serve deployment",
    )  # fmt: skip
    p.add_argument("--replicas", type=int, default=None, help="with --backend ray (default 1)")
    p.add_argument(
        "--ray-address", metavar="ADDRESS", default=None,
        help="with --backend ray: the cluster to join (default $RAY_ADDRESS, else a local Ray)",
    )  # fmt: skip
    return p


def _model_alias(text: str, what: str) -> tuple[str, str]:
    """``MODEL[@ALIAS]`` -> (model, alias); the alias defaults to ``production``."""
    model, _, alias = text.partition("@")
    if not model.strip() or ("@" in text and not alias.strip()):
        raise UsageError(f"expected {what} as MODEL or MODEL@ALIAS, got {text!r}")
    return model, alias or "production"


def _same_model(text: str, model: str, option: str) -> str:
    """The alias of ``option``'s ``MODEL@ALIAS``, which must name the served model."""
    if "@" not in text:
        raise UsageError(f"{option}: expected MODEL@ALIAS, got {text!r}")
    other, alias = _model_alias(text, option)
    if other != model:
        raise UsageError(
            f"{option} must name an alias of the served model {model!r}, not {other!r}"
        )
    return alias


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number (1-65535), got {text!r}")
    return int(text)


def _check_extra(backend: str) -> None:
    missing = []
    for name in _EXTRA:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if backend == "ray":
        try:
            from flowkit.serve import ray_serve

            ray_serve.import_serve()  # without Ray's import-time warnings
        except ImportError:
            missing.append("ray.serve")
    if missing:
        extras = "serve,ml,ray" if backend == "ray" else "serve,ml"
        raise UsageError(
            f"flowkit serve needs the {extras} extras (missing: {', '.join(missing)}): "
            f'pip install "flowkit[{extras}]"'
        )


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "command"]

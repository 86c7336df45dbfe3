"""What ``flowkit serve`` serves: the configuration, the loaded versions and their routing.

Each alias the server answers from (the primary one, and the canary's and the shadow's when
given) is a :class:`Slot`: the version it last loaded, and why the newest version could not be
loaded, if it could not. A background thread (:class:`Follower`) polls the registry; when an
alias has moved, the new version is loaded *beside* the old one, then ``Slot.current`` is
replaced -- one reference assignment, atomic in Python -- and the old model is dropped when
the last request holding it ends. A request reads ``current`` once, so every request is
answered by one whole version and none fails across a promote or a rollback.

Failure policy: a version that fails to load leaves the previous one serving; the failure is
kept on the slot (``/health`` shows it) and the load is tried again at the next poll. A
registry that cannot be reached is kept the same way. Until the primary alias has a loaded
version, scoring answers 503.

Canary split: deterministic, not random -- request ``n`` (counted from 0 by the server) goes
to the canary exactly when ``floor((n + 1) * fraction) > floor(n * fraction)``, so of any ``N``
consecutive requests, ``N * fraction`` give or take one go to the canary (2,000 requests at 0.1:
200). Each server counts its own requests (each Ray Serve replica too). While the canary's
version is not loaded, the primary answers its share.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

DEFAULT_FOLLOW_SECONDS = 10.0
DEFAULT_MAX_BODY_BYTES = 16 * 2**20
DEFAULT_MAX_BATCH_ROWS = 64
PINNED_RETRY_SECONDS = 10.0  # a pinned server still retries until its first load succeeds
RETRY_FIRST = 30.0  # a version that failed to load, while another serves: first retry after
RETRY_MAX = 600.0  # ... doubling up to this


class PredictionSink(Protocol):
    """Where answered requests are recorded (:class:`flowkit.serve.predlog.PredictionLog`)."""

    def record(
        self,
        request_id: str,
        version: int,
        alias: str,
        inputs: pd.DataFrame,
        predictions: list[Any],
        latency_s: float,
    ) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ServeConfig:
    """What one ``flowkit serve`` app serves.

    ``follow_seconds``: how often the registry is polled for alias moves (None: pinned to
    the versions found at start; an alias that could not be loaded then is retried every
    10 s until it is). ``canary``: (alias, fraction) of the same model answering
    that fraction of requests. ``shadow``: an alias of the same model that also scores every
    request, after the answer is sent. ``max_body_bytes``: larger request bodies are refused
    (413) while they are read. ``max_batch_rows``: requests waiting for one version are
    scored together up to this many rows (1: every request alone; see
    :mod:`flowkit.serve.batching`).
    """

    model: str
    alias: str = "production"
    tracking_uri: str | None = None
    follow_seconds: float | None = DEFAULT_FOLLOW_SECONDS
    canary: tuple[str, float] | None = None
    shadow: str | None = None
    prediction_log: PredictionSink | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model must be a non-empty name, got {self.model!r}")
        if self.follow_seconds is not None and not self.follow_seconds > 0:
            raise ValueError(f"follow_seconds must be > 0 (or None), got {self.follow_seconds}")
        if self.canary is not None and not 0.0 <= self.canary[1] <= 1.0:
            raise ValueError(f"the canary fraction must be in [0, 1], got {self.canary[1]}")
        if self.max_batch_rows < 1:
            raise ValueError(f"max_batch_rows must be >= 1, got {self.max_batch_rows}")
        if self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be >= 1, got {self.max_body_bytes}")


@dataclass(frozen=True)
class LoadedModel:
    """One loaded version of a model and where it came from."""

    name: str
    version: int
    alias: str
    run_id: str | None
    model: Any

    @property
    def features(self) -> list[str] | None:
        """The column names the model was fitted on (scikit-learn's ``feature_names_in_``)."""
        names = getattr(self.model, "feature_names_in_", None)
        return None if names is None else [str(n) for n in names]

    @property
    def n_features(self) -> int | None:
        """How many columns the model was fitted on (``n_features_in_``), if it says."""
        n = getattr(self.model, "n_features_in_", None)
        return n if isinstance(n, int) else None


@dataclass(frozen=True)
class LoadFailure:
    """Why ``version`` of the alias could not be loaded (``version`` None: the registry)."""

    version: int | None
    error: str
    at: float


# (model name, version, tracking URI) -> the loaded model; the registry's load by default
Loader = Callable[[str, int, str], Any]
# Called with (version or None, alias) once per new load failure (the metrics count them).
FailureHook = Callable[[int | None, str], None]


def _registry_load(name: str, version: int, tracking_uri: str) -> Any:
    from flowkit.ml import registry

    return registry.load(name, version=version, tracking_uri=tracking_uri)


def version_pin(alias: str) -> int | None:
    """The version an ``@3`` names (``MODEL@3`` serves version 3, not an alias), else None."""
    return int(alias) if alias.isdecimal() and alias.isascii() and int(alias) > 0 else None


class Slot:
    """One alias of the model (or one version: ``@3``): the version loaded for it and the
    last failure to move on.

    A version that fails to load is not fetched again on every poll (a broken model is
    often large): it is retried after :data:`RETRY_FIRST` seconds, then twice as long each
    time up to :data:`RETRY_MAX`, while the alias keeps naming it and another version serves
    (with nothing to serve, every poll tries). Another version (the alias moved, or a
    rollback) is tried at the next poll.
    """

    def __init__(
        self,
        name: str,
        alias: str,
        tracking_uri: str,
        loader: Loader,
        on_failure: FailureHook | None = None,
    ) -> None:
        self.name = name
        self.alias = alias
        self.tracking_uri = tracking_uri
        self.current: LoadedModel | None = None
        self.failure: LoadFailure | None = None
        self._loader = loader
        self._on_failure = on_failure
        self._refreshing = threading.Lock()  # one load at a time per alias
        self._retry_at = 0.0  # when the failed version may be fetched again
        self._retry_wait = RETRY_FIRST

    def refresh(self) -> None:
        """Load the version the alias points at now, if it is not the one loaded."""
        with self._refreshing:
            try:
                version, run_id = self._lookup()
            except Exception as exc:
                self._failed(None, exc)
                return
            current = self.current
            if current is not None and current.version == version:
                self.failure = None  # e.g. rolled back to it after a failed load
                return
            failed = self.failure
            if (
                current is not None  # serving nothing: every poll is worth a try
                and failed is not None
                and failed.version == version
                and time.time() < self._retry_at
            ):
                return  # the same broken version: not downloaded again before its back-off
            try:
                model = self._loader(self.name, version, self.tracking_uri)
            except Exception as exc:
                self._failed(version, exc)
                return
            self.current = LoadedModel(self.name, version, self.alias, run_id, model)  # the swap
            self.failure = None
            was = "nothing" if current is None else f"version {current.version}"
            log.info("serving %s@%s: version %d (was %s)", self.name, self.alias, version, was)

    def _lookup(self) -> tuple[int, str | None]:
        from flowkit.ml import uris

        c, _ = uris.client(self.tracking_uri)
        pinned = version_pin(self.alias)
        if pinned is not None:
            mv = c.get_model_version(self.name, str(pinned))
        else:
            mv = c.get_model_version_by_alias(self.name, self.alias)
        return int(mv.version), mv.run_id or None

    def _failed(self, version: int | None, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        before = self.failure
        now = time.time()
        if version is not None:
            again = before is not None and before.version == version
            self._retry_wait = min(2 * self._retry_wait, RETRY_MAX) if again else RETRY_FIRST
            self._retry_at = now + self._retry_wait
        self.failure = LoadFailure(version, error, now)
        if before is None or (before.version, before.error) != (version, error):  # once each
            if self._on_failure is not None:
                self._on_failure(version, self.alias)
            what = "the registry" if version is None else f"version {version}"
            serving = "nothing" if self.current is None else f"version {self.current.version}"
            log.error(
                "%s@%s: cannot load %s (%s); still serving %s",
                self.name,
                self.alias,
                what,
                error,
                serving,
            )


class Deployment:
    """The slots of one app and which of them answers a request."""

    def __init__(
        self,
        config: ServeConfig,
        loader: Loader = _registry_load,
        on_failure: FailureHook | None = None,
    ) -> None:
        from flowkit.ml import uris

        uri = uris.resolve_tracking_uri(config.tracking_uri)

        def slot(alias: str) -> Slot:
            return Slot(config.model, alias, uri, loader, on_failure)

        self.config = config
        self.primary = slot(config.alias)
        self.canary = None if config.canary is None else slot(config.canary[0])
        self.shadow = None if config.shadow is None else slot(config.shadow)
        self.fraction = 0.0 if config.canary is None else config.canary[1]
        self._counter = itertools.count()  # next() on it is atomic under the GIL

    def slots(self) -> list[Slot]:
        return [s for s in (self.primary, self.canary, self.shadow) if s is not None]

    def refresh(self) -> None:
        for slot in self.slots():
            slot.refresh()

    def pick(self) -> LoadedModel | None:
        """The version that answers the next request (None: nothing loaded yet)."""
        if self.canary is not None and self.fraction > 0.0:
            n = next(self._counter)
            if math.floor((n + 1) * self.fraction) > math.floor(n * self.fraction):
                chosen = self.canary.current
                if chosen is not None:
                    return chosen
        return self.primary.current  # the canary not loaded (yet): the primary answers


class Follower:
    """The background thread that polls the registry for a :class:`Deployment`."""

    def __init__(self, deployment: Deployment, seconds: float | None) -> None:
        self.deployment = deployment
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling (again, after :meth:`stop`: an app may be started more than once)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flowkit-serve-follow", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds or PINNED_RETRY_SECONDS):
            pending = [s for s in self.deployment.slots() if s.current is None]
            if self.seconds is None and not pending:
                return  # pinned and everything loaded: nothing more to do
            for slot in self.deployment.slots() if self.seconds is not None else pending:
                try:
                    slot.refresh()
                except Exception:  # a bug must not end the following
                    log.exception("%s@%s: refresh failed", slot.name, slot.alias)


__all__ = [
    "DEFAULT_FOLLOW_SECONDS",
    "DEFAULT_MAX_BATCH_ROWS",
    "DEFAULT_MAX_BODY_BYTES",
    "Deployment",
    "Follower",
    "LoadFailure",
    "LoadedModel",
    "PredictionSink",
    "ServeConfig",
    "Slot",
]

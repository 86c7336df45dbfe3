"""The Prometheus metrics of one ``flowkit serve`` app (``GET /metrics``).

Each app has its own ``CollectorRegistry`` (not prometheus_client's global one), so two apps
in one process -- tests, benchmarks -- count separately. Every series is labelled with the
model and the version that answered (``"none"`` while nothing is loaded) and the alias it
answered for, so a canary's or a shadow's traffic is told apart from the primary's:

* ``flowkit_serve_requests_total`` -- scoring requests answered (any status);
* ``flowkit_serve_errors_total`` -- those answered with an error, by HTTP status;
* ``flowkit_serve_request_seconds`` -- a histogram of the time to answer;
* ``flowkit_serve_shadow_total`` -- shadow scorings, by outcome (``ok``, ``error``,
  ``dropped`` when the shadow queue was full);
* ``flowkit_serve_load_failures_total`` -- versions that failed to load.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Scoring a small model takes about a millisecond; a large batch, seconds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServeMetrics:
    """The counters and histogram of one app, for model ``model``."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["model", "version", "alias"]
        self._requests = Counter(
            "flowkit_serve_requests",
            "Scoring requests answered, by the model version that answered",
            labels,
            registry=self.registry,
        )
        self._errors = Counter(
            "flowkit_serve_errors",
            "Scoring requests answered with an error, by HTTP status",
            [*labels, "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "flowkit_serve_request_seconds",
            "Time to answer a scoring request",
            labels,
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self._shadow = Counter(
            "flowkit_serve_shadow",
            "Shadow scorings of answered requests, by outcome",
            [*labels, "outcome"],
            registry=self.registry,
        )
        self._load_failures = Counter(
            "flowkit_serve_load_failures",
            "Model versions that failed to load",
            labels,
            registry=self.registry,
        )

    def answered(self, version: int | None, alias: str, status: int, seconds: float) -> None:
        """One scoring request answered with ``status`` after ``seconds``."""
        labels = (self.model, _version(version), alias)
        self._requests.labels(*labels).inc()
        self._latency.labels(*labels).observe(seconds)
        if status >= 400:
            self._errors.labels(*labels, str(status)).inc()

    def shadowed(self, version: int | None, alias: str, outcome: str) -> None:
        self._shadow.labels(self.model, _version(version), alias, outcome).inc()

    def load_failed(self, version: int | None, alias: str) -> None:
        self._load_failures.labels(self.model, _version(version), alias).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every series."""
        return generate_latest(self.registry)


def _version(version: int | None) -> str:
    return "none" if version is None else str(version)


__all__ = ["CONTENT_TYPE", "ServeMetrics"]

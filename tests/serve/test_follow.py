"""``flowkit serve`` following the registry over real HTTP: promote and rollback under load,
a broken new version, pinning, the canary split and shadow scoring.

Version ``v`` of ``clf`` predicts ``v`` (conftest.py), so each answer shows which version gave
it, and its ``X-Model-Version`` header must agree.
"""

from __future__ import annotations

import threading
import time
import types
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from flowkit.serve.models import ServeConfig, version_pin

FOLLOW = 0.5  # seconds between polls in these tests
BODY = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 0.0], [2.0, 1.0]]}}


@dataclass
class Load:
    """A client thread scoring as fast as it can; every answer is kept, every failure too."""

    server: Any
    # (sent, received, version): with several clients, answers arrive out of the order in
    # which their requests picked a version
    answers: list[tuple[float, float, int]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                reply = self.server.score(BODY)
            except Exception as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if reply.status != 200:
                self.failures.append(f"{reply.status}: {reply.body[:300]!r}")
                continue
            answered = {round(p) for p in reply.json()["predictions"]}
            if answered != {reply.version}:
                self.failures.append(f"header says {reply.version}, predictions say {answered}")
            self.answers.append((sent, time.monotonic(), reply.version))

    def first_from(self, version: int, after: float) -> float | None:
        """When the first answer from ``version`` to a request sent after ``after`` came."""
        found = [got for sent, got, v in self.answers if v == version and sent >= after]
        return min(found, default=None)

    def versions_sent(self, start: float, end: float = float("inf")) -> set[int]:
        """The versions that answered the requests sent from ``start`` until ``end``."""
        return {v for sent, _, v in self.answers if start <= sent < end}


def _following(serve: Callable[..., Any], registry: Any, alias: str, **kw: Any) -> Any:
    return serve(ServeConfig("clf", alias, registry.uri, follow_seconds=FOLLOW, **kw))


def test_promote_and_rollback_under_load_fail_no_request(
    serve: Callable[..., Any], serve_registry: Any
) -> None:
    serve_registry.point("fol_live", 1)
    server = _following(serve, serve_registry, "fol_live")
    load = Load(server)
    threads = [threading.Thread(target=load.run) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        server.wait_for(lambda: len(load.answers) >= 50, 30, "answers from version 1")
        promoted = time.monotonic()
        serve_registry.point("fol_live", 2)
        server.wait_for(lambda: load.first_from(2, promoted) is not None, FOLLOW + 10, "v2")
        # how soon (the "follow interval + 1 s") is measured in
        # benchmarks/serve_latency.py, not timed here
        server.wait_for(lambda: len(load.answers) >= 300, 60, "more answers")
        rolled = time.monotonic()
        from flowkit import ml

        assert ml.rollback("clf", alias="fol_live", tracking_uri=serve_registry.uri).version == 1
        server.wait_for(lambda: load.first_from(1, rolled) is not None, FOLLOW + 10, "v1 again")
        count = len(load.answers)
        server.wait_for(lambda: len(load.answers) >= count + 100, 60, "answers after rollback")
    finally:
        load.stop.set()
        for t in threads:
            t.join(timeout=60)
    assert load.failures == []
    assert len(load.answers) >= 400
    # once switched, a request sent after the new version answered one is never answered by
    # the old one (one atomic swap), until the rollback; then the same the other way
    switched = load.first_from(2, promoted)
    back = load.first_from(1, rolled)
    assert switched is not None and back is not None
    assert load.versions_sent(switched, rolled) == {2}
    assert load.versions_sent(back) == {1}
    assert server.get("/version").json()["version"] == 1
    assert server.metric("flowkit_serve_requests_total", version="2") >= 100


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(
    serve: Callable[..., Any], serve_registry: Any
) -> None:
    serve_registry.point("fol_broken", 1)
    server = _following(serve, serve_registry, "fol_broken")
    serve_registry.point("fol_broken", 4)  # the unloadable version

    def failed() -> bool:
        return "failure" in server.get("/health").json()

    server.wait_for(failed, FOLLOW + 10, "the failure on /health")
    health = server.get("/health")
    assert health.status == 200
    doc = health.json()
    assert doc["status"] == "ok" and doc["version"] == 1
    assert doc["failure"]["version"] == 4
    assert "broken on purpose" in doc["failure"]["error"]
    reply = server.score(BODY)
    assert reply.status == 200 and reply.version == 1
    assert server.metric("flowkit_serve_load_failures_total", version="4") == 1
    time.sleep(3 * FOLLOW)  # retried at each poll, counted once
    assert server.metric("flowkit_serve_load_failures_total", version="4") == 1
    serve_registry.point("fol_broken", 3)  # a good version clears the failure
    server.wait_for(lambda: server.get("/health").json()["version"] == 3, FOLLOW + 10, "v3")
    assert "failure" not in server.get("/health").json()
    assert server.score(BODY).version == 3


def test_a_broken_version_is_fetched_again_only_after_its_back_off(
    serve_registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loader (the registry's download) runs once per back-off for a version that keeps
    failing while another serves, not at every poll; a good version is loaded at once."""
    from flowkit.serve import models

    clock = [1000.0]
    monkeypatch.setattr(models, "time", types.SimpleNamespace(time=lambda: clock[0]))
    fetched: list[int] = []

    def loader(name: str, version: int, uri: str) -> Any:
        fetched.append(version)
        if version == 4:
            raise RuntimeError("broken on purpose")
        return f"model v{version}"

    slot = models.Slot("clf", "fol_backoff", serve_registry.uri, loader)
    serve_registry.point("fol_backoff", 1)
    slot.refresh()
    serve_registry.point("fol_backoff", 4)
    for _ in range(5):  # five polls within the first back-off
        slot.refresh()
        clock[0] += models.RETRY_FIRST / 10
    assert fetched == [1, 4]
    clock[0] += models.RETRY_FIRST  # past it: tried again, then the wait doubles
    slot.refresh()
    slot.refresh()
    assert fetched == [1, 4, 4]
    clock[0] += models.RETRY_FIRST * 1.5  # still within twice the first wait
    slot.refresh()
    assert fetched == [1, 4, 4]
    clock[0] += models.RETRY_FIRST
    slot.refresh()
    assert fetched == [1, 4, 4, 4]
    assert slot.current is not None and slot.current.version == 1
    serve_registry.point("fol_backoff", 2)  # another version: tried at the next poll
    slot.refresh()
    assert fetched == [1, 4, 4, 4, 2] and slot.current.version == 2 and slot.failure is None


def test_a_number_after_the_at_serves_that_version(
    serve: Callable[..., Any], serve_registry: Any
) -> None:
    serve_registry.point("fol_number", 1)
    server = serve(ServeConfig("clf", "3", serve_registry.uri, follow_seconds=FOLLOW))
    assert server.score(BODY).version == 3
    assert server.get("/version").json()["version"] == 3
    assert version_pin("3") == 3 and version_pin("production") is None
    assert version_pin("0") is None and version_pin("٣") is None  # an Arabic-Indic 3: an alias


def test_a_pinned_server_does_not_follow(serve: Callable[..., Any], serve_registry: Any) -> None:
    serve_registry.point("fol_pinned", 1)
    server = serve(ServeConfig("clf", "fol_pinned", serve_registry.uri, follow_seconds=None))
    serve_registry.point("fol_pinned", 2)
    time.sleep(1.0)
    assert server.score(BODY).version == 1
    assert server.get("/health").json()["version"] == 1


def test_a_pinned_server_loads_once_the_alias_exists(
    serve: Callable[..., Any], serve_registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowkit.serve import models

    monkeypatch.setattr(models, "PINNED_RETRY_SECONDS", 0.2)
    server = serve(ServeConfig("clf", "fol_late", serve_registry.uri, follow_seconds=None))
    assert server.get("/health").status == 503
    serve_registry.point("fol_late", 2)
    server.wait_for(lambda: server.get("/health").status == 200, 10, "the first load")
    assert server.score(BODY).version == 2


def test_the_canary_answers_its_fraction_of_requests(
    serve: Callable[..., Any], serve_registry: Any
) -> None:
    serve_registry.point("fol_main", 1)
    serve_registry.point("fol_canary", 2)
    server = _following(serve, serve_registry, "fol_main", canary=("fol_canary", 0.1))
    health = server.get("/health").json()
    assert health["canary"] == {
        "model": "clf",
        "alias": "fol_canary",
        "version": 2,
        "fraction": 0.1,
    }
    seen: Counter[tuple[int, str]] = Counter()
    for _ in range(2000):
        reply = server.score(BODY)
        assert reply.status == 200
        assert {round(p) for p in reply.json()["predictions"]} == {reply.version}
        seen[reply.version, reply.headers["x-model-alias"]] += 1
    assert set(seen) == {(1, "fol_main"), (2, "fol_canary")}
    assert abs(seen[2, "fol_canary"] / 2000 - 0.1) <= 0.05
    assert seen[2, "fol_canary"] == 200  # the split is counted, not drawn
    assert server.metric("flowkit_serve_requests_total", version="2", alias="fol_canary") == 200
    assert server.metric("flowkit_serve_requests_total", version="1", alias="fol_main") == 1800


@dataclass
class Recorded:
    """A prediction log in memory (the interface of flowkit.serve.predlog.PredictionLog)."""

    rows: list[tuple[str, int, str, int, list[Any]]] = field(default_factory=list)
    closed: bool = False

    def record(
        self,
        request_id: str,
        version: int,
        alias: str,
        inputs: Any,
        predictions: list[Any],
        latency_s: float,
    ) -> None:
        assert latency_s >= 0
        self.rows.append((request_id, version, alias, len(inputs), predictions))

    def close(self) -> None:
        self.closed = True


def test_the_shadow_scores_every_request_after_the_answer(
    serve: Callable[..., Any], serve_registry: Any
) -> None:
    serve_registry.point("fol_primary", 1)
    serve_registry.point("fol_shadow", 3)
    log = Recorded()
    server = _following(
        serve, serve_registry, "fol_primary", shadow="fol_shadow", prediction_log=log
    )
    ids = []
    for _ in range(50):
        reply = server.score(BODY)
        assert reply.status == 200 and reply.version == 1  # the primary answers
        ids.append(reply.headers["x-request-id"])

    def shadowed() -> float:
        return server.metric("flowkit_serve_shadow_total", version="3", outcome="ok")

    server.wait_for(lambda: shadowed() == 50, 10, "50 shadow scorings")
    server.wait_for(lambda: len(log.rows) == 100, 10, "100 logged predictions")
    assert server.metric("flowkit_serve_requests_total", version="3") == 0  # never answered
    primary = {r[0]: r for r in log.rows if r[2] == "fol_primary"}
    shadow = {r[0]: r for r in log.rows if r[2] == "fol_shadow"}
    assert set(primary) == set(shadow) == set(ids)
    assert all(r[1] == 1 and [round(p) for p in r[4]] == [1, 1] for r in primary.values())
    assert all(r[1] == 3 and [round(p) for p in r[4]] == [3, 3] for r in shadow.values())


def test_a_failing_shadow_never_fails_the_answer(
    serve: Callable[..., Any], serve_registry: Any
) -> None:
    serve_registry.point("fol_primary2", 2)
    serve_registry.point("fol_shadow2", 4)  # cannot be loaded
    server = _following(serve, serve_registry, "fol_primary2", shadow="fol_shadow2")
    for _ in range(20):
        assert server.score(BODY).version == 2
    health = server.get("/health").json()
    assert health["status"] == "ok" and health["shadow"]["failure"]["version"] == 4
    errors = lambda: server.metric("flowkit_serve_shadow_total", outcome="error")  # noqa: E731
    server.wait_for(lambda: errors() == 20, 10, "20 failed shadow scorings")


class Slow:
    """A model that takes its time: as a shadow, it must not delay the answers."""

    def predict(self, frame: Any) -> Any:
        time.sleep(1.0)
        return [9] * len(frame)


def test_a_slow_shadow_never_delays_the_answer(
    serve: Callable[..., Any], serve_registry: Any
) -> None:
    from flowkit import ml

    slow = ml.register(Slow(), "clf", serve_registry.uri, alias="fol_slow_shadow").version
    serve_registry.point("fol_fast", 1)
    server = _following(serve, serve_registry, "fol_fast", shadow="fol_slow_shadow")
    ok = lambda: server.metric("flowkit_serve_shadow_total", version=str(slow), outcome="ok")  # noqa: E731
    for _ in range(10):
        assert server.score(BODY).version == 1
    # ten shadow scorings take 10 s one after another: answers that waited for them would
    # find most of them done
    assert ok() <= 2
    server.wait_for(lambda: ok() == 10, 30, "ten slow shadow scorings")


def test_a_deleted_alias_keeps_the_last_version_serving(
    serve: Callable[..., Any], serve_registry: Any
) -> None:
    from mlflow import MlflowClient

    serve_registry.point("fol_deleted", 2)
    server = _following(serve, serve_registry, "fol_deleted")
    MlflowClient(serve_registry.uri).delete_registered_model_alias("clf", "fol_deleted")
    server.wait_for(lambda: "failure" in server.get("/health").json(), FOLLOW + 10, "failure")
    doc = server.get("/health").json()
    assert doc["status"] == "ok" and doc["version"] == 2
    assert doc["failure"]["version"] is None and "fol_deleted" in doc["failure"]["error"]
    assert server.score(BODY).version == 2

"""The closed loop over real HTTP: a served model's traffic lands in the prediction log, with
the version and alias that answered each request, and is read back into ``ml.drift``.

Version ``v`` of ``clf`` predicts ``v`` (conftest.py), so each logged prediction shows which
version gave it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from flowkit import ml
from flowkit.serve.models import ServeConfig
from flowkit.serve.predlog import PredictionLog

RNG = np.random.default_rng(7)


def _body(mean: float, rows: int = 5) -> dict[str, Any]:
    a = RNG.normal(mean, 1.0, rows).round(4).tolist()
    b = RNG.integers(0, 2, rows).astype(float).tolist()
    return {
        "dataframe_split": {
            "columns": ["a", "b"],
            "data": [[x, y] for x, y in zip(a, b, strict=True)],
        }
    }


def test_served_traffic_is_logged_and_read_back_into_drift(
    serve: Callable[..., Any], serve_registry: Any, tmp_path: Path
) -> None:
    serve_registry.point("pl_prod", 1)
    serve_registry.point("pl_canary", 2)
    store = tmp_path / "store"
    plog = PredictionLog(store, "clf", batch_rows=200, flush_seconds=0.2)
    server = serve(
        ServeConfig("clf", "pl_prod", serve_registry.uri, follow_seconds=None,
                    canary=("pl_canary", 0.25), prediction_log=plog)
    )  # fmt: skip

    request_ids = []
    for _ in range(200):
        reply = server.score(_body(0.0))
        assert reply.status == 200, reply.body
        request_ids.append(reply.headers["x-request-id"])
    # a request is recorded after its answer is sent: wait until all of them are written
    server.wait_for(lambda: plog.written == 1000, 30, "the first 1,000 rows written")
    midway = dt.datetime.now(dt.timezone.utc)
    for _ in range(100):
        assert server.score(_body(3.0)).status == 200  # the inputs drift
    server.wait_for(lambda: plog.written == 1500, 30, "the last 500 rows written")

    log = ml.prediction_log("clf", store=store)
    assert log.num_rows == 1500 and plog.dropped == 0
    rows = log.to_pylist()
    assert {r["request_id"] for r in rows[:1000]} == set(request_ids)
    for r in rows:  # the version that answered, under the alias that routed to it
        assert (r["alias"], r["version"]) in {("pl_prod", 1), ("pl_canary", 2)}
        assert round(r["prediction"]) == r["version"] and r["latency_s"] >= 0
    share = Counter(r["alias"] for r in rows)["pl_canary"] / len(rows)
    assert 0.1 < share < 0.4

    reference = pa.table({"a": RNG.normal(0.0, 1.0, 2000), "b": RNG.integers(0, 2, 2000) * 1.0})
    before = ml.prediction_log("clf", store=store, until=midway)
    after = ml.prediction_log("clf", store=store, since=midway)
    assert (before.num_rows, after.num_rows) == (1000, 500)
    assert not ml.drift(reference, before, columns=["a", "b"]).drifted
    report = ml.drift(reference, after, columns=["a", "b"])
    assert report.drifted and report.drifted_features == ["a"]


def test_a_promotion_shows_in_the_log(
    serve: Callable[..., Any], serve_registry: Any, tmp_path: Path
) -> None:
    serve_registry.point("pl_follow", 1)
    store = tmp_path / "store"
    plog = PredictionLog(store, "clf", flush_seconds=0.1)
    server = serve(ServeConfig("clf", "pl_follow", serve_registry.uri, follow_seconds=0.2,
                               prediction_log=plog))  # fmt: skip
    assert server.score(_body(0.0, rows=1)).version == 1
    serve_registry.point("pl_follow", 3)
    server.wait_for(lambda: server.score(_body(0.0, rows=1)).version == 3, 30, "v3 answering")

    def logged() -> list[int]:
        return [int(v) for v in ml.prediction_log("clf", store=store).column("version").to_pylist()]

    server.wait_for(lambda: 3 in logged(), 30, "v3's answer logged")
    versions = logged()
    assert versions[0] == 1 and set(versions) == {1, 3}

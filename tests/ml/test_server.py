"""The registry and the tracker against a real ``mlflow server`` on loopback (HTTP, proxied
artifacts): the same calls as on sqlite, no code change but the URI."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

import flowkit as fk
from flowkit import ml

X = np.random.default_rng(1).normal(size=(80, 4))
Y = (X[:, 1] + X[:, 2] > 0).astype(int)


@fk.task
def fit(depth: int) -> DecisionTreeClassifier:
    return DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, Y)


@fk.task
def evaluate(model: DecisionTreeClassifier) -> ml.Metrics:
    return {"accuracy": float(model.score(X, Y))}


@fk.workflow
def train_and_register(depth: int = 2, uri: str = "") -> ml.ModelVersion:
    model = fit(depth)
    ok = ml.gate(evaluate(model), threshold=0.5)
    return ml.register(model, "server-model", tracking_uri=uri, metrics={"accuracy": ok})


def test_lifecycle_against_a_real_mlflow_server(mlflow_server: str) -> None:
    from mlflow import MlflowClient

    tracker = ml.MLflowTracker(tracking_uri=mlflow_server, experiment="server-test")
    versions = []
    for depth in (1, 3):
        run = fk.run(
            train_and_register, depth=depth, uri=mlflow_server, backend="threads",
            store=f"memory://srv-{depth}", callbacks=[tracker],
        )  # fmt: skip
        versions.append(run.output)
    assert [v.version for v in versions] == [1, 2]

    ml.promote("server-model", 1, tracking_uri=mlflow_server)
    ml.promote("server-model", 2, tracking_uri=mlflow_server)
    deployed: Any = ml.load("server-model", tracking_uri=mlflow_server)
    assert deployed.max_depth == 3
    assert ml.rollback("server-model", tracking_uri=mlflow_server).version == 1
    assert ml.load("server-model", tracking_uri=mlflow_server).max_depth == 1
    with pytest.raises(ml.NoEarlierVersionError):
        ml.rollback("server-model", tracking_uri=mlflow_server)
    with pytest.raises(ml.ModelNotFoundError, match="no alias 'canary'"):
        ml.load("server-model", alias="canary", tracking_uri=mlflow_server)

    c = MlflowClient(tracking_uri=mlflow_server)
    mlrun = c.get_run(tracker.last_run_id)
    assert mlrun.info.status == "FINISHED"
    assert mlrun.data.params == {"depth": "3", "uri": mlflow_server}
    assert mlrun.data.metrics["accuracy"] == pytest.approx(evaluate(fit(3))["accuracy"])

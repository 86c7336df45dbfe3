"""Lineage in MLflow, read back from a real sqlite registry: registered versions carry the
flowkit run and the tracked training run, a signature and an input example; drift scores are
metrics of the monitoring run."""

from __future__ import annotations

import json
import tempfile
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression

import flowkit as fk
from flowkit import ml

RNG = np.random.default_rng(0)
FEATURES = pd.DataFrame({"a": RNG.normal(size=80), "b": RNG.normal(size=80)})
LABELS = (FEATURES["a"] > 0).astype(int)


def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@fk.task
def fit(c: float) -> LogisticRegression:
    return LogisticRegression(C=c).fit(FEATURES, LABELS)


@fk.workflow
def train(uri: str, c: float = 1.0) -> ml.ModelVersion:
    return ml.register(fit(c), "lineage", tracking_uri=uri, tags={"team": "risk"})


def test_a_version_registered_in_a_tracked_run_names_both_runs(tracking_uri: str) -> None:
    tracker = ml.MLflowTracker(tracking_uri=tracking_uri, experiment="training")
    run = fk.run(
        train, uri=tracking_uri, backend="threads", store="memory://lineage", callbacks=[tracker]
    )
    c = _client(tracking_uri)
    mv = c.get_model_version("lineage", str(run.output.version))
    assert mv.tags["flowkit.run_id"] == run.id
    assert mv.tags["flowkit.training_run_id"] == tracker.last_run_id
    assert mv.tags["team"] == "risk"
    logging_run = c.get_run(mv.run_id)  # the run holding the model: a child of the training run
    assert logging_run.data.tags["mlflow.parentRunId"] == tracker.last_run_id
    # flowkit.run_id still finds exactly one MLflow run: the one tracking the flowkit run
    experiments = [e.experiment_id for e in c.search_experiments()]
    (tracked,) = c.search_runs(experiments, f"tags.`flowkit.run_id` = '{run.id}'")
    assert tracked.info.run_id == tracker.last_run_id


def test_an_untracked_run_still_names_the_flowkit_run(tracking_uri: str) -> None:
    run = fk.run(train, uri=tracking_uri, backend="threads", store="memory://lineage-untracked")
    mv = _client(tracking_uri).get_model_version("lineage", "1")
    assert mv.tags["flowkit.run_id"] == run.id  # fk.current_run_id() inside the task
    assert "flowkit.training_run_id" not in mv.tags  # no MLflow run tracks it
    assert mv.tags["team"] == "risk"


def test_outside_any_run_there_is_no_lineage_tag(tracking_uri: str) -> None:
    version = ml.register(fit(1.0), "plain", tracking_uri=tracking_uri)  # a plain call
    mv = _client(tracking_uri).get_model_version("plain", str(version.version))
    assert "flowkit.run_id" not in mv.tags and fk.current_run_id() is None


@pytest.mark.parametrize(
    "example",
    [FEATURES.head(3), pa.Table.from_pandas(FEATURES.head(20), preserve_index=False)],
    ids=["dataframe", "arrow"],
)
def test_an_input_example_gives_a_signature_and_an_example(tracking_uri: str, example: Any) -> None:
    from mlflow.models import Model

    model = LogisticRegression().fit(FEATURES, LABELS)
    mv = ml.register(model, "signed", tracking_uri=tracking_uri, input_example=example)
    folder = _download(tracking_uri, "signed", mv.version)
    info = Model.load(folder)
    inputs = {c["name"]: c["type"] for c in json.loads(info.signature.inputs.to_json())}
    assert inputs == {"a": "double", "b": "double"}
    assert info.signature.outputs is not None
    loaded = info.load_input_example(folder)
    assert list(loaded.columns) == ["a", "b"] and 1 <= len(loaded) <= 5
    assert ml.load("signed", tracking_uri=tracking_uri, version=mv.version).predict(loaded).shape


def _download(uri: str, name: str, version: int) -> str:
    """The registered version's model folder, downloaded (MLflow's global URI is not set)."""
    mv = _client(uri).get_model_version(name, str(version))
    return str(_client(uri).download_artifacts(mv.run_id, "model", tempfile.mkdtemp()))


def test_a_plain_object_gets_a_signature_too(tracking_uri: str) -> None:
    from mlflow.models import Model

    mv = ml.register(Doubler(), "plain", tracking_uri=tracking_uri, input_example=FEATURES.head(2))
    assert Model.load(_download(tracking_uri, "plain", mv.version)).signature is not None
    assert ml.load("plain", tracking_uri=tracking_uri, version=mv.version).predict(2) == 4


class Doubler:
    def predict(self, x: Any) -> Any:
        return x * 2


def test_an_example_the_model_cannot_score_registers_nothing(tracking_uri: str) -> None:
    model = LogisticRegression().fit(FEATURES, LABELS)
    with pytest.raises(ml.RegistryError, match="input_example"):
        ml.register(model, "bad-example", tracking_uri=tracking_uri,
                    input_example=pd.DataFrame({"zzz": ["x"]}))  # fmt: skip
    assert _client(tracking_uri).search_model_versions("name='bad-example'") == []


# -- drift scores as metrics of the monitoring run ----------------------------------------


@fk.workflow
def monitor(reference: pa.Table, current: pa.Table) -> ml.DriftReport:
    return ml.drift(reference, current, method="ks")


def test_drift_scores_are_metrics_of_the_monitoring_run(tracking_uri: str) -> None:
    reference = pa.table({"a": RNG.normal(0, 1, 500), "b": RNG.normal(0, 1, 500)})
    current = pa.table({"a": RNG.normal(2, 1, 500), "b": RNG.normal(0, 1, 500)})
    tracker = ml.MLflowTracker(tracking_uri=tracking_uri, experiment="monitoring")
    run = fk.run(
        monitor, reference=reference, current=current, backend="threads",
        store="memory://monitor", callbacks=[tracker],
    )  # fmt: skip
    metrics = _client(tracking_uri).get_run(tracker.last_run_id).data.metrics
    report = run.output
    assert metrics["ml.drift/drifted"] == 1.0
    assert metrics["ml.drift/a/score"] == pytest.approx(report.features["a"]["score"])
    assert metrics["ml.drift/b/pvalue"] == pytest.approx(report.features["b"]["pvalue"])
    assert metrics["ml.drift/a/pvalue"] < 0.01


# -- each HPO trial's parameters with its metrics -------------------------------------------


@fk.task
def fit_setting(params: dict[str, float]) -> LogisticRegression:
    return LogisticRegression(C=params["C"], tol=params["tol"]).fit(FEATURES, LABELS)


@fk.task
def score(model: LogisticRegression) -> ml.Metrics:
    return {"accuracy": float(model.score(FEATURES, LABELS)), "C": float(model.C)}


@fk.workflow
def tune_grid() -> list[ml.Metrics]:
    settings = ml.grid(C=[0.01, 1.0], tol=[1e-4, 1e-3])
    return score.map(model=fit_setting.map(params=settings))


@fk.workflow
def tune_random() -> list[ml.Metrics]:
    settings = ml.random_search({"C": ml.loguniform(0.01, 10), "tol": [1e-4, 1e-3]}, n=3)
    return score.map(model=fit_setting.map(params=settings))


@fk.workflow
def two_sweeps() -> tuple[list[ml.Metrics], list[ml.Metrics]]:  # two lists of 2: ambiguous
    a = score.map(model=fit_setting.map(params=ml.grid(C=[0.1, 1.0], tol=[1e-4])))
    return a, score.map(model=fit_setting.map(params=ml.grid(C=[2.0, 3.0], tol=[1e-4])))


def _trials(uri: str, parent: str) -> list[Any]:
    found = _client(uri).search_runs(
        [_client(uri).get_run(parent).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent}'",
    )
    return sorted(found, key=lambda r: int(r.data.tags["flowkit.trial"]))


@pytest.mark.parametrize("space", ["grid", "random"])
def test_each_trial_is_a_child_run_with_its_params_and_metrics(
    tracking_uri: str, space: str
) -> None:
    tracker = ml.MLflowTracker(tracking_uri=tracking_uri, experiment="hpo")
    tune = tune_grid if space == "grid" else tune_random
    run = fk.run(tune, backend="threads", store="memory://hpo", callbacks=[tracker])
    trials = _trials(tracking_uri, str(tracker.last_run_id))
    assert len(trials) == len(run.output) == (4 if space == "grid" else 3)
    for i, (trial, metrics) in enumerate(zip(trials, run.output, strict=True)):
        assert trial.info.run_name == f"trial-{i}"
        assert "flowkit.run_id" not in trial.data.tags  # it names the parent only
        assert float(trial.data.params["C"]) == pytest.approx(metrics["C"])
        assert trial.data.metrics == pytest.approx(metrics)  # its own metrics, unprefixed
    if space == "grid":
        assert [t.data.params["tol"] for t in trials] == ["0.0001", "0.001", "0.0001", "0.001"]


def test_trials_can_be_left_out(tracking_uri: str) -> None:
    tracker = ml.MLflowTracker(tracking_uri=tracking_uri, experiment="hpo", log_trials=False)
    fk.run(tune_grid, backend="threads", store="memory://hpo-off", callbacks=[tracker])
    assert _trials(tracking_uri, str(tracker.last_run_id)) == []


def test_ambiguous_settings_make_no_trial_runs(tracking_uri: str) -> None:
    tracker = ml.MLflowTracker(tracking_uri=tracking_uri, experiment="hpo")
    fk.run(two_sweeps, backend="threads", store="memory://hpo-two", callbacks=[tracker])
    assert _trials(tracking_uri, str(tracker.last_run_id)) == []


def test_settings_made_outside_a_trace_are_not_noted() -> None:
    from flowkit.ml.search import traced_settings

    before = traced_settings("tune_grid")
    ml.grid(C=[1.0, 2.0, 3.0, 4.0])  # not while tracing: never noted
    assert traced_settings("tune_grid") == before
    assert [len(s) for s in before] == [4]
    assert traced_settings("no-such-workflow") == []

"""ml.MLflowTracker: one MLflow run per flowkit run, read back from a real sqlite store."""

from __future__ import annotations

import threading
import typing
from typing import Any, NamedTuple

import pytest

import flowkit as fk
from flowkit import ml
from flowkit.ml.tracking import metric_key, metrics_in, node_base_and_step, param_value


def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


@fk.task(cache=True)
def fit(c: float) -> float:
    return c * 2


@fk.task
def evaluate(model: float) -> ml.Metrics:
    return {"accuracy": model / 10, "loss": 1.0 - model / 10}


@fk.task
def best(scores: list[ml.Metrics]) -> ml.Metrics:
    return max(scores, key=lambda m: m["accuracy"])


@fk.task
def explode(x: float) -> float:
    raise ValueError(f"boom {x}")


@fk.workflow
def sweep(cs: list[float] = [1.0, 2.0, 3.0], tag: str = "demo") -> ml.Metrics:  # noqa: B006
    return best(evaluate.map(model=fit.map(c=cs)))


@fk.workflow
def single(c: float = 4.0) -> ml.Metrics:
    return evaluate(fit(c))


@fk.workflow
def failing(x: float = 1.0) -> float:
    return explode(fit(x))


def test_a_run_logs_params_tags_metrics_and_status(tracking_uri: str) -> None:
    tracker = ml.MLflowTracker(tracking_uri=tracking_uri, experiment="sweeps", tags={"team": "x"})
    run = fk.run(sweep, backend="threads", store="memory://trk-1", callbacks=[tracker])
    c = _client(tracking_uri)
    mlrun = c.get_run(tracker.last_run_id)
    assert c.get_experiment(mlrun.info.experiment_id).name == "sweeps"
    assert mlrun.info.status == "FINISHED"
    assert mlrun.data.params == {"cs": "[1.0, 2.0, 3.0]", "tag": "demo"}
    tags = mlrun.data.tags
    assert tags["flowkit.run_id"] == run.id and tags["flowkit.workflow"] == "sweep"
    assert tags["flowkit.backend"] == "threads" and tags["team"] == "x"
    assert tags["flowkit.status"] == "succeeded" and tags["flowkit.tasks_run"] == "7"
    metrics = mlrun.data.metrics
    # several metric-producing calls: prefixed by node; the map's items are steps
    assert metrics["best/accuracy"] == pytest.approx(0.6)
    history = c.get_metric_history(tracker.last_run_id, "evaluate/accuracy")
    assert sorted((m.step, m.value) for m in history) == [(0, 0.2), (1, 0.4), (2, 0.6)]
    assert "accuracy" not in metrics
    for key in ("flowkit/fit/duration_s", "flowkit/fit/cached", "flowkit/duration_s"):
        assert key in metrics
    cached = c.get_metric_history(tracker.last_run_id, "flowkit/fit/cached")
    assert [m.value for m in cached] == [0.0, 0.0, 0.0]

    # Same store again: fit hits the cache, and the tracker says so.
    fk.run(sweep, backend="threads", store="memory://trk-1", callbacks=[tracker])
    second = c.get_run(tracker.last_run_id)
    assert second.info.run_id != mlrun.info.run_id
    assert second.data.tags["flowkit.tasks_cached"] == "3"
    cached = c.get_metric_history(tracker.last_run_id, "flowkit/fit/cached")
    assert [m.value for m in cached] == [1.0, 1.0, 1.0]


def test_a_single_metrics_output_is_logged_unprefixed(tracking_uri: str) -> None:
    tracker = ml.MLflowTracker(tracking_uri=tracking_uri)
    fk.run(single, backend="local", store="memory://trk-2", callbacks=[tracker])
    mlrun = _client(tracking_uri).get_run(tracker.last_run_id)
    assert mlrun.data.metrics["accuracy"] == pytest.approx(0.8)
    assert mlrun.data.metrics["loss"] == pytest.approx(0.2)
    exp = _client(tracking_uri).get_experiment(mlrun.info.experiment_id)
    assert exp.name == "single"  # experiment=None: the workflow's name


def test_a_failed_run_ends_failed_with_the_error(tracking_uri: str) -> None:
    tracker = ml.MLflowTracker(tracking_uri=tracking_uri)
    with pytest.raises(fk.TaskFailedError):
        fk.run(failing, backend="threads", store="memory://trk-3", callbacks=[tracker])
    mlrun = _client(tracking_uri).get_run(tracker.last_run_id)
    assert mlrun.info.status == "FAILED"
    assert mlrun.data.tags["flowkit.status"] == "failed"
    assert "boom 2.0" in mlrun.data.tags["flowkit.error"]
    assert mlrun.data.tags["flowkit.tasks_failed"] == "1"


def test_concurrent_runs_from_threads_get_their_own_mlflow_runs(tracking_uri: str) -> None:
    tracker = ml.MLflowTracker(tracking_uri=tracking_uri, experiment="parallel")
    ids: dict[float, str] = {}

    def go(c: float) -> None:
        run = fk.run(
            single, c=c, backend="local", store=f"memory://trk-par-{c}", callbacks=[tracker]
        )
        ids[c] = run.id

    threads = [threading.Thread(target=go, args=(c,)) for c in (1.0, 3.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c = _client(tracking_uri)
    exp = c.get_experiment_by_name("parallel")
    runs = c.search_runs([exp.experiment_id])
    by_flowkit_id = {r.data.tags["flowkit.run_id"]: r for r in runs}
    assert set(by_flowkit_id) == set(ids.values())
    for cval, run_id in ids.items():
        assert by_flowkit_id[run_id].data.metrics["accuracy"] == pytest.approx(cval / 5)
        assert by_flowkit_id[run_id].data.params == {"c": str(cval)}


def test_an_unreachable_tracker_never_breaks_the_run(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    tracker = ml.MLflowTracker(tracking_uri="http://127.0.0.1:9", experiment="x")  # nothing there
    run = fk.run(single, backend="local", store="memory://trk-4", callbacks=[tracker])
    assert run.status == "succeeded" and run.output["accuracy"] == pytest.approx(0.8)
    assert tracker.last_run_id is None
    assert "on_run_start" in caplog.text


class Result(NamedTuple):
    model: float
    metrics: ml.Metrics


def test_metrics_are_found_inside_tuple_and_namedtuple_returns() -> None:
    m = {"a": 1.0}
    assert metrics_in(ml.Metrics, m) == [m]
    assert metrics_in(tuple[float, ml.Metrics], (1.0, m)) == [m]
    assert metrics_in(Result, Result(1.0, m)) == [m]
    assert metrics_in(typing.Annotated[ml.Metrics, "x"], m) == [m]
    assert metrics_in(dict[str, int], {"a": 1}) == []
    assert metrics_in(float, 1.0) == []


def test_names_are_made_mlflow_safe() -> None:
    assert node_base_and_step("evaluate[12]") == ("evaluate", 12)
    assert node_base_and_step("retrain/fit") == ("retrain/fit", 0)
    assert metric_key("flowkit", "a[b]c", "duration_s") == "flowkit/a_b_c/duration_s"
    assert metric_key("x", "..") == "x/_"
    assert param_value(list(range(3))) == "[0, 1, 2]"
    assert param_value("x" * 7000).endswith("...") and len(param_value("x" * 7000)) == 6000
    assert param_value(object()).startswith("<object")

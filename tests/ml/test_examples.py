"""The ML examples run end to end: the lifecycle on the threads backend (both retraining
outcomes), and the closed loop (schedules, triggers and a server, all real processes)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pyarrow.parquet as pq
import pytest

from flowkit import ml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"flowkit_example_{name}", EXAMPLES / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the example resolve their module
    spec.loader.exec_module(module)
    return module


def test_ml_lifecycle_promotes_then_rolls_back(
    tracking_uri: str, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = _load("ml_lifecycle")
    store = str(isolated / "store")
    common = ["--backend", "threads", "--store", store, "--tracking-uri", tracking_uri]

    run = example.main(common)
    out = run.output
    assert run.status == "succeeded"
    assert out.action == "promoted" and (out.production, out.candidate) == (2, 2)
    assert out.accuracy_before < 0.6 < 0.75 <= out.accuracy_after  # drift hurt, retraining fixed
    assert len(out.drifted) == 5
    assert out.review_queue == f"{store}/annotations/digits-review"
    assert pq.read_table(out.review_queue).num_rows == 50
    assert ml.alias_history(example.MODEL, tracking_uri=tracking_uri) == [1, 2]
    printed = capsys.readouterr().out
    assert "action: promoted; production serves v2" in printed

    # A bar the retrained model cannot reach: it is promoted, fails the check, rolled back.
    again = example.main([*common, "--retrain-min-accuracy", "0.99"])
    out = again.output
    assert out.action == "rolled back" and (out.candidate, out.production) == (4, 3)
    assert ml.get_version(example.MODEL, tracking_uri=tracking_uri).version == 3
    assert ml.alias_history(example.MODEL, tracking_uri=tracking_uri) == [1, 2, 3]
    assert again.summary()["cached"] > 0  # data, split and the grid came from the cache
    assert pq.read_table(out.review_queue).num_rows == 100  # the queue grows across runs

    # The first gate stops a model below the bar before anything is registered.
    with pytest.raises(SystemExit, match="nothing deployed: validation gate failed: accuracy="):
        example.main([*common, "--min-accuracy", "0.99"])
    assert ml.alias_history(example.MODEL, tracking_uri=tracking_uri) == [1, 2, 3]

    # Each flowkit run is one MLflow run, found by its flowkit run id.
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=tracking_uri)
    exp = c.get_experiment_by_name("ml-lifecycle")
    (mlrun,) = c.search_runs([exp.experiment_id], f"tags.`flowkit.run_id` = '{again.id}'")
    assert mlrun.info.status == "FINISHED"
    assert mlrun.data.metrics["pick_best/accuracy"] > 0.9  # the first gate's model
    assert "retrain_if_drifted/evaluate/accuracy" in mlrun.data.metrics


def test_hpo_tracks_the_search_and_registers_the_winner(
    tracking_uri: str, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = _load("hpo")
    run = example.main(
        ["--backend", "threads", "--store", str(isolated / "s"), "--tracking-uri", tracking_uri,
         "--trials", "6"]
    )  # fmt: skip
    assert run.output == ml.ModelVersion("digits-forest", 1, "models:/digits-forest/1")
    assert ml.get_version("digits-forest", tracking_uri=tracking_uri).version == 1
    printed = capsys.readouterr().out
    assert "6 trials; best validation accuracy" in printed and "winner: {" in printed


def test_hpo_through_the_flowkit_cli(
    tracking_uri: str, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowkit.cli import main as flowkit_cli

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)  # tracking_uri="" -> this registry
    argv = ["run", str(EXAMPLES / "hpo.py"), "--backend", "threads", "--n-trials", "4"]
    assert flowkit_cli(argv) == 0
    assert ml.get_version("digits-forest", tracking_uri=tracking_uri).version == 1


def test_closed_loop_retrains_on_labelled_drift_and_serves_the_new_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # imported under its own name: the scheduler's runs store its classes as `closed_loop:...`
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.chdir(tmp_path)
    example = importlib.import_module("closed_loop")
    out = example.main(["--work", str(tmp_path / "loop")])
    assert (out["first"], out["retrained"]) == (1, 2)
    assert out["monitor"].drifted and out["monitor"].queued == out["monitor"].requests > 0
    assert out["accuracy_before"] < 0.6 < 0.8 <= out["accuracy_after"]
    printed = capsys.readouterr().out
    assert "6. retrain (succeeded) promoted v2" in printed
    assert "7. verify (succeeded): the server answers with v2" in printed
    assert not (tmp_path / "loop").exists()  # the work folder is removed without --keep

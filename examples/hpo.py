"""Hyper-parameter search with flowkit: 60 random settings fanned out with ``task.map``.

    python examples/hpo.py --backend threads          # or local / ray
    python examples/hpo.py --trials 100 --seed 1
    flowkit run examples/hpo.py --backend threads --n-trials 60

Each trial trains a RandomForest on the digits training split and returns its validation
``ml.Metrics``; the trials are cached, so a re-run (or a longer search with the same seed)
only trains settings it has not seen. ``ml.MLflowTracker`` logs the whole search as one MLflow
run: ``trial/accuracy`` has one step per trial, the winner's test metrics are
``evaluate/accuracy``, and the winning model is registered (with its settings as params)
under the alias ``production``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import numpy as np
import pyarrow as pa
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier

import flowkit as fk
from flowkit import ml

MODEL = "digits-forest"
SPACE = {
    "n_estimators": ml.randint(10, 120),
    "max_depth": [4, 8, 16, None],
    "max_features": ["sqrt", "log2", 0.3],
    "min_samples_leaf": ml.randint(1, 6),
    "criterion": ["gini", "entropy"],
}


@fk.task(cache=True)
def load_data() -> pa.Table:
    x, y = load_digits(return_X_y=True)
    return pa.table({"pixels": list(x), "label": y})


def _xy(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    return np.stack(table["pixels"].to_numpy(zero_copy_only=False)), table["label"].to_numpy()


@fk.task
def settings(n: int, seed: int) -> list[dict[str, Any]]:
    """Sampled at run time, so the number of trials can be a workflow input."""
    return ml.random_search(SPACE, n=n, seed=seed)


@fk.task(cache=True)
def fit(train: pa.Table, params: dict[str, Any]) -> RandomForestClassifier:
    x, y = _xy(train)
    return RandomForestClassifier(random_state=0, n_jobs=1, **params).fit(x, y)


@fk.task(cache=True)
def trial(train: pa.Table, valid: pa.Table, params: dict[str, Any]) -> ml.Metrics:
    model = fit.fn(train, params)  # the plain function: trials keep only their metrics
    x, y = _xy(valid)
    return {"accuracy": float(model.score(x, y)), "trees": float(model.n_estimators)}


@fk.task
def best_setting(candidates: list[dict[str, Any]], scores: list[ml.Metrics]) -> dict[str, Any]:
    # Ties go to the smaller forest: as good, and cheaper to serve.
    best = max(range(len(scores)), key=lambda i: (scores[i]["accuracy"], -scores[i]["trees"]))
    return candidates[best]


@fk.task
def evaluate(model: RandomForestClassifier, test: pa.Table) -> ml.Metrics:
    x, y = _xy(test)
    return {"accuracy": float(model.score(x, y))}


@fk.workflow
def hpo(n_trials: int = 60, seed: int = 0, tracking_uri: str = "") -> ml.ModelVersion:
    data = load_data()
    rest, test = ml.split(data, test_size=0.2, seed=0, stratify="label")
    train, valid = ml.split(rest, test_size=0.25, seed=1, stratify="label")
    candidates = settings(n_trials, seed)
    scores = trial.map(train=train, valid=valid, params=candidates)
    params = best_setting(candidates, scores)
    model = fit(rest, params)  # the winner, retrained on train + validation
    metrics = evaluate(model, test)
    return ml.register(
        model, MODEL, tracking_uri=tracking_uri, metrics=metrics, params=params,
        alias="production",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> fk.Run:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="local", choices=["local", "threads", "ray"])
    parser.add_argument("--store", default=None, help="flowkit store URL (default ./.flowkit)")
    parser.add_argument("--tracking-uri", default="", help="MLflow URI (default: embedded)")
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    uri = ml.resolve_tracking_uri(args.tracking_uri or None)
    tracker = ml.MLflowTracker(tracking_uri=uri, experiment="hpo")
    run = fk.run(
        hpo, backend=args.backend, store=args.store, callbacks=[tracker],
        n_trials=args.trials, seed=args.seed, tracking_uri=uri,
    )  # fmt: skip
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    logged = client.get_run(tracker.last_run_id).data.metrics
    curve = client.get_metric_history(tracker.last_run_id, "trial/accuracy")
    version = client.get_model_version(run.output.name, str(run.output.version))
    winner = client.get_run(version.run_id).data.params
    print(f"run {run.id} on {args.backend}: {run.status} in {run.duration:.1f} s {run.summary()}")
    best = max(curve, key=lambda m: m.value)
    print(f"{len(curve)} trials; best validation accuracy {best.value:.3f} (trial {best.step})")
    print(f"winner: {winner}")
    print(f"test accuracy {logged['evaluate/accuracy']:.3f}; {run.output.uri} is production")
    print(f"MLflow run: {tracker.last_run_id} ({uri})")
    return run


if __name__ == "__main__":
    main()

"""The ML lifecycle with flowkit, end to end, on scikit-learn's digits (ships with sklearn).

    python examples/ml_lifecycle.py                        # local backend
    python examples/ml_lifecycle.py --backend threads      # or ray
    python examples/ml_lifecycle.py --retrain-min-accuracy 0.99   # watch a rollback
    python examples/ml_lifecycle.py --min-accuracy 0.99           # the first gate stops it
    flowkit run examples/ml_lifecycle.py --backend threads

1. data:       load the digits -> validate the schema -> stratified train/test split
2. training:   a grid of LogisticRegression settings, trained in parallel with ``fit.map``
3. validation: pick the best, gate it (accuracy >= 0.9) before anything is deployed
4. deploy:     register it in the MLflow registry and point ``production`` at it
5. monitoring: production traffic arrives from a "new scanner" (every digit one pixel to the
               right); score it with the production model, compute a drift report against the
               training data, queue the least confident rows for human labels
6. retraining: an ``@fk.dynamic`` step that runs only when drift was found: retrain on the
               training data plus the labelled new rows, register the candidate, promote it,
               verify it on held-out new rows, and roll production back if it misses the bar

The registry is ``$MLFLOW_TRACKING_URI`` or, by default, ``.flowkit/mlflow.db`` next to the
flowkit store; every run is also logged as an MLflow run by ``ml.MLflowTracker``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

import flowkit as fk
from flowkit import ml

# flowkit already runs tasks in parallel, so each gets one BLAS thread: concurrent fits that
# each start a BLAS thread per core oversubscribe the cores and run many times slower.
# (Ray workers get the same default through OMP_NUM_THREADS=1.)
threadpool_limits(limits=1, user_api="blas")

MODEL = "digits-classifier"
FEATURES = [f"px{i}" for i in range(64)]  # the 8x8 pixels, 0 (white) .. 1 (black)
SCHEMA = {**dict.fromkeys(FEATURES, pa.float64()), "label": pa.int64()}


@dataclass
class Outcome:
    """What the run did to production."""

    action: str  # "kept" (no drift), "promoted" or "rolled back"
    production: int  # the version production serves now
    candidate: int | None  # the retrained version, if any
    accuracy_before: float  # production's accuracy on the new traffic before retraining
    accuracy_after: float | None  # the candidate's accuracy on held-out new traffic
    drifted: list[str]  # the most drifted features
    review_queue: str  # where rows wait for labels


# -- data ---------------------------------------------------------------------------------


@fk.task(cache=True)
def load_data() -> pa.Table:
    x, y = load_digits(return_X_y=True)
    return pa.table({**{f: x[:, i] / 16.0 for i, f in enumerate(FEATURES)}, "label": y})


def _xy(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    x = np.column_stack([table[f].to_numpy() for f in FEATURES])
    return x, table["label"].to_numpy()


# -- training and validation ----------------------------------------------------------------


@fk.task(cache=True)
def fit(train: pa.Table, params: dict[str, Any]) -> LogisticRegression:
    x, y = _xy(train)
    return LogisticRegression(max_iter=1000, **params).fit(x, y)


@fk.task
def evaluate(model: LogisticRegression, test: pa.Table) -> ml.Metrics:
    x, y = _xy(test)
    return {"accuracy": float(model.score(x, y))}


@fk.task
def pick_best(
    models: list[LogisticRegression], scores: list[ml.Metrics]
) -> tuple[LogisticRegression, ml.Metrics]:
    best = max(range(len(models)), key=lambda i: scores[i]["accuracy"])
    return models[best], scores[best]


# -- monitoring -----------------------------------------------------------------------------


@fk.task(cache=True)
def new_traffic(test: pa.Table, shift: int) -> pa.Table:
    """Production traffic from a new scanner: every image moved ``shift`` pixels right."""
    x, y = _xy(test)
    images = x.reshape(-1, 8, 8)
    moved = np.zeros_like(images)
    moved[:, :, shift:] = images[:, :, : 8 - shift]
    flat = moved.reshape(-1, 64)
    return pa.table({**{f: flat[:, i] for i, f in enumerate(FEATURES)}, "label": y})


@fk.task
def score(batch: pa.Table, deployed: ml.ModelVersion, tracking_uri: str) -> pa.Table:
    """Predictions and confidence of the deployed model (the labels stay for the demo)."""
    model = ml.load(deployed.name, version=deployed.version, tracking_uri=tracking_uri or None)
    proba = model.predict_proba(_xy(batch)[0])
    predicted = batch.append_column("prediction", pa.array(model.classes_[proba.argmax(axis=1)]))
    return predicted.append_column("confidence", pa.array(proba.max(axis=1)))


@fk.task
def traffic_accuracy(scored: pa.Table) -> ml.Metrics:
    hits = pc.equal(scored["prediction"], scored["label"])
    return {"traffic_accuracy": pc.mean(hits.cast(pa.float64())).as_py()}


@fk.task
def least_confident(scored: pa.Table, k: int) -> pa.Table:
    order = pc.sort_indices(scored, sort_keys=[("confidence", "ascending")])
    return scored.take(order[:k])


# -- retraining, deployment, rollback -------------------------------------------------------


@fk.task
def combine(train: pa.Table, labelled: pa.Table) -> pa.Table:
    return pa.concat_tables([train, labelled.select(train.column_names)])


@fk.task
def canary(
    candidate: ml.ModelVersion,
    holdout: pa.Table,
    min_accuracy: float,
    before: ml.Metrics,
    report: ml.DriftReport,
    queue: str,
    tracking_uri: str,
) -> Outcome:
    """Promote the candidate, check the model production now serves on held-out new traffic,
    and roll production back to the previous version if it misses ``min_accuracy``."""
    uri = tracking_uri or None
    ml.promote(candidate.name, candidate.version, tracking_uri=uri)
    served = ml.load(candidate.name, tracking_uri=uri)  # what "production" resolves to now
    x, y = _xy(holdout)
    accuracy = float(served.score(x, y))
    common = {
        "candidate": candidate.version,
        "accuracy_before": before["traffic_accuracy"],
        "accuracy_after": accuracy,
        "drifted": report.drifted_features[:5],
        "review_queue": queue,
    }
    try:
        ml.gate(accuracy, threshold=min_accuracy)
    except ml.GateFailed as failed:
        logging.getLogger(__name__).warning(
            "v%d scored %.3f on new traffic, below %.2f: rolling production back",
            candidate.version, failed.value, failed.threshold,
        )  # fmt: skip
        restored = ml.rollback(candidate.name, tracking_uri=uri)
        return Outcome("rolled back", restored.version, **common)
    return Outcome("promoted", candidate.version, **common)


@fk.dynamic
def retrain_if_drifted(
    report: ml.DriftReport,
    train: pa.Table,
    scored: pa.Table,
    current: ml.ModelVersion,
    before: ml.Metrics,
    queue: str,
    min_accuracy: float,
    tracking_uri: str,
) -> Outcome:
    if not report.drifted:
        return Outcome("kept", current.version, None, before["traffic_accuracy"], None, [], queue)
    # The reviewers labelled half of the new traffic; the other half verifies the candidate.
    labelled, holdout = ml.split(scored, test_size=0.5, seed=1, stratify="label")
    data = combine(train, labelled)
    models = fit.map(train=data, params=ml.grid(C=[1.0, 10.0]))
    model, metrics = pick_best(models, evaluate.map(model=models, test=holdout))
    candidate = ml.register(model, current.name, tracking_uri=tracking_uri, metrics=metrics)
    return canary(candidate, holdout, min_accuracy, before, report, queue, tracking_uri)


# -- the workflow -------------------------------------------------------------------------


@fk.workflow
def lifecycle(
    model_name: str = MODEL,
    min_accuracy: float = 0.9,
    retrain_min_accuracy: float = 0.75,
    shift: int = 1,
    review_rows: int = 50,
    tracking_uri: str = "",
    queue_store: str = "",
) -> Outcome:
    data = ml.validate(load_data(), SCHEMA)
    train, test = ml.split(data, test_size=0.25, seed=0, stratify="label")

    models = fit.map(train=train, params=ml.grid(C=[0.1, 1.0, 10.0], tol=[1e-4, 1e-3]))
    model, metrics = pick_best(models, evaluate.map(model=models, test=test))
    accuracy = ml.gate(metrics, threshold=min_accuracy)
    deployed = ml.register(
        model, model_name, tracking_uri=tracking_uri, metrics={"accuracy": accuracy},
        alias="production",
    )  # fmt: skip

    traffic = score(new_traffic(test, shift), deployed, tracking_uri)
    before = traffic_accuracy(traffic)
    report = ml.drift(train, traffic, columns=FEATURES)
    queue = ml.annotation_queue(
        least_confident(traffic, review_rows), store=queue_store, name="digits-review"
    )
    return retrain_if_drifted(
        report, train, traffic, deployed, before, queue, retrain_min_accuracy, tracking_uri
    )


def main(argv: list[str] | None = None) -> fk.Run:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="local", choices=["local", "threads", "ray"])
    parser.add_argument("--store", default=None, help="flowkit store URL (default ./.flowkit)")
    parser.add_argument("--tracking-uri", default="", help="MLflow URI (default: embedded)")
    parser.add_argument("--min-accuracy", type=float, default=0.9, help="first deployment gate")
    parser.add_argument("--retrain-min-accuracy", type=float, default=0.75)
    parser.add_argument("--shift", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    # Resolve the registry in the driver, so workers in other processes (Ray) use the same one.
    uri = ml.resolve_tracking_uri(args.tracking_uri or None)
    tracker = ml.MLflowTracker(tracking_uri=uri, experiment="ml-lifecycle")
    try:
        run = fk.run(
            lifecycle, backend=args.backend, store=args.store, callbacks=[tracker],
            tracking_uri=uri, queue_store=args.store or "", shift=args.shift,
            min_accuracy=args.min_accuracy, retrain_min_accuracy=args.retrain_min_accuracy,
        )  # fmt: skip
    except fk.TaskFailedError as failed:
        if isinstance(failed.__cause__, ml.GateFailed):  # e.g. --min-accuracy 0.99
            raise SystemExit(f"nothing deployed: {failed.__cause__}") from None
        raise
    out: Outcome = run.output
    print(f"run {run.id} on {args.backend}: {run.status} in {run.duration:.1f} s {run.summary()}")
    print(f"production accuracy on the new traffic: {out.accuracy_before:.3f}")
    print(f"drift: {'yes' if out.drifted else 'no'}; most drifted: {', '.join(out.drifted) or '-'}")
    print(f"rows queued for labelling: {out.review_queue}")
    if out.candidate is not None:
        print(f"retrained v{out.candidate}: {out.accuracy_after:.3f} on held-out new traffic")
    print(f"action: {out.action}; production serves v{out.production}")
    print(f"production history: {ml.alias_history(MODEL, tracking_uri=uri)}")
    print(f"MLflow run: {tracker.last_run_id} ({uri})")
    return run


if __name__ == "__main__":
    main()

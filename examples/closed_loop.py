"""The closed ML loop, run by flowkit itself: serve, monitor, annotate, retrain, promote, serve.

    python examples/closed_loop.py              # the whole loop in a temp folder (~1-2 min)
    python examples/closed_loop.py --keep       # and keep the folder: store, registry, logs

What happens (every step is an ordinary flowkit run, started by the scheduler):

1. ``train`` fits a digits classifier and promotes it to ``production`` in an MLflow registry
   (sqlite, in the folder).
2. ``flowkit serve loop-digits@production --log-predictions`` serves it, following the alias,
   and logs every request and prediction to the store.
3. Traffic arrives from a "new scanner" (every digit one pixel to the right).
4. A schedule fires ``monitor`` (``--cron "*/5 * * * *"``): it reads the prediction log of its
   window (``ml.prediction_log``), computes drift against the training data (``ml.drift``)
   and queues the rows for human labels (``ml.annotation_queue``).
5. The "annotators" (this script, which knows the true digits) write the labelled rows as a
   Parquet file under ``labels/``.
6. A trigger ``--on-new labels/`` fires ``retrain``: it trains on the old data plus the
   labelled rows, gates the candidate on held-out new rows and promotes it.
7. The server follows the alias and answers with the new version; a trigger
   ``--on-alias loop-digits@production`` fires ``verify``, which checks that the server
   answers with the promoted version and scores the new traffic well.

The scheduler runs here one tick at a time (``flowkit scheduler --once --now ...``), with
the clock stepped by 5 minutes per tick, so the loop takes a minute, not a day; in
production it is ``flowkit scheduler`` left running (docs/automation.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

import flowkit as fk
from flowkit import ml

threadpool_limits(limits=1, user_api="blas")

MODEL = "loop-digits"
QUEUE = "loop-review"
FEATURES = [f"px{i}" for i in range(64)]
HERE = Path(__file__).resolve()


# -- data -----------------------------------------------------------------------------------


def _table(x: np.ndarray, y: np.ndarray | None = None) -> pa.Table:
    columns = {f: x[:, i] for i, f in enumerate(FEATURES)}
    return pa.table(columns if y is None else {**columns, "label": y})


def _xy(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    x = np.column_stack([table[f].to_numpy() for f in FEATURES])
    return x, table["label"].to_numpy()


def digits(shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The digits as 0..1 pixels; ``shift`` moves every image that many pixels right."""
    x, y = load_digits(return_X_y=True)
    images = (x / 16.0).reshape(-1, 8, 8)
    moved = np.zeros_like(images)
    moved[:, :, shift:] = images[:, :, : 8 - shift]
    return moved.reshape(-1, 64), y


@fk.task(cache=True)
def training_data() -> pa.Table:
    x, y = digits()
    return _table(x, y)


@fk.task
def fit(data: pa.Table) -> LogisticRegression:
    x, y = _xy(data)
    return LogisticRegression(max_iter=2000, C=10.0).fit(x, y)


@fk.task
def accuracy(model: LogisticRegression, data: pa.Table) -> float:
    x, y = _xy(data)
    return float(model.score(x, y))


@fk.task
def register(model: LogisticRegression, score: float, tracking_uri: str, model_name: str) -> int:
    """A new version of the model, promoted to production (after its gate passed)."""
    version = ml.register(
        model, model_name, tracking_uri=tracking_uri, metrics={"accuracy": score},
        alias="production",
    )  # fmt: skip
    return version.version


# -- 1. train -------------------------------------------------------------------------------


@fk.workflow
def train(tracking_uri: str, model_name: str = MODEL, min_accuracy: float = 0.9) -> int:
    train_part, test_part = ml.split(training_data(), test_size=0.25, seed=0, stratify="label")
    model = fit(train_part)
    score = ml.gate(accuracy(model, test_part), threshold=min_accuracy)
    return register(model, score, tracking_uri, model_name)


# -- 4. monitor -----------------------------------------------------------------------------


@dataclass
class Monitoring:
    """What one monitoring fire saw."""

    fire_time: str
    requests: int
    drifted: bool
    most_drifted: list[str]
    queued: int


@fk.task
def logged_traffic(store: str, model_name: str, when: fk.FireTime, minutes: int) -> pa.Table:
    """The requests the server logged from ``minutes`` before this fire on (the window since
    the previous fire, for a schedule every ``minutes``)."""
    since = when - dt.timedelta(minutes=minutes)
    return ml.prediction_log(model_name, store=store, since=since, columns=FEATURES)


@fk.task
def reference(data: pa.Table) -> pa.Table:
    return data.select(FEATURES)


@fk.task
def queue_for_labels(
    report: ml.DriftReport, traffic: pa.Table, store: str, when: fk.FireTime
) -> Monitoring:
    queued = 0
    if report.drifted and traffic.num_rows:
        ml.annotation_queue(traffic, store=store, name=QUEUE)
        queued = traffic.num_rows
    return Monitoring(
        when.isoformat(), traffic.num_rows, report.drifted, report.drifted_features[:5], queued
    )


@fk.workflow
def monitor(
    when: fk.FireTime, store: str, model_name: str = MODEL, window_minutes: int = 5
) -> Monitoring:
    traffic = logged_traffic(store, model_name, when, window_minutes)
    report = ml.drift(reference(training_data()), traffic, columns=FEATURES)
    return queue_for_labels(report, traffic, store, when)


# -- 6. retrain -----------------------------------------------------------------------------


@fk.task
def labelled_rows(event: fk.Event) -> pa.Table:
    """The labelled rows the annotators wrote: the new objects of the trigger's event."""
    import fsspec

    tables = []
    for url in event.urls:
        with fsspec.open(url, "rb") as f:
            tables.append(pq.read_table(f))
    return pa.concat_tables(tables)


@fk.task
def combine(old: pa.Table, new: pa.Table) -> pa.Table:
    return pa.concat_tables([old, new.select(old.column_names)])


@fk.workflow
def retrain(
    event: fk.Event, tracking_uri: str, model_name: str = MODEL, min_accuracy: float = 0.8
) -> int:
    labelled, holdout = ml.split(labelled_rows(event), test_size=0.5, seed=1, stratify="label")
    model = fit(combine(training_data(), labelled))
    score = ml.gate(accuracy(model, holdout), threshold=min_accuracy)
    return register(model, score, tracking_uri, model_name)


# -- 7. verify ------------------------------------------------------------------------------


@fk.task(retries=0)
def served_version(event: fk.Event, serve_url: str, timeout: float = 60.0) -> int:
    """Wait until the server answers with the version the alias moved to."""
    want = int(event.version or 0)
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"{serve_url}/version", timeout=10) as reply:
            now = int(json.load(reply)["version"])
        if now == want or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if now != want:
        raise RuntimeError(f"the server still answers with v{now}, not v{want}")
    return now


@fk.task
def served_accuracy(version: int, serve_url: str, shift: int = 1, rows: int = 300) -> float:
    """Score held-back new-scanner traffic through the server, check the version answering."""
    x, y = digits(shift)
    x, y = x[-rows:], y[-rows:]
    predictions = _post(serve_url, x)
    if predictions["version"] != version:
        raise RuntimeError(f"answered by v{predictions['version']}, expected v{version}")
    return float(np.mean(np.asarray(predictions["predictions"]) == y))


@fk.workflow
def verify(event: fk.Event, serve_url: str) -> float:
    return served_accuracy(served_version(event, serve_url), serve_url)


# -- the driver -----------------------------------------------------------------------------


def _post(url: str, x: np.ndarray) -> dict[str, Any]:
    body = json.dumps({"dataframe_split": {"columns": FEATURES, "data": x.tolist()}}).encode()
    request = urllib.request.Request(
        f"{url}/invocations", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        doc = json.load(reply)
        return {"predictions": doc["predictions"], "version": int(reply.headers["X-Model-Version"])}


def _flowkit(*args: str, env: dict[str, str]) -> str:
    """Run a ``flowkit`` command as a user would; its stdout (stops the example on failure)."""
    done = subprocess.run(
        [sys.executable, "-m", "flowkit", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"flowkit {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise SystemExit(f"gave up waiting for {what} after {timeout:.0f} s")


def _ended_run(store: str, **tags: str) -> fk.runs.RunView | None:
    found = [
        r for r in fk.runs.list(store=store, tags=tags) if r.status not in ("running", "submitted")
    ]
    return found[0] if found else None


class Loop:
    """The folder, the processes and the clock of one run of the example."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.store = str(work / "store")
        self.labels = work / "labels"
        self.labels.mkdir(parents=True, exist_ok=True)
        self.tracking_uri = f"sqlite:///{work / 'mlflow.db'}"
        self.env = {
            **os.environ,
            "FLOWKIT_STORE": self.store,
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "FLOWKIT_SCHEDULER_LOGS": str(work / "scheduler-logs"),
        }
        self.now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
        self.port = _free_port()
        self.serve_url = f"http://127.0.0.1:{self.port}"
        self.server: subprocess.Popen[bytes] | None = None
        self.server_log: Any = None

    def tick(self) -> str:
        """One scheduler tick, the clock 5 minutes on (what `flowkit scheduler` does every
        --interval seconds when left running)."""
        self.now += dt.timedelta(minutes=5)
        return _flowkit("scheduler", "--once", "--now", self.now.isoformat(), env=self.env)

    def serve(self) -> None:
        self.server_log = open(self.work / "serve.log", "wb")  # closed by stop()
        self.server = subprocess.Popen(
            [
                sys.executable, "-m", "flowkit", "serve", f"{MODEL}@production",
                "--port", str(self.port), "--follow", "1", "--log-predictions",
            ],
            env=self.env, stdout=self.server_log, stderr=subprocess.STDOUT,
        )  # fmt: skip

        def up() -> bool:
            try:
                with urllib.request.urlopen(f"{self.serve_url}/health", timeout=2) as reply:
                    return bool(reply.status == 200)
            except OSError:
                return False

        _wait(up, "flowkit serve to answer")

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        if self.server_log is not None:
            self.server_log.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--work", default=None, help="work folder (default: a new temp one)")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="closed-loop-"))
    loop = Loop(work)
    target = f"{HERE}"
    try:
        # 1. train and promote v1
        first = fk.run(train, store=loop.store, tracking_uri=loop.tracking_uri).output
        print(f"1. trained v{first}, promoted to production")

        # 2. serve it, logging predictions to the store
        loop.serve()
        print(f"2. serving {MODEL}@production at {loop.serve_url}")

        # the automation: a schedule and two triggers, all kept in the store
        _flowkit(
            "schedule", "add", f"{target}:monitor", "--cron", "*/5 * * * *",
            "--name", "monitor", "--param", f"store={loop.store}",
            "--start", loop.now.isoformat(), env=loop.env,
        )  # fmt: skip
        _flowkit(
            "trigger", "add", f"{target}:retrain", "--on-new", f"file://{loop.labels}/",
            "--name", "retrain-on-labels", "--param", f"tracking_uri={loop.tracking_uri}",
            env=loop.env,
        )  # fmt: skip
        _flowkit(
            "trigger", "add", f"{target}:verify", "--on-alias", f"{MODEL}@production",
            "--name", "verify-promotion", "--param", f"serve_url={loop.serve_url}",
            "--tracking-uri", loop.tracking_uri, env=loop.env,
        )  # fmt: skip
        print("   schedule `monitor` every 5 min; triggers `retrain-on-labels`, `verify-promotion`")

        # 3. traffic from the new scanner
        x, y = digits(shift=1)
        truth = {row.tobytes(): label for row, label in zip(x, y, strict=True)}
        sent = 0
        for start in range(0, 600, 20):
            answered = _post(loop.serve_url, x[start : start + 20])
            sent += len(answered["predictions"])
        hits = np.mean(np.asarray(_post(loop.serve_url, x[:600])["predictions"]) == y[:600])
        print(f"3. sent {sent} requests from the new scanner; v{first} gets {hits:.0%} right")
        _wait(
            lambda: ml.prediction_log(MODEL, store=loop.store).num_rows >= sent,
            "the prediction log",
        )

        # 4. the schedule fires `monitor`
        loop.tick()
        monitoring = _wait(lambda: _ended_run(loop.store, schedule="monitor"), "monitor")
        seen: Monitoring = monitoring.output
        print(
            f"4. monitor ({monitoring.status}) at {seen.fire_time}: {seen.requests} requests, "
            f"drift {seen.drifted} ({', '.join(seen.most_drifted)}), {seen.queued} queued"
        )
        if not seen.drifted:
            raise SystemExit("no drift found: the loop stops here")

        # 5. the annotators label the queue
        queued = ml.read_annotation_queue(QUEUE, store=loop.store)
        rows = np.column_stack([queued[f].to_numpy() for f in FEATURES])
        labels = np.array([truth[row.tobytes()] for row in rows])
        pq.write_table(_table(rows, labels), loop.labels / "batch-0001.parquet")
        print(f"5. annotators labelled {len(labels)} rows -> {loop.labels}/batch-0001.parquet")

        # 6. the trigger fires `retrain`, which gates and promotes
        loop.tick()
        retrained = _wait(lambda: _ended_run(loop.store, trigger="retrain-on-labels"), "retrain")
        if retrained.status != "succeeded":
            raise SystemExit(f"retrain {retrained.status}: {retrained.error}")
        print(f"6. retrain ({retrained.status}) promoted v{retrained.output}")

        # 7. the promotion fires `verify`; the server follows the alias by itself
        loop.tick()
        verified = _wait(lambda: _ended_run(loop.store, trigger="verify-promotion"), "verify")
        if verified.status != "succeeded":
            raise SystemExit(f"verify {verified.status}: {verified.error}")
        print(
            f"7. verify ({verified.status}): the server answers with v{retrained.output}, "
            f"{verified.output:.0%} right on the new scanner's digits"
        )
        print()
        print(_flowkit("runs", "list", env=loop.env))
        return {
            "first": first,
            "monitor": seen,
            "retrained": retrained.output,
            "accuracy_before": float(hits),
            "accuracy_after": float(verified.output),
        }
    finally:
        loop.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The ML steps as workflow tasks: typed nodes named ml.*, cached on a second run."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

import flowkit as fk
from flowkit import ml

SCHEMA = pa.schema([pa.field("user", pa.string()), pa.field("ts", pa.int64()),
                    pa.field("x", pa.float64()), pa.field("label", pa.int64())])  # fmt: skip


@fk.task(cache=True)
def events(n: int) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "user": rng.choice(["a", "b", "c"], n),
            "ts": rng.integers(0, 100, n),
            "x": rng.normal(size=n),
            "label": rng.integers(0, 2, n),
        },
        schema=SCHEMA,
    )


@fk.task(cache=True)
def features(n: int) -> pa.Table:
    rng = np.random.default_rng(1)
    return pa.table({"user": rng.choice(["a", "b"], n), "ts": rng.integers(0, 100, n),
                     "clicks": rng.integers(0, 10, n)})  # fmt: skip


@fk.workflow
def prepare(n: int = 400) -> tuple[pa.Table, ml.DriftReport]:
    data = ml.validate(events(n), SCHEMA)
    joined = ml.as_of_join(data, features(50), on="user", left_time="ts", right_time="ts")
    train, test = ml.split(joined, test_size=0.25, seed=0, stratify="label")
    return train, ml.drift(train, test, columns=["x", "user"], method="ks")


def test_data_steps_compose_cache_and_name_their_nodes() -> None:
    first = fk.run(prepare, backend="threads", store="memory://ml-tasks")
    train, report = first.output
    assert train.num_rows == 300 and "clicks" in train.column_names
    assert not report.drifted and set(report.features) == {"x", "user"}
    nodes = {t.node for t in first.tasks}
    assert {"ml.validate", "ml.as_of_join", "ml.split", "ml.drift"} <= nodes
    second = fk.run(prepare, backend="threads", store="memory://ml-tasks")
    assert all(t.cached for t in second.tasks), [(t.node, t.cached) for t in second.tasks]
    assert second.output[0].equals(train)


def test_plain_calls_outside_a_workflow() -> None:
    table = events.fn(20)
    assert ml.validate(table, SCHEMA) is table
    assert ml.split.fn is not ml.split and callable(ml.split.fn)
    assert ml.split.name == "ml.split"


def test_import_costs() -> None:
    """`import flowkit` never loads flowkit.ml; `from flowkit import ml` loads no MLflow,
    scikit-learn or scipy (they are imported when a step needs them)."""
    import subprocess
    import sys

    code = (
        "import sys, flowkit\n"
        "assert not [m for m in sys.modules if m.startswith('flowkit.ml')]\n"
        "from flowkit import ml\n"
        "heavy = [m for m in ('mlflow', 'sklearn', 'scipy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

"""ml.prediction_log: the prediction log read back by date and time, damaged parts skipped, and
fed to ml.drift as live traffic."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import flowkit as fk
from flowkit import ml
from flowkit.ml.predictions import LOG_SCHEMA, part_folder
from flowkit.serve.predlog import PredictionLog

UTC = dt.timezone.utc


def write_part(store: Path, model: str, when: dt.datetime, request_id: str) -> None:
    """One part file as the writer lays it out, at a chosen time."""
    folder = Path(part_folder(str(store), model, when.date()))
    folder.mkdir(parents=True, exist_ok=True)
    own = [[request_id], [when], [model], [1], ["production"], [0.01]]
    table = pa.Table.from_arrays(
        [pa.array(v, f.type) for v, f in zip(own, LOG_SCHEMA, strict=True)]
        + [pa.array([1.0]), pa.array([0])],
        names=[*LOG_SCHEMA.names, "x", "prediction"],
    )
    pq.write_table(table, folder / f"part-{request_id}.parquet")


@pytest.fixture
def dated(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    for day in (1, 2, 3):
        write_part(store, "m", dt.datetime(2026, 12, day, 12, tzinfo=UTC), f"d{day}")
    return store


def ids(table: pa.Table) -> list[str]:
    return [str(v) for v in table.column("request_id").to_pylist()]


def test_since_and_until_bound_the_rows(dated: Path) -> None:
    assert ids(ml.prediction_log("m", store=dated)) == ["d1", "d2", "d3"]
    assert ids(ml.prediction_log("m", store=dated, since="2026-12-02")) == ["d2", "d3"]
    assert ids(ml.prediction_log("m", store=dated, until=dt.date(2026, 12, 3))) == ["d1", "d2"]
    noon = dt.datetime(2026, 12, 2, 12)  # naive: UTC
    assert ids(ml.prediction_log("m", store=dated, since=noon, until=noon)) == []
    assert ids(ml.prediction_log("m", store=dated, since=noon)) == ["d2", "d3"]
    east = dt.datetime(2026, 12, 2, 13, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert ids(ml.prediction_log("m", store=dated, since=east)) == ["d2", "d3"]


def test_date_folders_before_since_are_not_read(dated: Path) -> None:
    old = Path(part_folder(str(dated), "m", dt.date(2026, 12, 1)))
    for part in old.iterdir():
        part.write_bytes(b"not parquet")  # would warn if it were read
    assert ids(ml.prediction_log("m", store=dated, since="2026-12-02")) == ["d2", "d3"]


def test_a_damaged_part_is_skipped_and_named(dated: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = Path(part_folder(str(dated), "m", dt.date(2026, 12, 2))) / "part-d2.parquet"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    (bad.parent / "part-junk.parquet").write_bytes(b"\x00" * 100)
    with caplog.at_level(logging.WARNING, "flowkit.ml.predictions"):
        assert ids(ml.prediction_log("m", store=dated)) == ["d1", "d3"]
    assert "part-d2.parquet" in caplog.text and "part-junk.parquet" in caplog.text


def test_a_part_without_the_log_columns_is_skipped(
    dated: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = Path(part_folder(str(dated), "m", dt.date(2026, 12, 2)))
    pq.write_table(pa.table({"x": [1.0]}), folder / "part-planted.parquet")
    with caplog.at_level(logging.WARNING, "flowkit.ml.predictions"):
        assert ids(ml.prediction_log("m", store=dated)) == ["d1", "d2", "d3"]
    assert "part-planted.parquet" in caplog.text and "request_id" in caplog.text


def test_parts_being_written_and_stray_files_are_ignored(dated: Path) -> None:
    folder = Path(part_folder(str(dated), "m", dt.date(2026, 12, 2)))
    (folder / ".part-x.parquet.tmp").write_bytes(b"half")
    (folder / "_SUCCESS").write_bytes(b"")
    (folder.parent / "notadate").mkdir()
    assert ids(ml.prediction_log("m", store=dated)) == ["d1", "d2", "d3"]


def test_an_unknown_model_has_an_empty_log(tmp_path: Path) -> None:
    table = ml.prediction_log("nobody", store=tmp_path / "store")
    assert table.num_rows == 0
    assert table.column_names[:6] == LOG_SCHEMA.names


@pytest.mark.parametrize("bad", ["yesterday", 12, "2026-13-01"])
def test_a_bad_bound_is_a_parameter_error(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ml.ParameterError, match="since"):
        ml.prediction_log("m", store=tmp_path, since=bad)  # type: ignore[arg-type]


def test_drift_on_live_traffic_read_from_the_log(tmp_path: Path) -> None:
    """The closed loop: a model's requests are logged while it serves, and the monitoring step
    compares them with the training data."""
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"age": rng.normal(40, 10, 2000), "income": rng.normal(50, 5, 2000)})

    def predict(body: pd.DataFrame) -> list[float]:
        return (body["age"] * 2 + body["income"]).tolist()

    reference = pa.Table.from_pandas(train, preserve_index=False)
    store = tmp_path / "store"

    def serve(model_name: str, requests: list[pd.DataFrame]) -> None:
        with PredictionLog(store, model_name, batch_rows=100) as plog:
            for i, body in enumerate(requests):
                plog.record(f"r{i}", 1, "production", body, predict(body), 0.001)

    same = [train.sample(10, random_state=i) for i in range(50)]
    shifted = [
        pd.DataFrame({"age": rng.normal(60, 10, 10), "income": rng.normal(50, 5, 10)})
        for _ in range(50)
    ]
    serve("stable", same)
    serve("shifted", shifted)

    features = reference.column_names
    stable = ml.drift(reference, ml.prediction_log("stable", store=store, columns=features))
    assert not stable.drifted
    live = ml.prediction_log("shifted", store=store)
    assert live.num_rows == 500 and "prediction" in live.column_names
    report = ml.drift(reference, live, columns=reference.column_names)
    assert report.drifted and report.drifted_features == ["age"]


def test_columns_picks_the_features(dated: Path) -> None:
    table = ml.prediction_log("m", store=dated, columns=["x", "version"])
    assert table.column_names == ["x", "version"] and table.num_rows == 3
    with pytest.raises(ml.DataValidationError, match="'nope'"):
        ml.prediction_log("m", store=dated, columns=["x", "nope"])
    empty = ml.prediction_log("nobody", store=dated, columns=["x"])
    assert (empty.column_names, empty.num_rows) == (["x"], 0)


@fk.workflow
def monitor(reference: pa.Table, model: str, log_store: str) -> ml.DriftReport:
    live = ml.prediction_log(model, store=log_store, columns=["age"])
    return ml.drift(reference, live)


def test_a_monitoring_workflow_reads_the_log(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    log_store = str(tmp_path / "store")
    with PredictionLog(log_store, "m", batch_rows=1000) as plog:
        for i in range(40):
            body = pd.DataFrame({"age": rng.normal(60, 10, 10)})
            plog.record(f"r{i}", 1, "production", body, [0] * 10, 0.001)
    reference = pa.table({"age": rng.normal(40, 10, 1000)})
    run = fk.run(
        monitor, reference=reference, model="m", log_store=log_store, backend="threads",
        store="memory://monitor-log",
    )  # fmt: skip
    assert run.output.drifted and run.output.drifted_features == ["age"]


# -- ml.batch_predict on a real registry ---------------------------------------------------


def _registered(tracking_uri: str) -> tuple[pa.Table, Any]:
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(1)
    x = pd.DataFrame({"a": rng.normal(size=95), "b": rng.normal(size=95)})
    model = LinearRegression().fit(x, x["a"] * 3 - x["b"])
    ml.register(model, "scorer", tracking_uri=tracking_uri, alias="production")
    doubled = LinearRegression().fit(x, (x["a"] * 3 - x["b"]) * 2)
    ml.register(doubled, "scorer", tracking_uri=tracking_uri)
    table = pa.Table.from_pandas(x, preserve_index=False).append_column("id", pa.array(range(95)))
    return table, model


@fk.workflow
def score(uri: str, table: pa.Table, model_uri: str) -> pa.Table:
    return ml.batch_predict(model_uri, table, uri, features=["a", "b"], partition_rows=20)


def test_batch_predict_maps_over_partitions_in_a_workflow(tracking_uri: str) -> None:
    table, model = _registered(tracking_uri)
    run = fk.run(
        score, uri=tracking_uri, table=table, model_uri="models:/scorer@production",
        backend="threads", store="memory://batch-wf",
    )  # fmt: skip
    scored = run.output
    assert scored.column_names == ["a", "b", "id", "prediction"]
    assert scored.column("id").to_pylist() == list(range(95))  # order kept
    expected = model.predict(table.select(["a", "b"]).to_pandas())
    np.testing.assert_allclose(scored.column("prediction").to_numpy(), expected)
    parts = [t for t in run.tasks if t.name == "ml.predict_partition"]
    assert len(parts) == 5 and all(t.status == "succeeded" for t in parts)


def test_batch_predict_by_version_outside_a_workflow(tracking_uri: str) -> None:
    table, model = _registered(tracking_uri)
    scored = ml.batch_predict("models:/scorer/2", table, tracking_uri, features=["a", "b"])
    expected = 2 * model.predict(table.select(["a", "b"]).to_pandas())
    np.testing.assert_allclose(scored.column("prediction").to_numpy(), expected, rtol=1e-6)
    empty = ml.batch_predict("scorer@production", table.slice(0, 0), tracking_uri)
    assert empty.num_rows == 0 and "prediction" in empty.column_names


def test_batch_predict_refuses_bad_input_before_loading(tracking_uri: str) -> None:
    table = pa.table({"a": [1.0], "prediction": [0.0]})
    with pytest.raises(ml.ParameterError, match="already has a column 'prediction'"):
        ml.batch_predict("models:/scorer/1", table, tracking_uri)
    with pytest.raises(ml.DataValidationError, match="'zzz'"):
        ml.batch_predict("models:/scorer/1", pa.table({"a": [1.0]}), tracking_uri, features=["zzz"])
    with pytest.raises(ml.ParameterError, match="model_uri"):
        ml.batch_predict("models:/a/b/c", pa.table({"a": [1.0]}), tracking_uri)
    with pytest.raises(ml.ParameterError, match="partition_rows"):
        ml.batch_predict("m", pa.table({"a": [1.0]}), tracking_uri, partition_rows=0)
    with pytest.raises(ml.ModelNotFoundError):
        ml.batch_predict("models:/nobody@production", pa.table({"a": [1.0]}), tracking_uri)


def test_planted_links_and_impossible_dates_are_not_followed(
    dated: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "outside"
    write_part(outside, "m", dt.datetime(2026, 12, 9, tzinfo=UTC), "secret")
    model_dir = dated / "predictions" / "m"
    (model_dir / "date=2026-12-09").symlink_to(outside / "predictions" / "m" / "date=2026-12-09")
    (model_dir / "date=2026-13-45").mkdir()
    with caplog.at_level(logging.WARNING, "flowkit.ml.predictions"):
        assert ids(ml.prediction_log("m", store=dated)) == ["d1", "d2", "d3"]
    assert "symbolic link" in caplog.text

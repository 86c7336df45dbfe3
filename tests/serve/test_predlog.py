"""The prediction log's writer: batches to Parquet on real stores, never blocking, never raising."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flowkit.ml.errors import ParameterError
from flowkit.ml.predictions import prediction_log
from flowkit.serve.predlog import PredictionLog
from flowkit.store import Store


def frame(n: int, start: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(n, dtype=float) + start, "city": ["a"] * n})


def test_rows_come_back_with_their_request(any_store: Store) -> None:
    with PredictionLog(any_store, "digits") as plog:
        plog.record("r1", 3, "production", frame(2), np.array([0, 1]), 0.004)
        plog.record("r2", 4, "challenger", frame(1, 10), [[0.2, 0.8]], 0.002)
    table = prediction_log("digits", store=any_store)
    assert table.column_names == [
        "request_id", "time", "model", "version", "alias", "latency_s", "x", "city", "prediction",
    ]  # fmt: skip
    rows = table.to_pylist()
    assert [r["request_id"] for r in rows] == ["r1", "r1", "r2"]
    assert [r["version"] for r in rows] == [3, 3, 4]
    assert [r["alias"] for r in rows] == ["production", "production", "challenger"]
    assert [r["x"] for r in rows] == [0.0, 1.0, 10.0]
    assert rows[0]["model"] == "digits" and rows[0]["latency_s"] == 0.004
    assert rows[0]["time"].tzinfo is not None
    # a scalar then a list: kept, as JSON text when one column cannot hold both
    assert [r["prediction"] for r in rows] == ["0", "1", "[0.2, 0.8]"]
    assert plog.written == 3 and plog.dropped == 0


def test_parts_are_dated_parquet_files_under_the_model(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with PredictionLog(store, "digits") as plog:
        plog.record("r1", 1, "production", frame(1), [1], 0.001)
    parts = list((store / "predictions" / "digits").glob("date=*/part-*.parquet"))
    assert len(parts) == 1
    day = time.strftime("%Y-%m-%d", time.gmtime())
    assert parts[0].parent.name == f"date={day}"
    assert not list(store.rglob(".*.tmp"))


def test_a_model_name_never_leaves_the_predictions_folder(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for name in ("../../escape", "a/b", ".."):
        with PredictionLog(store, name) as plog:
            plog.record("r", 1, "production", frame(1), [1], 0.001)
        assert prediction_log(name, store=store).column("model").to_pylist() == [name]
    assert sorted(p.name for p in (store / "predictions").iterdir()) == [
        "%2E%2E",
        "%2E%2E%2F%2E%2E%2Fescape",
        "a%2Fb",
    ]
    assert not (tmp_path / "escape").exists()


def test_a_full_buffer_drops_and_counts(tmp_path: Path) -> None:
    with PredictionLog(tmp_path / "s", "m", max_pending=10, flush_seconds=60) as plog:
        for i in range(5):
            plog.record(f"r{i}", 1, "production", frame(3), [0, 1, 2], 0.001)
        assert plog.dropped == 6  # 3 requests (9 rows) fit, 2 (6 rows) did not
    assert prediction_log("m", store=tmp_path / "s").num_rows == 9


def test_record_never_waits_for_a_slow_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plog = PredictionLog(tmp_path / "s", "m", batch_rows=1, flush_seconds=0.01)
    real_put = plog._put
    writing, release = threading.Event(), threading.Event()
    waited_out: list[bool] = []

    def stuck_put(*args: Any) -> None:  # the store hangs until the test lets it go
        writing.set()
        waited_out.append(not release.wait(60))
        real_put(*args)

    monkeypatch.setattr(plog, "_put", stuck_put)
    body = frame(1)
    plog.record("r0", 1, "production", body, [1], 0.001)
    assert writing.wait(30)  # the writer is stuck in the store now
    for i in range(1, 2000):  # a record that waited for the store would hang here
        plog.record(f"r{i}", 1, "production", body, [1], 0.001)
    release.set()
    plog.close()
    assert not any(waited_out)  # every record returned while the store was stuck
    assert plog.written + plog.dropped == 2000
    assert prediction_log("m", store=tmp_path / "s").num_rows == plog.written


@pytest.mark.parametrize(
    ("inputs", "predictions"),
    [
        (None, [1]),  # not a frame at all
        (frame(2), [1]),  # fewer predictions than rows
        (pd.DataFrame({"x": [object()]}), [1]),  # nothing Arrow can hold
    ],
)
def test_a_bad_record_is_dropped_never_raised(
    tmp_path: Path, inputs: Any, predictions: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    with PredictionLog(tmp_path / "s", "m") as plog:
        plog.record("bad", 1, "production", inputs, predictions, 0.001)
        plog.record("good", 1, "production", frame(1), [7], 0.001)
    assert plog.dropped >= 1
    assert prediction_log("m", store=tmp_path / "s").column("request_id").to_pylist() == ["good"]


def test_a_failing_store_loses_those_rows_and_the_writer_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    plog = PredictionLog(tmp_path / "s", "m")
    real_put = plog._put

    def broken(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plog, "_put", broken)
    with caplog.at_level(logging.WARNING, "flowkit.serve.predlog"):
        plog.record("lost", 1, "production", frame(2), [1, 2], 0.001)
        assert plog.flush(timeout=10)
    assert plog.dropped == 2
    assert "No space left on device" in caplog.text
    monkeypatch.setattr(plog, "_put", real_put)
    plog.record("kept", 1, "production", frame(1), [1], 0.001)
    plog.close()
    assert prediction_log("m", store=tmp_path / "s").column("request_id").to_pylist() == ["kept"]


def test_flush_seconds_writes_without_close(tmp_path: Path) -> None:
    plog = PredictionLog(tmp_path / "s", "m", batch_rows=1000, flush_seconds=0.2)
    try:
        plog.record("r", 1, "production", frame(1), [1], 0.001)
        deadline = time.monotonic() + 10
        while plog.written == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert plog.written == 1
    finally:
        plog.close()


def test_batch_rows_writes_before_flush_seconds(tmp_path: Path) -> None:
    plog = PredictionLog(tmp_path / "s", "m", batch_rows=10, flush_seconds=3600)
    try:
        for i in range(4):
            plog.record(f"r{i}", 1, "production", frame(3), [1, 2, 3], 0.001)
        deadline = time.monotonic() + 10
        while plog.written < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert plog.written == 12
    finally:
        plog.close()


def test_sampling_keeps_about_that_share(tmp_path: Path) -> None:
    body = frame(1)
    with PredictionLog(tmp_path / "s", "m", sample=0.25) as plog:
        for i in range(2000):
            plog.record(f"r{i}", 1, "production", body, [1], 0.001)
    assert 350 <= plog.written <= 650
    with PredictionLog(tmp_path / "s", "none", sample=0.0) as plog:
        plog.record("r", 1, "production", frame(1), [1], 0.001)
    assert plog.written == 0 and plog.dropped == 0


def test_concurrent_requests_lose_nothing(tmp_path: Path) -> None:
    plog = PredictionLog(tmp_path / "s", "m", batch_rows=50, flush_seconds=0.05)

    body = frame(2)

    def client(k: int) -> None:
        for i in range(250):
            plog.record(f"c{k}-{i}", 1, "production", body, [0, 1], 0.001)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    plog.close()
    table = prediction_log("m", store=tmp_path / "s")
    assert table.num_rows == plog.written == 4000
    assert len(set(table.column("request_id").to_pylist())) == 2000


def test_an_input_named_like_a_log_column_keeps_its_value(tmp_path: Path) -> None:
    inputs = pd.DataFrame({"time": [5], "prediction": ["p"], "x": [1.0]})
    with PredictionLog(tmp_path / "s", "m") as plog:
        plog.record("r", 1, "production", inputs, [9], 0.001)
    row = prediction_log("m", store=tmp_path / "s").to_pylist()[0]
    assert (row["input.time"], row["input.prediction"], row["prediction"]) == (5, "p", 9)


def test_records_after_close_are_dropped(tmp_path: Path) -> None:
    plog = PredictionLog(tmp_path / "s", "m")
    plog.close()
    plog.record("late", 1, "production", frame(1), [1], 0.001)
    assert plog.dropped == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample": 1.5},
        {"sample": -0.1},
        {"batch_rows": 0},
        {"max_pending": 0},
        {"flush_seconds": 0},
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ParameterError):
        PredictionLog(tmp_path / "s", "m", **kwargs)


def test_an_empty_model_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="model"):
        PredictionLog(tmp_path / "s", " ")


def test_an_arrow_table_is_taken_as_it_is(tmp_path: Path) -> None:
    import pyarrow as pa

    with PredictionLog(tmp_path / "s", "m") as plog:
        plog.record("r", 2, "production", pa.table({"x": [1, 2]}), [0.5, 0.25], 0.001)
    table = prediction_log("m", store=tmp_path / "s")
    assert table.column("x").to_pylist() == [1, 2]
    assert table.column("prediction").to_pylist() == [0.5, 0.25]


def test_a_pickled_log_is_a_new_log_of_the_same_store(any_store: Store) -> None:
    import pickle

    with PredictionLog(any_store, "m", sample=0.5, batch_rows=7) as plog:
        copy = pickle.loads(pickle.dumps(plog))
    with copy:
        assert (copy.store, copy.model, copy.sample, copy.batch_rows) == (any_store, "m", 0.5, 7)
        copy.sample = 1.0
        copy.record("from-the-copy", 1, "production", frame(1), [1], 0.001)
    assert prediction_log("m", store=any_store).column("request_id").to_pylist() == [
        "from-the-copy"
    ]


def test_the_writer_never_follows_a_link_out_of_the_store(tmp_path: Path) -> None:
    store, outside = tmp_path / "store", tmp_path / "outside"
    outside.mkdir()
    Store(store).check()
    (store / "predictions").symlink_to(outside)
    with PredictionLog(store, "m") as plog:
        plog.record("r", 1, "production", frame(1), [1], 0.001)
    assert plog.dropped == 1 and plog.written == 0
    assert list(outside.iterdir()) == []

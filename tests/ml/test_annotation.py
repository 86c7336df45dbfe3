"""ml.annotation_queue: Parquet parts on the flowkit store, appended, readable as one dataset."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import flowkit as fk
from flowkit import ml
from flowkit.store import Store


def _rows(start: int, n: int) -> pa.Table:
    return pa.table({"id": list(range(start, start + n)), "confidence": [0.5] * n})


def test_queue_on_a_local_store_appends_parts(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    where = ml.annotation_queue(_rows(0, 3), store=store, name="review")
    assert where == f"{tmp_path / 'store'}/annotations/review"
    ml.annotation_queue(_rows(3, 2), store=store, name="review")
    assert sorted(pq.read_table(where)["id"].to_pylist()) == [0, 1, 2, 3, 4]
    parts = sorted(p.name for p in Path(where).iterdir())
    assert len(parts) == 2 and all(p.startswith("part-") for p in parts)
    queued = ml.read_annotation_queue("review", store=store)
    assert sorted(queued["id"].to_pylist()) == [0, 1, 2, 3, 4]


def test_queue_keeps_the_folder_a_valid_flowkit_store(tmp_path: Path) -> None:
    store = tmp_path / "fresh"
    ml.annotation_queue(_rows(0, 1), store=str(store))
    Store(store).check()  # would refuse a non-empty folder without the store marker


def test_default_store_is_flowkit_store_env_or_dot_flowkit(
    isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = ml.annotation_queue(_rows(0, 1))
    assert where == f"{isolated / '.flowkit'}/annotations/annotations"
    monkeypatch.setenv("FLOWKIT_STORE", str(tmp_path / "env-store"))
    assert ml.annotation_queue(_rows(0, 1), name="q").startswith(str(tmp_path / "env-store"))


def test_queue_on_memory_and_s3_stores(s3_stores: object) -> None:
    mem = Store("memory://ml-annotations-test")
    where = ml.annotation_queue(_rows(0, 4), store=mem, name="low-confidence")
    assert where == "memory://ml-annotations-test/annotations/low-confidence"
    assert ml.read_annotation_queue("low-confidence", store=mem).num_rows == 4
    s3 = s3_stores.new()  # type: ignore[attr-defined]
    where = ml.annotation_queue(_rows(0, 2), store=s3, name="review")
    assert where.startswith("s3://") and where.endswith("/annotations/review")
    ml.annotation_queue(_rows(2, 2), store=s3, name="review")
    assert sorted(ml.read_annotation_queue("review", store=s3)["id"].to_pylist()) == [0, 1, 2, 3]


def test_empty_rows_write_nothing(tmp_path: Path) -> None:
    where = ml.annotation_queue(_rows(0, 0), store=str(tmp_path / "s"), name="none")
    assert not Path(where).exists()
    assert ml.read_annotation_queue("none", store=str(tmp_path / "s")).num_rows == 0


def test_bad_names_and_rows() -> None:
    with pytest.raises(ml.ParameterError, match="name"):
        ml.annotation_queue(_rows(0, 1), name="../escape")
    with pytest.raises(ml.ParameterError, match="pyarrow Table"):
        ml.annotation_queue([{"a": 1}])  # type: ignore[arg-type]


@fk.task
def uncertain(n: int) -> pa.Table:
    return _rows(0, n)


@fk.workflow
def queue_uncertain(n: int = 3, queue_store: str = "") -> str:
    return ml.annotation_queue(uncertain(n), store=queue_store, name="wf")


def test_queue_as_a_workflow_step(tmp_path: Path) -> None:
    target = str(tmp_path / "wf-store")
    run = fk.run(queue_uncertain, n=3, queue_store=target, store="memory://q", backend="threads")
    assert run.output == f"{target}/annotations/wf"
    assert pq.read_table(run.output).num_rows == 3

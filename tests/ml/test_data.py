"""ml.validate and ml.split: schema checks that name every problem; deterministic splits."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from flowkit import ml
from flowkit.errors import FlowkitError


def _table() -> pa.Table:
    return pa.table(
        {
            "age": pa.array([30, 40, None], pa.int64()),
            "income": pa.array([1.0, 2.5, 3.0], pa.float64()),
            "city": pa.array(["a", "b", "c"], pa.string()),
        }
    )


# -- validate --------------------------------------------------------------------------------


def test_validate_returns_the_table_for_every_schema_spelling() -> None:
    t = _table()
    assert ml.validate(t, t.schema) is t
    assert ml.validate(t, {"age": pa.int64(), "income": "float64", "city": str}) is t
    assert ml.validate(t, {"income": float}) is t  # extra columns are fine unless strict


def test_validate_names_every_offending_column() -> None:
    t = _table()
    schema = pa.schema(
        [
            pa.field("age", pa.int64(), nullable=False),  # has a null
            pa.field("income", pa.int64()),  # is float64
            pa.field("label", pa.int64()),  # missing
            pa.field("city", pa.string()),  # fine
        ]
    )
    with pytest.raises(ml.DataValidationError) as info:
        ml.validate(t, schema)
    err = info.value
    assert isinstance(err, FlowkitError)
    assert set(err.problems) == {"age", "income", "label"}
    assert "1 null" in err.problems["age"]
    assert "double" in err.problems["income"] and "int64" in err.problems["income"]
    assert "missing" in err.problems["label"]
    for col in ("age", "income", "label"):
        assert col in str(err)
    assert "city" not in err.problems


def test_validate_strict_rejects_unexpected_columns() -> None:
    with pytest.raises(ml.DataValidationError) as info:
        ml.validate(_table(), {"age": "int64"}, strict=True)
    assert set(info.value.problems) == {"income", "city"}


def test_validate_rejects_an_empty_table_unless_allowed() -> None:
    empty = _table().slice(0, 0)
    with pytest.raises(ml.DataValidationError, match="0 row"):
        ml.validate(empty, empty.schema)
    assert ml.validate(empty, empty.schema, min_rows=0) is empty


def test_validate_rejects_non_tables_and_bad_specs() -> None:
    with pytest.raises(ml.DataValidationError, match="pyarrow Table"):
        ml.validate({"a": [1]}, {"a": int})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a type"):
        ml.validate(_table(), {"age": "no-such-type"})


def test_validation_error_pickles_with_its_problems() -> None:
    import pickle

    err = ml.DataValidationError("bad", {"a": "missing"})
    back = pickle.loads(pickle.dumps(err))
    assert back.problems == {"a": "missing"} and str(back) == "bad"


# -- split -----------------------------------------------------------------------------------


def _labelled(n: int = 100) -> pa.Table:
    return pa.table({"i": np.arange(n), "y": np.array([0] * (n - n // 5) + [1] * (n // 5))})


def test_split_is_deterministic_complete_and_disjoint() -> None:
    t = _labelled()
    train, test = ml.split(t, test_size=0.25, seed=3)
    again = ml.split(t, test_size=0.25, seed=3)
    assert train.equals(again[0]) and test.equals(again[1])
    assert (train.num_rows, test.num_rows) == (75, 25)
    ids = train["i"].to_pylist() + test["i"].to_pylist()
    assert sorted(ids) == list(range(100))
    other = ml.split(t, test_size=0.25, seed=4)[1]
    assert other["i"].to_pylist() != test["i"].to_pylist()


def test_split_accepts_a_row_count() -> None:
    train, test = ml.split(_labelled(), test_size=10)
    assert (train.num_rows, test.num_rows) == (90, 10)


def test_stratified_split_keeps_class_proportions() -> None:
    t = _labelled(100)  # 80 zeros, 20 ones
    train, test = ml.split(t, test_size=0.25, seed=0, stratify="y")
    assert test["y"].to_pylist().count(1) == 5 and test["y"].to_pylist().count(0) == 20
    assert train["y"].to_pylist().count(1) == 15
    assert sorted(train["i"].to_pylist() + test["i"].to_pylist()) == list(range(100))


def test_stratified_split_puts_every_class_of_two_or_more_in_both_parts() -> None:
    t = pa.table({"y": ["a"] * 50 + ["b"] * 2})
    train, test = ml.split(t, test_size=0.1, stratify="y")
    assert "b" in train["y"].to_pylist() and "b" in test["y"].to_pylist()


@pytest.mark.parametrize("size", [0.0, 1.0, 1.5, 0, 100, -1])
def test_split_rejects_bad_sizes(size: float) -> None:
    with pytest.raises(ml.ParameterError, match="test_size"):
        ml.split(_labelled(), test_size=size)


def test_split_rejects_bad_tables_and_stratify_columns() -> None:
    with pytest.raises(ml.DataValidationError, match="empty"):
        ml.split(_labelled().slice(0, 0))
    with pytest.raises(ml.DataValidationError, match="'nope'"):
        ml.split(_labelled(), stratify="nope")
    with pytest.raises(ml.DataValidationError, match="null"):
        ml.split(pa.table({"y": [1, None, 2, 1]}), stratify="y")

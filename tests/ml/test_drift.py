"""ml.drift: PSI and KS / chi-square on known answers and synthetic shifted data."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from flowkit import ml

N = 4000


def _normal(loc: float, seed: int, cats: tuple[float, float, float] = (0.5, 0.3, 0.2)) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "x": rng.normal(loc, 1.0, N),
            "n": rng.poisson(5, N),
            "c": rng.choice(["a", "b", "c"], N, p=list(cats)),
        }
    )


def test_categorical_psi_matches_the_hand_computed_value() -> None:
    ref = pa.table({"c": ["a"] * 50 + ["b"] * 50})
    cur = pa.table({"c": ["a"] * 80 + ["b"] * 20})
    report = ml.drift(ref, cur)
    # (0.8-0.5)ln(0.8/0.5) + (0.2-0.5)ln(0.2/0.5)
    expected = 0.3 * math.log(1.6) + (-0.3) * math.log(0.4)
    assert report.features["c"]["score"] == pytest.approx(expected)
    assert report.features["c"] == {"score": pytest.approx(expected), "threshold": 0.2,
                                    "drifted": True}  # fmt: skip
    assert report.drifted and report.method == "psi"


def test_numeric_psi_uses_reference_quantile_bins() -> None:
    ref = pa.table({"v": list(range(1, 11))})  # 10 values
    cur = pa.table({"v": [1] * 10})  # everything in the lowest bin
    report = ml.drift(ref, cur, bins=2)
    # bins: v < 5.5 (5 ref values) and v >= 5.5 (5); current: 10 and 0 -> 0 floored at 1e-4
    r, c = 0.5, 1.0
    expected = (c - r) * math.log(c / r) + (1e-4 - r) * math.log(1e-4 / r)
    assert report.features["v"]["score"] == pytest.approx(expected)


def test_identical_distributions_are_stable_and_shifted_ones_drift() -> None:
    ref, same, shifted = _normal(0, 1), _normal(0, 2), _normal(1.0, 3, (0.2, 0.3, 0.5))
    stable = ml.drift(ref, same)
    assert not stable.drifted
    assert all(f["score"] < 0.05 for f in stable.features.values())
    moved = ml.drift(ref, shifted, columns=["x", "c"])
    assert moved.drifted and set(moved.features) == {"x", "c"}
    assert moved.features["x"]["score"] > 0.5 and moved.features["c"]["score"] > 0.3
    assert moved.drifted_features == ["x", "c"]  # most drifted first


def test_ks_and_chi_square() -> None:
    ref, same, shifted = _normal(0, 1), _normal(0, 2), _normal(0.3, 3, (0.45, 0.3, 0.25))
    stable = ml.drift(ref, same, method="ks")
    assert not stable.drifted
    for f in stable.features.values():
        assert set(f) == {"score", "threshold", "drifted", "pvalue"}
        assert f["threshold"] == 0.01 and f["pvalue"] > 0.01
    moved = ml.drift(ref, shifted, method="ks")
    assert moved.features["x"]["drifted"] and moved.features["x"]["pvalue"] < 1e-10
    assert moved.features["c"]["drifted"] and moved.features["c"]["pvalue"] < 0.01
    assert not moved.features["n"]["drifted"]
    assert moved.drifted_features[0] == "x"


def test_thresholds_per_column() -> None:
    ref, shifted = _normal(0, 1), _normal(0.2, 3)
    report = ml.drift(ref, shifted, threshold={"x": 0.01})
    assert report.features["x"]["threshold"] == 0.01 and report.features["x"]["drifted"]
    assert report.features["n"]["threshold"] == 0.2
    lenient = ml.drift(ref, shifted, threshold=10.0)
    assert not lenient.drifted


def test_nulls_are_dropped_and_timestamps_and_bools_work() -> None:
    ref = pa.table({"v": [1.0, 2.0, None, 3.0], "b": [True, False, True, None]})
    cur = pa.table({"v": [1.0, None, 2.0, 3.0], "b": [True, False, None, True]})
    report = ml.drift(ref, cur, bins=3)
    assert report.features["v"]["score"] == pytest.approx(0.0)
    import datetime as dt

    days = [dt.date(2024, 1, d) for d in range(1, 29)]
    assert not ml.drift(pa.table({"d": days}), pa.table({"d": days})).drifted


def test_a_column_missing_from_one_side_is_named() -> None:
    ref = pa.table({"a": [1.0, 2.0], "b": [1.0, 2.0]})
    cur = pa.table({"a": [1.0, 2.0], "z": [1.0, 2.0]})
    with pytest.raises(ml.DataValidationError) as info:
        ml.drift(ref, cur)
    assert info.value.problems == {
        "b": "missing from the current table",
        "z": "missing from the reference table",
    }
    with pytest.raises(ml.DataValidationError, match="'q'"):
        ml.drift(ref, ref, columns=["a", "q"])
    assert not ml.drift(ref, cur, columns=["a"]).drifted


def test_empty_tables_and_bad_columns_are_errors() -> None:
    ref = pa.table({"a": [1.0, 2.0]})
    with pytest.raises(ml.DataValidationError, match=r"current table.*empty"):
        ml.drift(ref, ref.slice(0, 0))
    with pytest.raises(ml.DataValidationError, match=r"reference table.*empty"):
        ml.drift(ref.slice(0, 0), ref)
    with pytest.raises(ml.DataValidationError, match="no non-null values in the current"):
        ml.drift(ref, pa.table({"a": pa.array([None, None], pa.float64())}))
    with pytest.raises(ml.DataValidationError, match=r"numeric.*categorical"):
        ml.drift(ref, pa.table({"a": ["x", "y"]}))
    with pytest.raises(ml.DataValidationError, match="type list"):
        ml.drift(pa.table({"a": [[1]]}), pa.table({"a": [[1]]}))
    with pytest.raises(ml.ParameterError, match="method"):
        ml.drift(ref, ref, method="wasserstein")


def test_report_prints_a_summary() -> None:
    text = str(ml.drift(_normal(0, 1), _normal(2, 2), columns=["x"]))
    assert text.startswith("drift (psi): DRIFTED") and "x: score=" in text

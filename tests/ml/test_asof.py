"""ml.as_of_join: point-in-time correctness against hand-computed tables and a brute force."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from flowkit import ml


def test_hand_computed_join() -> None:
    events = pa.table(
        {
            "user": ["a", "a", "b", "c", "a", None, "b"],
            "ts": [1, 5, 3, 2, 10, 4, 1],
            "label": [0, 1, 0, 1, 1, 0, 1],
        }
    )
    features = pa.table(
        {
            "ts": [0, 4, 5, 5, 2, 6, 4, 11],
            "user": ["a", "a", "a", "a", "b", "b", "z", "a"],
            "clicks": [10, 40, 50, 51, 20, 60, 99, 110],
        }
    )
    out = ml.as_of_join(events, features, on="user", left_time="ts", right_time="ts")
    assert out.column_names == ["user", "ts", "label", "clicks"]
    # a@1 -> a@0; a@5 -> a@5 (tie: the later row, 51); b@3 -> b@2; c: none; a@10 -> a@5
    # (never a@11, the future); null key: none; b@1: b's first row is at 2, so none.
    assert out["clicks"].to_pylist() == [10, 51, 20, None, 51, None, None]
    assert out["label"].to_pylist() == events["label"].to_pylist()  # left rows unchanged


def test_exact_time_matches_and_right_time_is_dropped() -> None:
    left = pa.table({"k": [1, 1], "t": [5, 6]})
    right = pa.table({"k": [1], "seen": [5], "v": ["x"]})
    out = ml.as_of_join(left, right, on="k", left_time="t", right_time="seen")
    assert out.column_names == ["k", "t", "v"]
    assert out["v"].to_pylist() == ["x", "x"]


def test_multi_key_timestamps_and_suffix() -> None:
    t = [dt.datetime(2024, 1, d) for d in (1, 2, 3, 4)]
    left = pa.table(
        {"shop": ["s1", "s1", "s2", "s1"], "sku": [1, 2, 1, 1], "at": t, "value": [1, 2, 3, 4]}
    )
    right = pa.table(
        {
            "shop": ["s1", "s1", "s2", "s1"],
            "sku": [1, 2, 1, 1],
            "at": [t[0], t[3], t[1], t[2]],
            "value": [100, 200, 300, 400],
        }
    )
    out = ml.as_of_join(left, right, on=["shop", "sku"], left_time="at", right_time="at")
    assert out.column_names == ["shop", "sku", "at", "value", "value_right"]
    # (s1,1)@d1 -> 100; (s1,2)@d2: its only row is d4 -> none; (s2,1)@d3 -> 300; (s1,1)@d4 -> 400
    assert out["value_right"].to_pylist() == [100, None, 300, 400]


def test_float_times_and_nulls_on_the_right_are_ignored() -> None:
    left = pa.table({"k": ["a", "a"], "t": [1.5, 2.5]})
    right = pa.table({"k": ["a", "a", None], "t": [1.0, None, 0.0], "v": [1, 2, 3]})
    out = ml.as_of_join(left, right, on="k", left_time="t", right_time="t")
    assert out["v"].to_pylist() == [1, 1]


def test_matches_a_brute_force_on_random_data() -> None:
    rng = np.random.default_rng(7)
    left = pa.table({"k": rng.integers(0, 5, 300), "t": rng.integers(0, 50, 300)})
    right = pa.table(
        {"k": rng.integers(0, 6, 200), "t": rng.integers(0, 50, 200), "v": np.arange(200)}
    )
    out = ml.as_of_join(left, right, on="k", left_time="t", right_time="t")
    rk, rt = right["k"].to_pylist(), right["t"].to_pylist()
    expected = []
    for k, t in zip(left["k"].to_pylist(), left["t"].to_pylist(), strict=True):
        best = None
        for j in range(len(rk)):
            if rk[j] == k and rt[j] <= t and (best is None or rt[j] >= rt[best]):
                best = j  # ">=": among equal times the later row wins
        expected.append(None if best is None else best)
    assert out["v"].to_pylist() == expected
    got_t = [None if v is None else rt[v] for v in out["v"].to_pylist()]
    assert all(g is None or g <= t for g, t in zip(got_t, left["t"].to_pylist(), strict=True))


def test_no_match_anywhere_and_empty_right() -> None:
    left = pa.table({"k": [1, 2], "t": [1, 2]})
    right = pa.table({"k": pa.array([], pa.int64()), "t": pa.array([], pa.int64()), "v": []})
    out = ml.as_of_join(left, right, on="k", left_time="t", right_time="t")
    assert out["v"].to_pylist() == [None, None]


def test_missing_columns_and_bad_types_are_named() -> None:
    left = pa.table({"k": [1], "t": [1]})
    right = pa.table({"k": [1], "time": [1], "v": [1]})
    with pytest.raises(ml.DataValidationError, match=r"'t'.*right"):
        ml.as_of_join(left, right, on="k", left_time="t", right_time="t")
    with pytest.raises(ml.DataValidationError, match=r"'user'.*left"):
        ml.as_of_join(left, right, on="user", left_time="t", right_time="time")
    with pytest.raises(ml.DataValidationError, match="time column 't'"):
        ml.as_of_join(
            pa.table({"k": [1], "t": ["x"]}), right, on="k", left_time="t", right_time="time"
        )
    with pytest.raises(ml.DataValidationError, match="key 'k'"):
        ml.as_of_join(
            pa.table({"k": [[1]], "t": [1]}), right, on="k", left_time="t", right_time="time"
        )

"""ml.grid / ml.random_search settings, and ml.gate with ml.GateFailed."""

from __future__ import annotations

import logging
import math
import pickle

import numpy as np
import pytest

import flowkit as fk
from flowkit import ml

# -- grid / random_search --------------------------------------------------------------------


def test_grid_is_the_ordered_cross_product() -> None:
    assert ml.grid(depth=[2, 4], lr=[0.1, 0.01]) == [
        {"depth": 2, "lr": 0.1},
        {"depth": 2, "lr": 0.01},
        {"depth": 4, "lr": 0.1},
        {"depth": 4, "lr": 0.01},
    ]
    assert ml.grid() == [{}]


def test_grid_values_are_plain_python() -> None:
    (setting,) = ml.grid(a=np.array([3]))  # type: ignore[arg-type]
    assert type(setting["a"]) is int


@pytest.mark.parametrize("bad", [3, "abc", []])
def test_grid_rejects_non_lists(bad: object) -> None:
    with pytest.raises(ml.ParameterError, match="depth="):
        ml.grid(depth=bad)  # type: ignore[arg-type]


def test_random_search_is_deterministic_and_in_range() -> None:
    space = {
        "n": ml.randint(10, 20),
        "lr": ml.loguniform(1e-3, 1e-1),
        "frac": ml.uniform(0.5, 1.0),
        "kind": ["a", "b", None],
    }
    a = ml.random_search(space, n=60, seed=1)
    assert a == ml.random_search(space, n=60, seed=1)
    assert a != ml.random_search(space, n=60, seed=2)
    assert len(a) == 60
    for s in a:
        assert type(s["n"]) is int and 10 <= s["n"] <= 20
        assert 1e-3 <= s["lr"] < 1e-1 and 0.5 <= s["frac"] < 1.0
        assert s["kind"] in ("a", "b", None)
    assert {s["n"] for s in a} >= {10, 20}  # both ends are included


def test_random_search_over_choices_draws_without_replacement(
    caplog: pytest.LogCaptureFixture,
) -> None:
    space = {"a": [1, 2, 3], "b": ["x", "y"]}
    picks = ml.random_search(space, n=4, seed=0)
    assert len({tuple(p.items()) for p in picks}) == 4
    with caplog.at_level(logging.WARNING, logger="flowkit.ml.search"):
        everything = ml.random_search(space, n=10, seed=0)
    assert len(everything) == 6 and "only 6" in caplog.text
    assert sorted(map(str, everything)) == sorted(map(str, ml.grid(**space)))


def test_random_search_accepts_scipy_distributions() -> None:
    from scipy import stats

    picks = ml.random_search({"c": stats.uniform(0, 2), "k": [1]}, n=5, seed=0)
    assert all(type(p["c"]) is float and 0 <= p["c"] <= 2 for p in picks)


def test_random_search_rejects_bad_input() -> None:
    with pytest.raises(ml.ParameterError, match="n must"):
        ml.random_search({"a": [1]}, n=0)
    with pytest.raises(ml.ParameterError, match="empty"):
        ml.random_search({}, n=3)
    with pytest.raises(ml.ParameterError, match=r"space\['a'\]"):
        ml.random_search({"a": 5}, n=3)
    with pytest.raises(ml.ParameterError, match="low"):
        ml.uniform(2, 1)


# -- gate -------------------------------------------------------------------------------------


def test_gate_passes_and_returns_the_value() -> None:
    assert ml.gate(0.95, threshold=0.9) == 0.95
    assert ml.gate({"accuracy": 0.9, "loss": 3.0}, threshold=0.9) == 0.9  # at the bar passes
    assert ml.gate({"loss": 0.2}, 0.3, metric="loss", higher_is_better=False) == 0.2
    assert ml.gate(np.float32(0.5), 0.1) == pytest.approx(0.5)


def test_gate_failure_carries_metric_value_threshold() -> None:
    with pytest.raises(ml.GateFailed) as info:
        ml.gate({"f1": 0.71}, threshold=0.8, metric="f1")
    err = info.value
    assert (err.metric, err.value, err.threshold) == ("f1", 0.71, 0.8)
    assert isinstance(err, fk.TaskFailedError)
    assert "f1=0.71" in str(err) and "0.8" in str(err) and "threshold" in str(err)
    back = pickle.loads(pickle.dumps(err))  # crosses process boundaries (Ray) intact
    assert (back.metric, back.value, back.threshold, str(back)) == ("f1", 0.71, 0.8, str(err))


def test_gate_lower_is_better_and_nan() -> None:
    with pytest.raises(ml.GateFailed, match="above"):
        ml.gate(0.5, 0.3, metric="loss", higher_is_better=False)
    with pytest.raises(ml.GateFailed, match="NaN"):
        ml.gate(math.nan, 0.0)


def test_gate_rejects_missing_metric_and_non_numbers() -> None:
    with pytest.raises(ml.ParameterError, match=r"'accuracy'.*have: loss"):
        ml.gate({"loss": 1.0}, 0.5)
    with pytest.raises(ml.ParameterError, match="number"):
        ml.gate("0.9", 0.5)  # type: ignore[arg-type]


@fk.task
def score(x: float) -> ml.Metrics:
    return {"accuracy": x}


@fk.task
def deploy(accuracy: float) -> str:
    return f"deployed at {accuracy}"


@fk.workflow
def gated(x: float = 0.5) -> str:
    return deploy(ml.gate(score(x), threshold=0.8))


def test_a_failed_gate_stops_the_workflow_before_deploy(tmp_path: object) -> None:
    assert fk.run(gated, x=0.9, backend="threads", store="memory://gate-ok").output == (
        "deployed at 0.9"
    )
    with pytest.raises(fk.TaskFailedError) as info:
        fk.run(gated, x=0.5, backend="threads", store="memory://gate-bad")
    err = info.value
    assert isinstance(err.__cause__, ml.GateFailed)
    assert err.node == "ml.gate" and "accuracy=0.5" in str(err)

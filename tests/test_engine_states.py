"""The engine's state machine, driven step by step: a synchronous backend whose calls complete
in submission order and a fake clock (tests/core_fixtures/stepping.py), so every submission,
retry, back-off, timeout and skip is deterministic and observable."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from core_fixtures.stepping import StepBackend, StepClock

import flowkit as fk
from flowkit.backend import Capabilities
from flowkit.callbacks import CallbackGroup
from flowkit.engine import Engine
from flowkit.records import Run, new_run_id
from flowkit.runner import CacheMode
from flowkit.submitter import MAX_BATCH

IN_DRIVER = Capabilities(values_in_driver=True)


def run_graph(
    wf: Any,
    backend: StepBackend,
    store: fk.Store,
    cache: CacheMode = False,
    **inputs: Any,
) -> tuple[Any, Run, StepClock]:
    """Run ``wf`` on ``backend`` with a fresh :class:`StepClock`: ``(output or the exception
    raised, run record, clock)``."""
    run = Run(id=new_run_id(), workflow=wf.name)
    clock = StepClock(backend)
    engine = Engine(wf.graph, inputs, backend, store, cache, CallbackGroup([]), run, clock=clock)
    try:
        out: Any = engine.execute()
    except Exception as e:
        out = e
    return out, run, clock


def statuses(run: Run) -> dict[str, tuple[str, int]]:
    return {t.node: (t.status, t.attempts) for t in run.tasks}


@pytest.fixture
def store(tmp_path: Path) -> fk.Store:
    s = fk.Store(str(tmp_path / "store"))
    s.check()
    return s


# -- retries and back-off --------------------------------------------------------------------------

ATTEMPTS: dict[str, int] = {}


@fk.task(retries=2, retry_delay=0.5)
def flaky(key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] < 3:
        raise RuntimeError(f"attempt {ATTEMPTS[key]}")
    return key


@fk.workflow
def one_flaky(key: str) -> str:
    return flaky(key)


def test_retries_wait_out_an_exponential_back_off_on_the_clock(store: fk.Store) -> None:
    backend = StepBackend()
    out, run, clock = run_graph(one_flaky, backend, store, key="retries")
    assert out == "retries"
    assert statuses(run) == {"flaky": ("succeeded", 3)}
    assert clock.sleeps == [0.5, 1.0]  # retry_delay, then doubled; nothing else to do meanwhile
    assert [s.name for s in backend.submitted] == ["flaky"] * 3


@fk.task(retries=1, retry_delay=1.0)
def always_fails(x: int) -> int:
    raise ValueError(f"no {x}")


@fk.workflow
def fails_for_good(x: int) -> int:
    return always_fails(x)


def test_a_call_whose_retries_are_spent_fails_the_run(store: fk.Store) -> None:
    out, run, clock = run_graph(fails_for_good, StepBackend(), store, x=3)
    assert isinstance(out, fk.TaskFailedError) and out.attempts == 2
    assert isinstance(out.__cause__, ValueError)
    assert statuses(run) == {"always_fails": ("failed", 2)}
    assert clock.sleeps == [1.0]


@fk.task(retries=3, retry_delay=1.0)
def wrong_type(x: int) -> int:
    return "text"  # type: ignore[return-value]


@fk.workflow
def returns_wrong_type(x: int) -> int:
    return wrong_type(x)


def test_a_type_error_is_never_retried(store: fk.Store) -> None:
    out, run, clock = run_graph(returns_wrong_type, StepBackend(), store, x=1)
    assert isinstance(out, fk.TaskFailedError)
    assert statuses(run) == {"wrong_type": ("failed", 1)} and clock.sleeps == []


# -- dynamic tasks retry on the clock, not by sleeping in the loop ---------------------------------

DYNAMIC_TRIES: list[float] = []


@fk.task
def inc(x: int) -> int:
    return x + 1


@fk.dynamic(retries=1, retry_delay=30.0)
def unsteady(x: int) -> int:
    DYNAMIC_TRIES.append(time.monotonic())
    if len(DYNAMIC_TRIES) == 1:
        raise RuntimeError("first attempt fails")
    return inc(x)


@fk.workflow
def dynamic_and_chain(x: int) -> tuple[int, int]:
    return unsteady(x), inc(inc(inc(x)))


def test_a_dynamic_retry_waits_on_the_clock_while_other_calls_run(store: fk.Store) -> None:
    DYNAMIC_TRIES.clear()
    backend = StepBackend()
    started = time.monotonic()
    out, run, clock = run_graph(dynamic_and_chain, backend, store, x=1)
    assert out == (2, 4)
    assert time.monotonic() - started < 10  # the 30 s back-off passed on the fake clock
    assert clock.sleeps == [30.0]
    assert statuses(run)["unsteady"] == ("succeeded", 2)
    # the independent chain ran during the back-off: all three before the body's second try
    assert [s.name for s in backend.submitted] == ["inc"] * 4
    nodes = [t.node for t in run.tasks]
    assert nodes.index("inc_3") < nodes.index("unsteady/inc")


# -- timeouts --------------------------------------------------------------------------------------


@fk.task(timeout=5.0, retries=1)
def stuck(x: int) -> int:
    return x


@fk.workflow
def one_stuck(x: int) -> int:
    return stuck(x)


def test_an_attempt_past_its_deadline_is_cancelled_and_retried(store: fk.Store) -> None:
    backend = StepBackend(hang=["stuck"])
    out, run, clock = run_graph(one_stuck, backend, store, x=1)
    assert isinstance(out, fk.TaskTimeoutError) and out.attempts == 2
    assert statuses(run) == {"stuck": ("failed", 2)}
    assert all(f.cancelled() for f in backend.hanging) and len(backend.hanging) == 2
    assert clock.t == pytest.approx(10.0)  # two deadlines of 5 s, no back-off


def test_a_backend_that_enforces_timeouts_gets_no_engine_deadline(store: fk.Store) -> None:
    backend = StepBackend(capabilities=Capabilities(enforces_timeout=True), hang=["stuck"])
    out, _, _ = run_graph(one_stuck, backend, store, x=1)
    assert isinstance(out, AssertionError)  # the engine waits for the backend's verdict
    assert "can never complete" in str(out)
    assert not any(f.cancelled() for f in backend.hanging)


# -- a failure: in-flight calls finish, nothing new starts, the rest is skipped ------------------


@fk.task
def fail_on_zero(x: int) -> int:
    if x == 0:
        raise ValueError("zero")
    return x


@fk.task
def sum_all(xs: list[int]) -> int:
    return sum(xs)


@fk.workflow
def fan_out(xs: list[int]) -> int:
    return sum_all(fail_on_zero.map(x=xs))


def test_a_failure_stops_submissions_and_drains_the_calls_in_flight(store: fk.Store) -> None:
    backend = StepBackend(capacity=2)
    out, run, _ = run_graph(fan_out, backend, store, xs=[0, 1, 2, 3])
    assert isinstance(out, fk.TaskFailedError) and out.node == "fail_on_zero[0]"
    assert len(backend.submitted) == 2  # items 0 and 1 were in flight; 2 and 3 never left
    assert statuses(run) == {
        "fail_on_zero[0]": ("failed", 1),
        "fail_on_zero[1]": ("succeeded", 1),  # drained: its result is still recorded
        "fail_on_zero[2]": ("skipped", 0),
        "fail_on_zero[3]": ("skipped", 0),
    }  # and `sum_all`, never scheduled, has no record


SLOW_TRIES: list[int] = []


@fk.task(retries=2, retry_delay=100.0)
def retried_later(x: int) -> int:
    SLOW_TRIES.append(x)
    raise RuntimeError("again")


@fk.workflow
def retry_and_failure(x: int) -> tuple[int, int]:
    return retried_later(x), always_fails(x)


def test_a_retry_waiting_when_the_run_fails_is_abandoned_and_skipped(store: fk.Store) -> None:
    SLOW_TRIES.clear()
    out, run, _ = run_graph(retry_and_failure, StepBackend(), store, x=1)
    assert isinstance(out, fk.TaskFailedError) and out.task == "always_fails"
    assert SLOW_TRIES == [1]  # the 100 s retry was never started
    assert statuses(run)["retried_later"] == ("skipped", 1)
    assert run.tasks[0].ended is not None  # it started, so it has an end


# -- maps and batches ------------------------------------------------------------------------------


@fk.task
def square(x: int) -> int:
    return x * x


@fk.workflow
def squares(xs: list[int]) -> list[int]:
    return square.map(x=xs)


def test_a_map_runs_one_call_per_item_and_keeps_input_order(store: fk.Store) -> None:
    backend = StepBackend(capacity=2)
    out, run, _ = run_graph(squares, backend, store, xs=[3, 1, 2])
    assert out == [9, 1, 4]
    assert [t.node for t in run.tasks] == ["square[0]", "square[1]", "square[2]"]
    assert all(s.split_values == 0 for s in backend.submitted)  # no batches: values elsewhere


def test_an_empty_map_completes_without_calls(store: fk.Store) -> None:
    backend = StepBackend()
    out, run, _ = run_graph(squares, backend, store, xs=[])
    assert out == [] and run.tasks == [] and backend.submitted == []


def test_map_items_travel_in_batches_when_values_stay_in_the_driver(store: fk.Store) -> None:
    backend = StepBackend(capabilities=IN_DRIVER)  # parallelism 1: batches of half the queue
    n = 3 * MAX_BATCH
    out, run, _ = run_graph(squares, backend, store, xs=list(range(n)))
    assert out == [x * x for x in range(n)]
    sizes = [s.split_values for s in backend.submitted]
    assert sizes[0] == MAX_BATCH and sum(sizes) + sizes.count(0) == n
    assert all(t.attempts == 1 and t.status == "succeeded" for t in run.tasks)


FAIL_ONCE: set[int] = set()


@fk.task(retries=1)
def fails_once_on_five(x: int) -> int:
    if x == 5 and x not in FAIL_ONCE:
        FAIL_ONCE.add(x)
        raise RuntimeError("five")
    return x


@fk.workflow
def batched_with_a_retry(xs: list[int]) -> list[int]:
    return fails_once_on_five.map(x=xs)


def test_a_call_failing_in_a_batch_is_retried_alone(store: fk.Store) -> None:
    FAIL_ONCE.clear()
    backend = StepBackend(capabilities=IN_DRIVER)
    out, run, _ = run_graph(batched_with_a_retry, backend, store, xs=list(range(20)))
    assert out == list(range(20))
    assert statuses(run)["fails_once_on_five[5]"] == ("succeeded", 2)
    assert backend.submitted[0].split_values > 1 and backend.submitted[-1].split_values == 0


# -- cache hits served in the driver ---------------------------------------------------------------


@fk.task(cache=True)
def cached_square(x: int) -> int:
    return x * x


@fk.workflow
def cached_squares(xs: list[int]) -> list[int]:
    return cached_square.map(x=xs)


def test_hits_are_served_in_the_driver_when_handles_are_values(store: fk.Store) -> None:
    first = StepBackend(capabilities=IN_DRIVER)
    assert run_graph(cached_squares, first, store, True, xs=[1, 2, 3])[0] == [1, 4, 9]
    again = StepBackend(capabilities=IN_DRIVER)
    out, run, _ = run_graph(cached_squares, again, store, True, xs=[1, 2, 3])
    assert out == [1, 4, 9]
    assert again.submitted == []  # every call was a hit looked up before submission
    assert all(t.cached and t.status == "succeeded" for t in run.tasks)


def test_hits_are_served_by_the_worker_when_values_live_elsewhere(store: fk.Store) -> None:
    run_graph(cached_squares, StepBackend(), store, True, xs=[1, 2])
    again = StepBackend()
    out, run, _ = run_graph(cached_squares, again, store, True, xs=[1, 2])
    assert out == [1, 4] and len(again.submitted) == 2
    assert all(t.cached for t in run.tasks)


def test_refresh_recomputes_without_a_driver_side_lookup(store: fk.Store) -> None:
    run_graph(cached_squares, StepBackend(capabilities=IN_DRIVER), store, True, xs=[4])
    again = StepBackend(capabilities=IN_DRIVER)
    out, run, _ = run_graph(cached_squares, again, store, "refresh", xs=[4])
    assert out == [16] and len(again.submitted) == 1 and not run.tasks[0].cached


# -- a graph error found while running -------------------------------------------------------------


@fk.task
def pair(a: int, b: int) -> int:
    return a + b


@fk.task
def make(n: int) -> list[int]:
    return list(range(n))


@fk.workflow
def zipped(n: int, m: int) -> list[int]:
    return pair.map(a=make(n), b=make(m))


def test_unequal_map_lengths_at_run_time_fail_with_a_graph_error(store: fk.Store) -> None:
    out, run, _ = run_graph(zipped, StepBackend(), store, n=2, m=3)
    assert isinstance(out, fk.GraphError) and "unequal lengths {'a': 2, 'b': 3}" in str(out)
    assert statuses(run) == {"make": ("succeeded", 1), "make_2": ("succeeded", 1)}

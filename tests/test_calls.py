"""The engine's small typed parts: argument templates, the retry clock, failures and the retry
policy (flowkit.arguments, flowkit.retryclock, flowkit.calls)."""

from __future__ import annotations

import dataclasses
import pickle
import queue

import pytest

import flowkit as fk
from flowkit.arguments import Constant, DictOfArgs, FromInput, ListOfArgs, whole_input
from flowkit.backend import AttemptTimeout
from flowkit.calls import Failure, retryable
from flowkit.errors import StoreError
from flowkit.records import TaskRecord
from flowkit.retryclock import Clock, RetryClock

# -- argument templates ------------------------------------------------------------------------


def test_templates_rebuild_arguments_from_the_flat_inputs() -> None:
    flat = [10, (1, 2), "s"]
    templates = (
        ("a", FromInput(0)),
        ("b", FromInput(1, 1)),
        ("c", Constant([1])),
        ("d", ListOfArgs((FromInput(2), Constant(3)), as_tuple=True)),
        ("e", DictOfArgs((("k", FromInput(0)), ("l", ListOfArgs(()))))),
    )
    assert {name: t.build(flat) for name, t in templates} == {
        "a": 10,
        "b": 2,
        "c": [1],
        "d": ("s", 3),
        "e": {"k": 10, "l": []},
    }


def test_templates_are_frozen_and_pickle() -> None:
    t = ListOfArgs((FromInput(0, None), Constant("x")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.as_tuple = True  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(t)) == t
    assert not hasattr(FromInput(0), "__dict__")  # slots: no per-object dict
    assert whole_input(3) is whole_input(3) and whole_input(3) == FromInput(3, None)
    assert whole_input(10_000) == FromInput(10_000)


# -- the retry clock -------------------------------------------------------------------------------


class ManualClock(Clock):
    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t


def test_retries_come_due_in_time_order_and_ties_in_arrival_order() -> None:
    clock = ManualClock()
    rc: RetryClock[str, str] = RetryClock(clock)
    rc.retry_after("late", 2.0)
    rc.retry_after("first", 1.0)
    rc.retry_after("second", 1.0)
    assert rc.has_retries and rc.wait_limit() == 1.0
    assert rc.due_retry(clock.now()) is None
    clock.t += 1.0
    assert [rc.due_retry(clock.now()), rc.due_retry(clock.now())] == ["first", "second"]
    assert rc.due_retry(clock.now()) is None and rc.wait_limit() == 1.0
    clock.t += 5.0
    assert rc.wait_limit() == 0.0 and rc.due_retry(clock.now()) == "late"
    assert not rc.has_retries and rc.wait_limit() is None


def test_deadlines_and_the_wait_limit() -> None:
    clock = ManualClock()
    rc: RetryClock[str, str] = RetryClock(clock)
    rc.expire_after("fut", 5.0)
    rc.retry_after("call", 7.0)
    assert rc.wait_limit() == 5.0  # the earliest of both heaps
    clock.t += 5.0
    assert rc.due_deadline(clock.now()) == "fut" and rc.due_deadline(clock.now()) is None
    assert rc.wait_limit() == 2.0


def test_the_real_clock_waits_for_a_completion_or_the_limit() -> None:
    q: queue.SimpleQueue[str] = queue.SimpleQueue()
    q.put("done")
    assert Clock().wait(q, 0.0) == "done"
    assert Clock().wait(q, 0.01) is None
    q.put("next")
    assert RetryClock().wait(q) == "next"  # nothing due: it waits for the completion alone


# -- failures and the retry policy ------------------------------------------------------------


def test_a_failure_with_a_record_becomes_a_task_error() -> None:
    rec = TaskRecord(name="t", node="t[2]", attempts=3)
    err = Failure(rec, "t", AttemptTimeout("late")).to_exception("run-1")
    assert isinstance(err, fk.TaskTimeoutError)
    assert (err.task, err.node, err.attempts, err.run_id) == ("t", "t[2]", 3, "run-1")
    assert "timed out after 3 attempt(s) in run run-1" in str(err)
    ser = Failure(rec, "t", fk.SerializationError("no")).to_exception("r")
    assert isinstance(ser, fk.TaskSerializationError) and isinstance(ser, fk.SerializationError)


def test_a_failure_without_a_record_is_raised_as_it_is() -> None:
    graph_error = fk.GraphError("unequal lengths")
    assert Failure(None, "m", graph_error).to_exception("r") is graph_error


class Transient(StoreError):
    transient = True


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (RuntimeError("x"), True),
        (TimeoutError("x"), True),
        (fk.TypeMismatchError("x"), False),
        (fk.SerializationError("x"), False),
        (fk.GraphError("x"), False),
        (StoreError("disk full"), False),
        (Transient("throttled"), True),
    ],
)
def test_which_errors_are_retried(exc: BaseException, expected: bool) -> None:
    assert retryable(exc) is expected

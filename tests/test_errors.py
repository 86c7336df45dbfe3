"""The error tree: one base class, the documented subclasses, and errors that survive pickling."""

from __future__ import annotations

import pickle

import cloudpickle
import pytest

import flowkit as fk
from flowkit import errors


def test_hierarchy() -> None:
    for cls in (
        fk.GraphError,
        fk.TypeMismatchError,
        fk.BackendNotFoundError,
        fk.SerializationError,
        fk.TaskFailedError,
        fk.TaskTimeoutError,
        fk.StoreError,
    ):
        assert issubclass(cls, fk.FlowkitError) and issubclass(cls, Exception)
    assert issubclass(fk.TypeMismatchError, fk.GraphError)
    assert issubclass(fk.TaskTimeoutError, fk.TaskFailedError)
    assert set(errors.__all__) <= set(fk.__all__)
    for name in errors.__all__:
        assert getattr(fk, name) is getattr(errors, name)


def test_task_failed_fields() -> None:
    err = fk.TaskFailedError(
        "task `t` failed", task="t", node="t[2]", attempts=3, run_id="r1", remote_traceback="tb"
    )
    assert str(err) == "task `t` failed"
    assert (err.task, err.node, err.attempts, err.run_id, err.remote_traceback) == (
        "t", "t[2]", 3, "r1", "tb",
    )  # fmt: skip
    bare = fk.TaskFailedError("x")
    assert (bare.task, bare.node, bare.attempts, bare.run_id, bare.remote_traceback) == (
        "", "", 0, "", None,
    )  # fmt: skip


@pytest.mark.parametrize("cls", [fk.TaskFailedError, fk.TaskTimeoutError])
@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_task_failed_survives_pickling(cls: type[fk.TaskFailedError], dumps: object) -> None:
    # errors cross process boundaries (Ray workers, the CLI's subprocesses)
    err = cls("boom", task="t", node="n", attempts=2, run_id="r", remote_traceback="Traceback…")
    back = pickle.loads(dumps(err))  # type: ignore[operator]
    assert type(back) is cls
    assert str(back) == "boom" and back.args == ("boom",)
    assert (back.task, back.node, back.attempts, back.run_id, back.remote_traceback) == (
        "t", "n", 2, "r", "Traceback…",
    )  # fmt: skip


@pytest.mark.parametrize(
    "cls",
    [fk.GraphError, fk.TypeMismatchError, fk.BackendNotFoundError, fk.SerializationError,
     fk.StoreError],
)  # fmt: skip
def test_plain_errors_survive_pickling(cls: type[fk.FlowkitError]) -> None:
    back = pickle.loads(pickle.dumps(cls("what and how to fix it")))
    assert type(back) is cls and str(back) == "what and how to fix it"


def test_catching_by_base_class() -> None:
    with pytest.raises(fk.FlowkitError):
        raise fk.TaskTimeoutError("late", task="t")
    with pytest.raises(fk.GraphError):
        raise fk.TypeMismatchError("int is not str")


def test_task_serialization_error_is_both_kinds() -> None:
    err = fk.TaskSerializationError("task `t` output: cannot be stored", task="t", run_id="r")
    assert isinstance(err, fk.TaskFailedError) and isinstance(err, fk.SerializationError)

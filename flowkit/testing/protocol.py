"""``ProtocolContract``: the backend driven directly through its protocol, as the engine
drives it -- every member of ``docs/backends.md``, one test each, with no workflow around.

A failure here names the member at fault, where a workflow test would only say that a run
went wrong. Tests of an optional behaviour skip when the backend's capabilities say it does
not offer it (``splits_values``, ``enforces_timeout``).
"""

from __future__ import annotations

import threading
import traceback
from concurrent.futures import Future
from typing import Any

import pytest

import flowkit as fk
from flowkit.backend import (
    Backend,
    Capabilities,
    Submission,
    capabilities_of,
    check_store,
    fetch_many,
)
from flowkit.testing import calls
from flowkit.testing.base import ContractBase
from flowkit.testing.observe import is_marked, wait_for_mark

WAIT = 60.0  # seconds a call may take; reached only when a backend is broken


def result(fut: Future[tuple[Any, Any]]) -> tuple[Any, Any]:
    """The ``(meta, handle)`` of a future, waiting at most :data:`WAIT` seconds."""
    return fut.result(WAIT)


def value_of(backend: Backend, fn: Any, *args: Any, spec: Submission | None = None) -> Any:
    """Submit ``fn(*args)`` and fetch its value into the driver."""
    _, handle = result(backend.submit(fn, args, spec or Submission(fn.__name__)))
    return backend.fetch(handle)


class ProtocolContract(ContractBase):
    """Each member of the backend protocol, driven directly."""

    def test_is_a_backend(self) -> None:
        backend = self.make_backend()
        assert isinstance(backend, fk.Backend)
        assert isinstance(backend.name, str)
        assert backend.name
        assert backend.capacity >= 1
        declared = getattr(backend, "capabilities", None)
        assert declared is None or isinstance(declared, Capabilities)

    def test_capacity_and_parallelism(self) -> None:
        with self.make_backend() as backend:  # a cluster may know its size only once entered
            caps = capabilities_of(backend)
            # fewer calls in flight than run at once would leave workers idle
            assert 1 <= caps.parallelism <= backend.capacity

    def test_submit_then_fetch(self) -> None:
        with self.make_backend() as backend:
            meta, handle = result(backend.submit(calls.square, (7,), Submission("square")))
            assert meta == "squared 7"  # meta comes to the driver as it is
            assert backend.fetch(handle) == 49
            if capabilities_of(backend).values_in_driver:
                assert handle == 49  # handles are the values themselves

    def test_done_callbacks_fire(self) -> None:
        # The engine learns of every completion through a done-callback.
        with self.make_backend() as backend:
            fut = backend.submit(calls.square, (2,), Submission("square"))
            done = threading.Event()
            fut.add_done_callback(lambda _: done.set())
            assert done.wait(WAIT)

    def test_handles_flow_into_later_calls(self) -> None:
        with self.make_backend() as backend:
            _, a = result(backend.submit(calls.square, (3,), Submission("square")))
            _, b = result(backend.submit(calls.square, (4,), Submission("square")))
            _, c = result(backend.submit(calls.add, (a, b), Submission("add")))
            assert value_of(backend, calls.add, c, 100) == 125

    def test_static_args(self) -> None:
        # The leading static args are the same object in every call of a task.
        static = {"offset": 1000}
        spec = Submission("offset_by", static_args=1)
        with self.make_backend() as backend:
            futures = [backend.submit(calls.offset_by, (static, i), spec) for i in range(5)]
            values = fetch_many(backend, [result(f)[1] for f in futures])
        assert values == [1000, 1001, 1002, 1003, 1004]

    def test_fetch_many_in_order(self) -> None:
        with self.make_backend() as backend:
            futures = [backend.submit(calls.square, (i,), Submission("square")) for i in range(5)]
            handles = [result(f)[1] for f in futures]
            assert fetch_many(backend, handles) == [0, 1, 4, 9, 16]
            assert fetch_many(backend, handles[::-1]) == [16, 9, 4, 1, 0]
            assert fetch_many(backend, []) == []

    def test_errors_keep_their_type_and_traceback(self) -> None:
        with self.make_backend() as backend:
            fut = backend.submit(calls.fail_with, ("kaput",), Submission("fail_with"))
            err = fut.exception(WAIT)
            assert type(err) is calls.ContractError
            assert str(err) == "kaput"
            # what the engine shows: the remote traceback when the error was made elsewhere
            text = getattr(err, "remote_traceback", None) or "".join(
                traceback.format_exception(err)
            )
            assert "in fail_with" in text
            assert "ContractError: kaput" in text
            assert value_of(backend, calls.square, 5) == 25  # a failure breaks nothing

    def test_batched_returns(self) -> None:
        # A batch of n map items (flowkit.runner.run_batch) returns (outcomes, [v1..vn]):
        # the future gives one handle per value, each usable on its own.
        with self.make_backend() as backend:
            caps = capabilities_of(backend)
            if not (caps.values_in_driver or caps.splits_values):
                pytest.skip("the engine sends no batches to this backend")
            spec = Submission("squares_batch", split_values=3)
            outcomes, handles = result(backend.submit(calls.squares_batch, ([1, 2, 3],), spec))
            assert outcomes == ["squared 1", "squared 2", "squared 3"]
            assert len(handles) == 3
            assert fetch_many(backend, handles) == [1, 4, 9]
            assert value_of(backend, calls.add, handles[1], handles[2]) == 13

    def test_timeout_enforced_by_the_backend(self, folder: str) -> None:
        with self.make_backend() as backend:
            if not capabilities_of(backend).enforces_timeout:
                pytest.skip("the engine keeps the clock for this backend")
            spec = Submission("mark_then_sleep", timeout=0.5)
            fut = backend.submit(calls.mark_then_sleep, (folder, "late", 30.0), spec)
            err = fut.exception(WAIT)
            assert isinstance(err, TimeoutError), err  # AttemptTimeout is a TimeoutError
            assert not is_marked(folder, "late-done")  # stopped, not waited for
            assert value_of(backend, calls.square, 6) == 36

    def test_cancel(self, folder: str) -> None:
        # The engine cancels an attempt that ran past its timeout, then moves on.
        with self.make_backend() as backend:
            spec = Submission("mark_then_sleep")
            fut = backend.submit(calls.mark_then_sleep, (folder, "cancelled", 1.0), spec)
            seen: list[Future[Any]] = []
            fut.add_done_callback(seen.append)
            if not fut.done():
                assert wait_for_mark(folder, "cancelled", WAIT)  # running by now
            if fut.cancel():
                assert fut.cancelled()
                assert seen == [fut]  # a cancelled future still reports completion
            assert value_of(backend, calls.square, 6) == 36

    def test_context_manager_reentry(self) -> None:
        backend = self.make_backend()
        with backend:
            with backend:  # nested: the inner exit must not release the outer's resources
                assert value_of(backend, calls.square, 2) == 4
            assert value_of(backend, calls.square, 3) == 9
        with backend:  # entered again after a full exit
            assert value_of(backend, calls.square, 4) == 16

    def test_check_store(self, store: str) -> None:
        # the contract's store is one every worker reaches, so the check must pass
        with self.make_backend() as backend:
            check_store(backend, store)

"""``BackendContract``: the conformance suite every flowkit backend must pass.

A backend (ours or a third party's) proves it keeps flowkit's semantics by subclassing
:class:`BackendContract` in its own test-suite and saying how to build a fresh instance::

    from flowkit.testing import BackendContract

    class TestMyBackend(BackendContract):
        def make_backend(self) -> fk.Backend:
            return MyBackend(workers=2)

        # optional: a store every worker can reach (default: a folder in pytest's tmp_path;
        # each test gets its own sub-folder of this URL)
        store_url = "s3://bucket/flowkit-contract"

pytest then runs every ``test_*`` method below against that backend: results (chains,
fan-out/in, multi-output unpacking, sub-workflows), map order, zipped maps and
``fk.unmapped``, empty maps, retries with doubling back-off, timeouts, failures, dynamic
sub-graphs, concurrency (when ``capacity > 1``), caching through the backend and callbacks.

Policies:

* The tasks and workflows live at module level here, so a worker in another process imports
  them by name (``flowkit.testing``) instead of receiving a copy.
* What happens inside a task is observed through files in a per-test folder (attempt counts,
  attempt times, "I started" marks), never through shared memory, so the same checks hold
  for in-process, threaded and multi-process backends. Workers must therefore see the
  driver's filesystem (the same machine or a shared mount); override the ``folder`` fixture
  to point elsewhere.
* No wall-time assertions: overlap is proven by a rendezvous (each of two tasks waits for
  the other's mark), back-off by lower bounds on the gaps between recorded attempts (the
  engine guarantees the minimum delay, so slowness cannot make them fail).
* Every test stays well under a second on a healthy backend; the only long waits are the
  bounded rendezvous timeouts, reached only when a backend is broken.

This module imports pytest; it is meant for test-suites, and ``import flowkit`` never loads it.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import pytest

import flowkit as fk
from flowkit.backend import Backend
from flowkit.callbacks import Callback, Output
from flowkit.records import Run, TaskRecord

# -- observing tasks through files -------------------------------------------------------------

_RENDEZVOUS_TIMEOUT = 10.0  # only reached when two "concurrent" calls do not overlap


def record_attempt(folder: str, key: str) -> int:
    """Append the current time to ``folder/key.attempts``; return this attempt's number."""
    path = os.path.join(folder, f"{key}.attempts")
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{time.time()!r}\n")
    return len(attempt_times(folder, key))


def attempt_times(folder: str, key: str) -> list[float]:
    """The times recorded by :func:`record_attempt` for ``key``, in order."""
    path = os.path.join(folder, f"{key}.attempts")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [float(line) for line in f if line.strip()]


def mark(folder: str, name: str) -> None:
    """Create ``folder/name.mark`` (atomically, so a reader never sees it half-written)."""
    tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(repr(time.time()))
    os.replace(tmp, os.path.join(folder, f"{name}.mark"))


def is_marked(folder: str, name: str) -> bool:
    return os.path.exists(os.path.join(folder, f"{name}.mark"))


def wait_for_mark(folder: str, name: str, timeout: float) -> bool:
    """Poll for ``folder/name.mark``; True when it appeared within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not is_marked(folder, name):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


# -- tasks ------------------------------------------------------------------------------------


class Stats(NamedTuple):
    low: int
    high: int
    mean: float


@fk.task
def add(a: int, b: int) -> int:
    return a + b


@fk.task
def double(x: int) -> int:
    return 2 * x


@fk.task
def negate(x: int) -> int:
    return -x


@fk.task
def total(xs: list[int]) -> int:
    return sum(xs)


@fk.task
def numbers(n: int) -> list[int]:
    return list(range(n))


@fk.task
def divide(a: int, b: int) -> tuple[int, int]:
    return a // b, a % b


@fk.task
def stats(xs: list[int]) -> Stats:
    return Stats(min(xs), max(xs), sum(xs) / len(xs))


@fk.task
def size_and_index(items: object, i: int) -> int:
    """``items`` is typed ``object``, so a list would be mapped unless wrapped in fk.unmapped."""
    assert isinstance(items, list)
    return len(items) * 100 + i


@fk.task
def finish_inverted(x: int, count: int) -> int:
    """Item ``x`` sleeps longer the earlier it comes, so items finish in reverse order."""
    time.sleep((count - x) * 0.05)
    return 10 * x


@fk.task(retries=2)
def flaky(folder: str, fails: int) -> int:
    n = record_attempt(folder, "flaky")
    if n <= fails:
        raise RuntimeError(f"flaky attempt {n} fails on purpose")
    return n


@fk.task(retries=2, retry_delay=0.2)
def flaky_backoff(folder: str, fails: int) -> int:
    n = record_attempt(folder, "flaky_backoff")
    if n <= fails:
        raise RuntimeError(f"flaky_backoff attempt {n} fails on purpose")
    return n


@fk.task(timeout=0.5)
def sleepy(folder: str, seconds: float) -> int:
    n = record_attempt(folder, "sleepy")
    time.sleep(seconds)
    return n


@fk.task(timeout=0.5, retries=1)
def sleepy_once(folder: str, seconds: float) -> int:
    """Sleeps past its timeout on the first attempt only."""
    n = record_attempt(folder, "sleepy_once")
    if n == 1:
        time.sleep(seconds)
    return n


@fk.task
def boom(folder: str, message: str) -> int:
    mark(folder, "boom")
    raise ValueError(message)


@fk.task
def after_boom(folder: str) -> int:
    """Still running when ``boom`` fails (on a concurrent backend); ends well after it."""
    wait_for_mark(folder, "boom", 5.0)
    time.sleep(0.5)
    return 1


@fk.task
def second_step(folder: str, x: int) -> int:
    mark(folder, "second_step")
    return x


@fk.task
def rendezvous(folder: str, me: str, other: str) -> bool:
    """Mark ``me``, then wait for ``other``: True only when both calls ran at the same time."""
    mark(folder, me)
    return wait_for_mark(folder, other, _RENDEZVOUS_TIMEOUT)


@fk.task(cache=True, cache_ignore=("folder",))
def cached_numbers(folder: str, n: int) -> list[int]:
    record_attempt(folder, "cached_numbers")
    return list(range(n))


@fk.task(cache=True, cache_ignore=("folder",))
def cached_square(folder: str, x: int) -> int:
    record_attempt(folder, f"cached_square_{x}")
    return x * x


@fk.task(cache=True, cache_ignore=("folder",))
def cached_total(folder: str, xs: list[int]) -> int:
    record_attempt(folder, "cached_total")
    return sum(xs)


@fk.task
def gate(folder: str, x: int) -> int:
    """Fails while ``folder/closed.mark`` exists."""
    if is_marked(folder, "closed"):
        raise RuntimeError("the gate is closed")
    return x


@fk.dynamic
def doubles_up_to(n: int) -> list[int]:
    """Data-dependent fan-out: ``n`` is only known at run time."""
    return [double(i) for i in range(n)]


@fk.dynamic
def sign_branch(x: int) -> int:
    if x > 0:
        return double(x)
    if x < 0:
        return negate(x)
    return 0


@fk.dynamic
def sum_of_doubles(n: int) -> int:
    """A dynamic task whose sub-graph calls another dynamic task."""
    return total(doubles_up_to(add(n, 0)))


@fk.dynamic
def double_each(xs: list[int]) -> list[int]:
    out: list[int] = double.map(x=xs)
    return out


# -- workflows -------------------------------------------------------------------------------


@fk.workflow
def chain(x: int) -> int:
    return double(add(double(x), 1))


@fk.workflow
def fan_out_in(x: int) -> int:
    a = double(x)
    b = negate(a)
    c = add(a, x)
    return add(add(b, c), a)


@fk.workflow
def multi_output(a: int, b: int, n: int) -> tuple[int, int, int, float]:
    q, r = divide(a, b)
    low, high, mean = stats(numbers(n))
    both = stats(numbers(n))
    return add(q, r), add(low, high), both.high, mean


@fk.workflow
def inner(x: int) -> int:
    return add(double(x), 1)


@fk.workflow
def outer(x: int) -> int:
    return inner(inner(x))


@fk.workflow
def map_order(count: int) -> list[int]:
    out: list[int] = finish_inverted.map(x=numbers(count), count=count)
    return out


@fk.workflow
def zipped(xs: list[int], ys: list[int]) -> list[int]:
    out: list[int] = add.map(a=xs, b=ys)
    return out


@fk.workflow
def unmapped_whole(xs: list[int], idx: list[int]) -> list[int]:
    out: list[int] = size_and_index.map(items=fk.unmapped(xs), i=idx)
    return out


@fk.workflow
def empty_map(n: int) -> tuple[list[int], int]:
    doubled = double.map(x=numbers(n))
    return doubled, total(doubled)


@fk.workflow
def retrying(folder: str, fails: int) -> int:
    return flaky(folder, fails)


@fk.workflow
def backing_off(folder: str, fails: int) -> int:
    return flaky_backoff(folder, fails)


@fk.workflow
def timing_out(folder: str, seconds: float) -> int:
    return sleepy(folder, seconds)


@fk.workflow
def timing_out_once(folder: str, seconds: float) -> int:
    return sleepy_once(folder, seconds)


@fk.workflow
def failing(folder: str) -> int:
    b = boom(folder, "kaput")
    later = second_step(folder, after_boom(folder))
    return add(b, later)


@fk.workflow
def dynamic_fan_out(n: int) -> int:
    return total(doubles_up_to(add(n, 1)))


@fk.workflow
def branching(x: int) -> int:
    return sign_branch(add(x, 0))


@fk.workflow
def nested_dynamic(n: int) -> int:
    return sum_of_doubles(n)


@fk.workflow
def dynamic_map(n: int) -> list[int]:
    return double_each(numbers(n))


@fk.workflow
def overlapping(folder: str) -> list[bool]:
    return [rendezvous(folder, "a", "b"), rendezvous(folder, "b", "a")]


@fk.workflow
def cached_pipeline(folder: str, n: int) -> int:
    return cached_total(folder, cached_square.map(x=cached_numbers(folder, n), folder=folder))


@fk.workflow
def resumable(folder: str, x: int) -> int:
    return gate(folder, cached_square(folder, x))


# -- the contract ----------------------------------------------------------------------------


class Recorder(Callback):
    """A callback that keeps every event as a tuple, for assertions."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_run_start(self, run: Run) -> None:
        self.events.append(("run_start", run.id))

    def on_task_start(self, record: TaskRecord) -> None:
        self.events.append(("start", record.node))

    def on_task_end(self, record: TaskRecord, output: Output) -> None:
        self.events.append(("end", record.node, record.cached, output.value))

    def on_task_error(self, record: TaskRecord, error: BaseException) -> None:
        self.events.append(("error", record.node, error))

    def on_run_end(self, run: Run) -> None:
        self.events.append(("run_end", run.id, run.status))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[0] == kind]


def records_named(run: Run, name: str) -> list[TaskRecord]:
    """The task records of ``run`` for task ``name``, in call order."""
    return [t for t in run.tasks if t.name == name]


class BackendContract:
    """Inherit from this in a ``Test…`` class and implement :meth:`make_backend`.

    See the module docstring. ``store_url`` (optional) is a store URL reachable from every
    worker; each test uses a fresh sub-folder of it. By default each test gets a store in its
    pytest ``tmp_path``.
    """

    store_url: ClassVar[str | None] = None

    def make_backend(self) -> Backend:
        """A fresh backend instance (called once per ``fk.run``)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement make_backend() returning a backend instance"
        )

    # -- fixtures and helpers --------------------------------------------------------------

    @pytest.fixture
    def folder(self, tmp_path: Path) -> str:
        """A per-test folder for the files tasks write to report what they did."""
        d = tmp_path / "marks"
        d.mkdir()
        return str(d)

    @pytest.fixture
    def store(self, tmp_path: Path) -> str:
        """A fresh store URL for this test."""
        if self.store_url:
            return f"{self.store_url.rstrip('/')}/{uuid.uuid4().hex}"
        return str(tmp_path / "store")

    def run(self, workflow: fk.WorkflowDef[..., Any], store: str, **kwargs: Any) -> Run:
        """``fk.run`` on a fresh backend from :meth:`make_backend`."""
        return fk.run(workflow, backend=self.make_backend(), store=store, **kwargs)

    # -- results ---------------------------------------------------------------------------

    def test_is_a_backend(self) -> None:
        backend = self.make_backend()
        assert isinstance(backend, fk.Backend)
        assert isinstance(backend.name, str) and backend.name
        assert backend.capacity >= 1

    def test_chain(self, store: str) -> None:
        run = self.run(chain, store, x=3)
        assert run.output == 14
        assert run.status == "succeeded"
        assert [t.name for t in run.tasks] == ["double", "add", "double"]
        assert all(t.status == "succeeded" and t.attempts == 1 for t in run.tasks)

    def test_fan_out_and_in(self, store: str) -> None:
        # a = 2x, b = -2x, c = 3x -> b + c + a = 3x
        assert self.run(fan_out_in, store, x=5).output == 15

    def test_multi_output_unpacking(self, store: str) -> None:
        run = self.run(multi_output, store, a=17, b=5, n=5)
        # divmod(17, 5) = (3, 2); stats(range(5)) = (0, 4, 2.0)
        assert run.output == (5, 4, 4, 2.0)

    def test_sub_workflows(self, store: str) -> None:
        run = self.run(outer, store, x=2)
        assert run.output == 11  # inner(2) = 5, inner(5) = 11
        assert len(run.tasks) == 4
        assert all(t.node.startswith("inner") for t in run.tasks)

    def test_map_results_in_input_order(self, store: str) -> None:
        run = self.run(map_order, store, count=5)
        assert run.output == [0, 10, 20, 30, 40]
        nodes = [t.node for t in records_named(run, "finish_inverted")]
        assert sorted(nodes) == [f"finish_inverted[{i}]" for i in range(5)]

    def test_zipped_map(self, store: str) -> None:
        assert self.run(zipped, store, xs=[1, 2, 3], ys=[10, 20, 30]).output == [11, 22, 33]

    def test_unmapped_passes_whole(self, store: str) -> None:
        run = self.run(unmapped_whole, store, xs=[7, 8, 9], idx=[0, 1])
        assert run.output == [300, 301]

    def test_empty_map(self, store: str) -> None:
        run = self.run(empty_map, store, n=0)
        assert run.output == ([], 0)
        assert records_named(run, "double") == []

    # -- retries, back-off, timeouts -------------------------------------------------------

    def test_retries_until_success(self, store: str, folder: str) -> None:
        run = self.run(retrying, store, folder=folder, fails=2)
        assert run.output == 3
        (rec,) = records_named(run, "flaky")
        assert rec.attempts == 3
        assert rec.status == "succeeded"
        assert len(attempt_times(folder, "flaky")) == 3

    def test_retries_spent(self, store: str, folder: str) -> None:
        with pytest.raises(fk.TaskFailedError) as info:
            self.run(retrying, store, folder=folder, fails=5)
        assert info.value.attempts == 3
        assert isinstance(info.value.__cause__, RuntimeError)
        assert len(attempt_times(folder, "flaky")) == 3

    def test_retry_delay_doubles(self, store: str, folder: str) -> None:
        run = self.run(backing_off, store, folder=folder, fails=2)
        assert run.output == 3
        t = attempt_times(folder, "flaky_backoff")
        assert len(t) == 3
        # retry_delay=0.2: at least 0.2 s before the 2nd attempt, 0.4 s before the 3rd
        assert t[1] - t[0] >= 0.2 * 0.95
        assert t[2] - t[1] >= 0.4 * 0.95

    def test_timeout(self, store: str, folder: str) -> None:
        with pytest.raises(fk.TaskTimeoutError) as info:
            self.run(timing_out, store, folder=folder, seconds=2.0)
        err = info.value
        assert isinstance(err, fk.TaskFailedError)
        assert err.task == "sleepy"
        assert "sleepy" in str(err)
        assert err.attempts == 1

    def test_timeout_is_retried(self, store: str, folder: str) -> None:
        run = self.run(timing_out_once, store, folder=folder, seconds=2.0)
        assert run.output == 2
        (rec,) = records_named(run, "sleepy_once")
        assert rec.attempts == 2

    # -- failures --------------------------------------------------------------------------

    def test_failure(self, store: str, folder: str) -> None:
        with pytest.raises(fk.TaskFailedError) as info:
            self.run(failing, store, folder=folder)
        err = info.value
        assert not isinstance(err, fk.TaskTimeoutError)
        assert (err.task, err.node, err.attempts) == ("boom", "boom", 1)
        assert err.run_id and err.run_id in str(err)
        assert "boom" in str(err) and "kaput" in str(err)
        assert isinstance(err.__cause__, ValueError)
        assert str(err.__cause__) == "kaput"
        assert err.remote_traceback is not None
        assert "ValueError: kaput" in err.remote_traceback
        assert "in boom" in err.remote_traceback  # the frame of the task function is kept

    def test_failure_stops_new_work_and_saves_the_run(self, store: str, folder: str) -> None:
        recorder = Recorder()
        with pytest.raises(fk.TaskFailedError) as info:
            self.run(failing, store, folder=folder, callbacks=[recorder])
        # `second_step` depends only on a call that was still running (or not yet started)
        # when `boom` failed: it must never start.
        assert not is_marked(folder, "second_step")
        header, tasks = fk.Store(store).read_run(info.value.run_id)
        assert header["status"] == "failed"
        assert "kaput" in (header["error"] or "")
        (failed,) = [t for t in tasks if t["name"] == "boom"]
        assert failed["status"] == "failed"
        assert "kaput" in failed["error"]
        assert "second_step" not in {t["name"] for t in tasks}
        assert recorder.events[-1] == ("run_end", info.value.run_id, "failed")
        (error,) = recorder.of("error")
        assert error[1] == "boom" and isinstance(error[2], ValueError)

    def test_rerun_after_failure_reuses_finished_cached_tasks(
        self, store: str, folder: str
    ) -> None:
        mark(folder, "closed")
        with pytest.raises(fk.TaskFailedError):
            self.run(resumable, store, folder=folder, x=6)
        os.remove(os.path.join(folder, "closed.mark"))
        run = self.run(resumable, store, folder=folder, x=6)
        assert run.output == 36
        (square,) = records_named(run, "cached_square")
        assert square.cached
        assert len(attempt_times(folder, "cached_square_6")) == 1

    # -- dynamic ---------------------------------------------------------------------------

    def test_dynamic_fan_out(self, store: str) -> None:
        run = self.run(dynamic_fan_out, store, n=3)
        assert run.output == 12  # doubles of range(4)
        assert len(records_named(run, "double")) == 4

    @pytest.mark.parametrize(("x", "expected"), [(3, 6), (-2, 2), (0, 0)])
    def test_dynamic_branch(self, store: str, x: int, expected: int) -> None:
        run = self.run(branching, store, x=x)
        assert run.output == expected
        names = {t.name for t in run.tasks}
        assert ("double" in names) == (x > 0)
        assert ("negate" in names) == (x < 0)

    def test_nested_dynamic(self, store: str) -> None:
        assert self.run(nested_dynamic, store, n=4).output == 12

    def test_map_inside_dynamic(self, store: str) -> None:
        assert self.run(dynamic_map, store, n=4).output == [0, 2, 4, 6]

    # -- concurrency -----------------------------------------------------------------------

    def test_independent_tasks_overlap(self, store: str, folder: str) -> None:
        with self.make_backend() as backend:  # a cluster backend may know its size only then
            capacity = backend.capacity
        if capacity <= 1:
            pytest.skip("the backend runs one call at a time (capacity 1)")
        run = self.run(overlapping, store, folder=folder)
        assert run.output == [True, True]

    # -- caching ---------------------------------------------------------------------------

    def test_second_run_is_cached(self, store: str, folder: str) -> None:
        first = self.run(cached_pipeline, store, folder=folder, n=4)
        assert first.output == 14
        assert not any(t.cached for t in first.tasks)
        assert all(t.key for t in first.tasks)
        second = self.run(cached_pipeline, store, folder=folder, n=4)
        assert second.output == 14
        assert len(second.tasks) == len(first.tasks) == 6
        assert all(t.cached for t in second.tasks)
        assert sorted(t.key or "" for t in second.tasks) == sorted(t.key or "" for t in first.tasks)
        assert len(attempt_times(folder, "cached_total")) == 1
        assert all(len(attempt_times(folder, f"cached_square_{x}")) == 1 for x in range(4))
        off = self.run(cached_pipeline, store, folder=folder, n=4, cache=False)
        assert off.output == 14
        assert not any(t.cached for t in off.tasks)
        assert len(attempt_times(folder, "cached_total")) == 2

    # -- callbacks -------------------------------------------------------------------------

    def test_callbacks(self, store: str, folder: str) -> None:
        recorder = Recorder()
        run = self.run(cached_pipeline, store, folder=folder, n=3, callbacks=[recorder])
        assert recorder.events[0] == ("run_start", run.id)
        assert recorder.events[-1] == ("run_end", run.id, "succeeded")
        starts = [e[1] for e in recorder.of("start")]
        ends = {e[1]: e[2:] for e in recorder.of("end")}
        assert sorted(starts) == sorted(ends) == sorted(t.node for t in run.tasks)
        for node in starts:  # each call starts before it ends
            assert recorder.events.index(("start", node)) < recorder.events.index(
                ("end", node, *ends[node])
            )
        assert ends["cached_numbers"] == (False, [0, 1, 2])
        assert ends["cached_square[2]"] == (False, 4)
        assert ends["cached_total"] == (False, 5)
        again = Recorder()
        self.run(cached_pipeline, store, folder=folder, n=3, callbacks=[again])
        assert {e[1]: e[2:] for e in again.of("end")} == {
            node: (True, value) for node, (_, value) in ends.items()
        }


__all__ = [
    "BackendContract",
    "Recorder",
    "attempt_times",
    "is_marked",
    "mark",
    "record_attempt",
    "records_named",
    "wait_for_mark",
]

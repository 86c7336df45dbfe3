"""The engine's ready-set loop, observed through real backends: what it submits and fetches,
capacity, run-time type checks, retries policy, dynamic tasks, maps, records and callbacks."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from core_fixtures.backends import BoxedBackend, CountingThreads, RefusingBackend

import flowkit as fk
from flowkit.backends import ThreadsBackend
from flowkit.callbacks import CallbackGroup
from flowkit.engine import Engine
from flowkit.records import SHORT_KEY_CHARS, Run, new_run_id, short_key
from flowkit.retryclock import Clock
from flowkit.testing import attempt_times, mark, record_attempt, wait_for_mark


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def folder(tmp_path: Path) -> str:
    d = tmp_path / "marks"
    d.mkdir()
    return str(d)


class Pair(NamedTuple):
    number: int
    label: str


@fk.task
def double(x: int) -> int:
    return 2 * x


@fk.task
def add(a: int, b: int) -> int:
    return a + b


@fk.task
def numbers(n: int) -> list[int]:
    return list(range(n))


@fk.task
def total(xs: list[int]) -> int:
    return sum(xs)


@fk.task
def pair(x: int) -> tuple[int, str]:
    return x, str(x)


@fk.task
def named_pair(x: int) -> Pair:
    return (x, str(x))  # type: ignore[return-value]  # a plain tuple of the right shape is fine


# -- what the engine submits and fetches --------------------------------------------------------


@fk.workflow
def chain(x: int) -> int:
    return double(double(double(x)))


@fk.workflow
def map_of_map(n: int) -> int:
    return total(double.map(x=double.map(x=numbers(n))))


def test_only_the_output_is_fetched(store: str) -> None:
    backend = BoxedBackend()
    assert fk.run(chain, x=1, backend=backend, store=store).output == 8
    assert backend.fetched == [8]
    assert backend.submitted == ["double"] * 3


def test_map_fetches_only_the_list_it_must_count(store: str) -> None:
    backend = BoxedBackend()
    run = fk.run(map_of_map, n=3, backend=backend, store=store)
    assert run.output == 12
    # `numbers` is fetched to learn the map's length; the items of the first map flow into
    # the second map and into `total` as handles; then the output is fetched.
    assert backend.fetched == [[0, 1, 2], 12]
    assert [t.node for t in run.tasks] == [
        "numbers", "double[0]", "double[1]", "double[2]",
        "double_2[0]", "double_2[1]", "double_2[2]", "total",
    ]  # fmt: skip


@fk.task
def nap(folder: str, i: int) -> int:
    record_attempt(folder, f"nap{i}")
    time.sleep(0.05)
    return i


@fk.workflow
def naps(folder: str, n: int) -> list[int]:
    return nap.map(i=numbers(n), folder=folder)


def test_capacity_bounds_calls_in_flight(store: str, folder: str) -> None:
    backend = CountingThreads(capacity=2)
    run = fk.run(naps, folder=folder, n=6, backend=backend, store=store)
    assert run.output == list(range(6))
    assert backend.most == 2


@fk.task(retries=1)
def flaky_square(folder: str, x: int) -> int:
    if x == 57 and record_attempt(folder, "flaky57") == 1:
        raise RuntimeError("first attempt of item 57 fails")
    return x * x


@fk.workflow
def flaky_squares(folder: str, n: int) -> int:
    return total(flaky_square.map(x=numbers(n), folder=folder))


def test_small_map_items_are_batched_yet_retried_and_recorded_one_by_one(
    store: str, folder: str
) -> None:
    backend = CountingThreads(capacity=2)
    run = fk.run(flaky_squares, folder=folder, n=300, backend=backend, store=store)
    assert run.output == sum(i * i for i in range(300))
    # far fewer hand-offs than calls: items went in batches
    assert backend.submissions < 100
    items = [t for t in run.tasks if t.name == "flaky_square"]
    assert [t.node for t in items] == [f"flaky_square[{i}]" for i in range(300)]
    assert all(t.status == "succeeded" and t.duration is not None for t in items)
    assert {t.node: t.attempts for t in items if t.attempts != 1} == {"flaky_square[57]": 2}


def test_backend_that_refuses_a_call_fails_that_call(store: str) -> None:
    with pytest.raises(fk.TaskFailedError) as info:
        fk.run(chain, x=1, backend=RefusingBackend("double"), store=store)
    assert info.value.task == "double"
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "no worker can run" in str(info.value)


# -- run-time type checks ----------------------------------------------------------------------


@fk.task(retries=2)
def liar(x: int) -> int:
    return "not a number"  # type: ignore[return-value]


@fk.task(retries=2)
def half_liar(x: int) -> tuple[int, str]:
    return x, x  # type: ignore[return-value]


@fk.workflow
def lying(x: int) -> int:
    return liar(x)


@fk.workflow
def half_lying(x: int) -> int:
    n, _ = half_liar(x)
    return n


def test_wrong_return_type_names_the_task_and_is_not_retried(store: str) -> None:
    with pytest.raises(fk.TaskFailedError) as info:
        fk.run(lying, x=1, store=store)
    err = info.value
    assert isinstance(err.__cause__, fk.TypeMismatchError)
    assert err.attempts == 1  # retrying cannot fix an annotation
    msg = str(err.__cause__)
    assert "task `liar`" in msg and "'not a number'" in msg and "-> int" in msg


def test_wrong_return_type_names_the_output(store: str) -> None:
    with pytest.raises(fk.TaskFailedError) as info:
        fk.run(half_lying, x=1, store=store)
    msg = str(info.value.__cause__)
    assert "task `half_liar`" in msg
    assert "output `1`" in msg and "str" in msg


def test_multi_outputs_at_run_time(store: str) -> None:
    @fk.workflow
    def wf(x: int) -> tuple[int, str, str]:
        n, label = pair(x)
        p = named_pair(x)
        return add(n, p.number), label, p.label

    assert fk.run(wf, x=4, store=store).output == (8, "4", "4")

    @fk.workflow
    def mapped(xs: list[int]) -> list[tuple[int, str]]:
        return pair.map(x=xs)

    assert fk.run(mapped, xs=[1, 2], store=store).output == [(1, "1"), (2, "2")]


# -- maps --------------------------------------------------------------------------------------


def test_map_over_literal_list_of_promises(store: str) -> None:
    @fk.workflow
    def wf(x: int) -> list[int]:
        return double.map(x=[double(x), 2, x])

    run = fk.run(wf, x=2, store=store)
    assert run.output == [8, 4, 4]
    assert [t.node for t in run.tasks] == ["double", "double_2[0]", "double_2[1]", "double_2[2]"]


def test_unequal_lengths_at_run_time(store: str) -> None:
    @fk.workflow
    def wf(n: int, m: int) -> list[int]:
        return add.map(a=numbers(n), b=numbers(m))

    with pytest.raises(fk.GraphError, match=r"unequal lengths \{'a': 2, 'b': 3\}"):
        fk.run(wf, n=2, m=3, store=store)
    (header,) = fk.Store(store).list_runs()
    assert header["status"] == "failed"


def test_workflow_output_shapes(store: str) -> None:
    @fk.workflow
    def wf(x: int) -> dict[str, Any]:
        return {"doubled": double(x), "input": x, "both": [double(x), 7]}

    assert fk.run(wf, x=3, store=store).output == {"doubled": 6, "input": 3, "both": [6, 7]}

    @fk.workflow
    def passthrough(x: int) -> int:
        return x

    run = fk.run(passthrough, x=5, store=store)
    assert run.output == 5 and run.tasks == []


# -- dynamic -----------------------------------------------------------------------------------


@fk.dynamic
def fan(n: int) -> list[int]:
    return [double(i) for i in range(n)]


@fk.dynamic
def fan_each(ns: list[int]) -> list[list[int]]:
    return [fan(n) for n in ns]


def test_dynamic_in_a_loop_of_another_dynamic(store: str) -> None:
    @fk.workflow
    def wf(ns: list[int]) -> list[list[int]]:
        return fan_each(ns)

    run = fk.run(wf, ns=[1, 3], store=store)
    assert run.output == [[0], [0, 2, 4]]
    assert {t.node for t in run.tasks} >= {"fan_each", "fan_each/fan", "fan_each/fan_2/double_3"}


def test_mapping_a_dynamic_task_is_refused_at_decoration() -> None:
    with pytest.raises(fk.GraphError, match=r"`fan`.*dynamic.*cannot be mapped"):

        @fk.workflow
        def wf(ns: list[int]) -> list[list[int]]:
            return fan.map(n=ns)


@fk.dynamic
def pair_up(x: int) -> tuple[int, int]:
    return double(x), x


@fk.workflow
def sub(x: int) -> int:
    return double(double(x))


@fk.dynamic
def calls_sub(x: int) -> int:
    return sub(x)


def test_dynamic_outputs_and_sub_workflows(store: str) -> None:
    @fk.workflow
    def wf(x: int) -> tuple[int, int]:
        a, b = pair_up(x)
        return add(a, b), calls_sub(x)

    run = fk.run(wf, x=3, store=store)
    assert run.output == (9, 12)
    nodes = [t.node for t in run.tasks]
    assert "pair_up/double" in nodes and "calls_sub/sub.double_2" in nodes


def test_dynamic_failure_and_retries(store: str) -> None:
    calls: list[int] = []

    @fk.dynamic(retries=1)
    def shaky(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise OSError("first time unlucky")
        return double(x)

    @fk.dynamic
    def broken(x: int) -> int:
        raise KeyError("no such branch")

    @fk.workflow
    def good(x: int) -> int:
        return shaky(x)

    @fk.workflow
    def bad(x: int) -> int:
        return add(broken(x), 1)

    run = fk.run(good, x=5, store=store)
    assert run.output == 10
    assert [t.attempts for t in run.tasks if t.name == "shaky"] == [2]
    with pytest.raises(fk.TaskFailedError) as info:
        fk.run(bad, x=5, store=store)
    assert info.value.task == "broken" and isinstance(info.value.__cause__, KeyError)


def test_dynamic_return_is_type_checked(store: str) -> None:
    @fk.dynamic
    def wrong(x: int) -> int:
        return "text"  # type: ignore[return-value]

    @fk.workflow
    def wf(x: int) -> int:
        return wrong(x)

    with pytest.raises(fk.TaskFailedError) as info:
        fk.run(wf, x=1, store=store)
    assert isinstance(info.value.__cause__, fk.TypeMismatchError)
    assert "wrong" in str(info.value.__cause__)


# -- cache modes -------------------------------------------------------------------------------


@fk.task(cache=True, cache_ignore=("folder",))
def counted(folder: str, x: int) -> int:
    record_attempt(folder, f"counted{x}")
    return x + 100


@fk.workflow
def counting(folder: str, x: int) -> int:
    return double(counted(folder, x))


def test_cache_modes(store: str, folder: str) -> None:
    first = fk.run(counting, folder=folder, x=1, store=store)
    rec = {t.name: t for t in first.tasks}
    assert rec["counted"].key and not rec["counted"].cached
    assert rec["double"].key  # not cached, but kept: keyed, so a later run may resume it
    hit = fk.run(counting, folder=folder, x=1, store=store)
    assert {t.name: t.cached for t in hit.tasks} == {"counted": True, "double": False}
    refresh = fk.run(counting, folder=folder, x=1, store=store, cache="refresh")
    assert not any(t.cached for t in refresh.tasks)
    assert {t.name: t.key for t in refresh.tasks}["counted"] == rec["counted"].key
    off = fk.run(counting, folder=folder, x=1, store=store, cache=False)
    # cache=False: every call is only kept, recorded with its key's first bits (what resume
    # matches on)
    assert [t.key for t in off.tasks] == [short_key(rec["counted"].key), rec["double"].key]
    assert len(rec["double"].key) == SHORT_KEY_CHARS < len(rec["counted"].key)
    assert not any(t.cached for t in off.tasks)
    assert len(attempt_times(folder, "counted1")) == 3  # first, refresh, off
    assert fk.run(counting, folder=folder, x=2, store=store).tasks[0].cached is False


# -- records and callbacks ---------------------------------------------------------------------


def test_records_are_written_to_the_store(store: str) -> None:
    run = fk.run(map_of_map, n=2, store=store)
    header, tasks = fk.Store(store).read_run(run.id)
    assert header["status"] == "succeeded" and header["workflow"] == "map_of_map"
    assert header["inputs"] == {"n": 2}
    assert header["summary"] == {"run": 6, "cached": 0, "failed": 0}
    assert sorted(t["node"] for t in tasks) == sorted(t.node for t in run.tasks)
    assert all(t["status"] == "succeeded" and t["ended"] >= t["started"] for t in tasks)


class Exploding(fk.Callback):
    def on_task_end(self, record: fk.TaskRecord, output: fk.Output) -> None:
        raise RuntimeError("observer bug")


def test_a_failing_callback_does_not_break_the_run(
    store: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="flowkit.callbacks"):
        run = fk.run(chain, x=1, store=store, callbacks=[Exploding()])
    assert run.output == 8 and run.status == "succeeded"
    assert "on_task_end" in caplog.text and "observer bug" in caplog.text


def test_callback_output_type_and_lazy_value(store: str) -> None:
    seen: list[tuple[str, Any]] = []

    class Types(fk.Callback):
        def on_task_end(self, record: fk.TaskRecord, output: fk.Output) -> None:
            seen.append((record.node, output.type))

    backend = BoxedBackend()
    fk.run(chain, x=1, backend=backend, store=store, callbacks=[Types()])
    assert seen == [("double", int), ("double_2", int), ("double_3", int)]
    assert backend.fetched == [8]  # nobody asked for the values: nothing extra was fetched


def test_retries_policy_in_records(store: str, folder: str) -> None:
    @fk.task(retries=3)
    def twice_broken(folder: str) -> int:
        n = record_attempt(folder, "tb")
        if n < 3:
            raise ConnectionError(f"attempt {n}")
        return n

    @fk.workflow
    def wf(folder: str) -> int:
        return twice_broken(folder)

    run = fk.run(wf, folder=folder, store=store)
    (rec,) = run.tasks
    assert (rec.attempts, rec.status, rec.error) == (3, "succeeded", None)
    assert rec.started is not None and rec.ended is not None
    assert rec.started <= attempt_times(folder, "tb")[0] <= attempt_times(folder, "tb")[2]
    assert rec.ended >= attempt_times(folder, "tb")[2]
    assert os.path.exists(os.path.join(folder, "tb.attempts"))


@fk.task
def width(p: Pair) -> int:
    return len(p.label) + p.number


def test_namedtuple_outputs_flow_whole(store: str) -> None:
    @fk.workflow
    def sub(x: int) -> Pair:
        return named_pair(x)

    @fk.workflow
    def wf(x: int) -> tuple[Pair, int, int]:
        p = sub(x)
        number, _ = p
        return p, width(p), add(number, p.number)

    run = fk.run(wf, x=12, store=store)
    assert run.output == ((12, "12"), 14, 24)
    assert isinstance(run.output[0], Pair)


# -- the loop's own behaviour --------------------------------------------------------------------


@fk.task
def slow(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@fk.workflow
def one_slow(seconds: float) -> float:
    return slow(seconds)


class CountingClock(Clock):
    """Real time, counting how often the engine's loop waits for a completion."""

    wakes = 0

    def wait(self, completions: Any, timeout: float | None) -> Any:
        self.wakes += 1
        return super().wait(completions, timeout)


def test_waiting_for_a_long_call_does_not_spin(store: str) -> None:
    the_store = fk.Store(store)
    the_store.check()
    run = Run(id=new_run_id(), workflow="one_slow")
    clock = CountingClock()
    with ThreadsBackend(max_workers=1) as backend:
        engine = Engine(
            one_slow.graph,
            {"seconds": 1.5},
            backend,
            the_store,
            True,
            CallbackGroup([]),
            run,
            clock=clock,
        )
        assert engine.execute() == 1.5
    # a wake-up per completion and a few more: not one per microsecond
    assert 1 <= clock.wakes < 20


SCRIPT_KILLED_MID_RUN = """
import os, sys, time
import flowkit as fk

@fk.task
def quick(x: int) -> int:
    return x + 1

@fk.task
def killer(x: int) -> int:
    time.sleep(2.5)  # long enough for the engine to write the records it has
    os._exit(3)

@fk.workflow
def wf(x: int) -> int:
    return killer(quick(quick(x)))

fk.run(wf, x=1, backend="threads", store=sys.argv[1])
"""


def test_a_killed_run_leaves_the_records_of_finished_tasks(tmp_path: Path) -> None:
    script = tmp_path / "killed.py"
    script.write_text(SCRIPT_KILLED_MID_RUN)
    store = str(tmp_path / "store")
    proc = subprocess.run(
        [sys.executable, str(script), store], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 3, proc.stderr
    (header,) = fk.Store(store).list_runs()
    assert header["status"] == "lost"  # it never wrote its end, and its pid is gone
    _, tasks = fk.Store(store).read_run(header["id"])
    assert [(t["node"], t["status"]) for t in tasks] == [
        ("quick", "succeeded"),
        ("quick_2", "succeeded"),
    ]


class LastRun(fk.Callback):
    run: Run | None = None

    def on_run_end(self, run: Run) -> None:
        self.run = run


@fk.task
def boom(x: int) -> int:
    raise ValueError("boom")


@fk.task
def fails_later(folder: str, x: int) -> int:
    # fails after `flaky_then_mark` has failed once (so while its retry is waiting)
    wait_for_mark(folder, "flaky-failed", 5.0)
    raise ValueError("later")


@fk.task
def flaky_then_mark(folder: str, x: int) -> int:
    mark(folder, "flaky-failed")
    raise OSError("flaky")


def test_calls_that_never_ran_after_a_failure_are_skipped(store: str) -> None:
    @fk.workflow
    def wf(x: int) -> int:
        return add(boom(x), double(x))

    last = LastRun()
    with pytest.raises(fk.TaskFailedError) as info:
        fk.run(wf, x=1, store=store, callbacks=[last])  # local: `double` never starts
    assert last.run is not None
    statuses = [(t.node, t.status) for t in last.run.tasks]
    assert statuses == [("boom", "failed"), ("double", "skipped")]
    _, stored = fk.Store(store).read_run(info.value.run_id)
    assert sorted((t["node"], t["status"]) for t in stored) == [
        ("boom", "failed"),
        ("double", "skipped"),
    ]


def test_an_abandoned_retry_is_skipped(store: str, folder: str) -> None:
    flaky_task = fk.task(retries=3, retry_delay=2.0, name="flaky_then_mark")(flaky_then_mark.fn)

    @fk.workflow
    def wf(folder: str, x: int) -> int:
        return add(flaky_task(folder, x), fails_later(folder, x))

    last = LastRun()
    with pytest.raises(fk.TaskFailedError) as info:
        fk.run(wf, folder=folder, x=1, store=store, backend="threads", callbacks=[last])
    assert info.value.task == "fails_later"
    assert last.run is not None
    states = {t.node: (t.status, t.attempts) for t in last.run.tasks}
    assert states == {"flaky_then_mark": ("skipped", 1), "fails_later": ("failed", 1)}
    skipped = last.run.tasks[0]
    assert skipped.ended is not None and skipped.started is not None


class WorkerClockThreads(ThreadsBackend):
    """Declares that it enforces timeouts itself (as Ray does on the worker, counting only
    running time, not time queued); this one, to show who owns the clock, never does."""

    enforces_timeout = True


@fk.task(timeout=0.2)
def over_time(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@fk.workflow
def over(seconds: float) -> float:
    return over_time(seconds)


def test_a_backend_that_enforces_timeouts_owns_the_clock(store: str) -> None:
    with pytest.raises(fk.TaskTimeoutError):
        fk.run(over, seconds=0.6, store=store, backend=ThreadsBackend(max_workers=1))
    # the engine does not start its own clock: the call is not cut at 0.2 s
    run = fk.run(over, seconds=0.6, store=store, backend=WorkerClockThreads(max_workers=1))
    assert run.output == 0.6


@fk.task(cache=True)
def cached_square(x: int) -> int:
    return x * x


@fk.workflow
def cached_squares(n: int) -> int:
    return total(cached_square.map(x=numbers(n)))


def test_hits_are_served_in_the_driver_when_handles_are_values(store: str) -> None:
    first = CountingThreads(capacity=2)
    assert fk.run(cached_squares, n=50, backend=first, store=store).output == 40425
    assert first.submissions > 0
    again = CountingThreads(capacity=2)
    run = fk.run(cached_squares, n=50, backend=again, store=store)
    assert run.output == 40425
    assert again.submissions == 2  # only `numbers` and `total` (not cached) went to a worker
    assert all(t.cached for t in run.tasks if t.name == "cached_square")

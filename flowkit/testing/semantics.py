"""``WorkflowContract``: whole workflows on a backend -- flowkit's semantics end to end."""

from __future__ import annotations

import os

import pytest

import flowkit as fk
from flowkit.testing.base import ContractBase
from flowkit.testing.observe import Recorder, attempt_times, is_marked, mark, records_named
from flowkit.testing.workflows import (
    backing_off,
    branching,
    cached_pipeline,
    chain,
    dynamic_fan_out,
    dynamic_map,
    empty_map,
    failing,
    fan_out_in,
    map_order,
    multi_output,
    nested_dynamic,
    outer,
    overlapping,
    resumable,
    retrying,
    timing_out,
    timing_out_once,
    unmapped_whole,
    zipped,
)


class WorkflowContract(ContractBase):
    """Whole workflows through a backend: results, map order, retries, back-off, timeouts,
    failures, dynamic sub-graphs, concurrency, caching and callbacks."""

    # -- results ---------------------------------------------------------------------------

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
        assert err.run_id
        assert err.run_id in str(err)
        assert "boom" in str(err)
        assert "kaput" in str(err)
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
        assert error[1] == "boom"
        assert isinstance(error[2], ValueError)

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

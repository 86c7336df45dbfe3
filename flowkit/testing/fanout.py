"""``FanoutContract``: limits on calls in flight (``concurrency=``, pools) and tolerant maps
(``min_success``) on a backend, and the probe that measures how many calls overlap.

Overlap is measured with files, never with wall time: a call of a probed task creates a file
in ``folder/running`` for as long as it runs and counts the files there. Every file counted
belongs to a call that is running right then, so the count never exceeds the true overlap,
and a count above a limit proves the limit broken. To prove the limit is also *reached* (a
gate that admits one call at a time would pass the first check), each call waits, bounded,
until as many calls run as could: ``min(limit, parallelism, items not finished)``; with a
working gate that happens at once, and only a broken one waits out the bound (and fails).
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

import flowkit as fk
from flowkit.backend import capabilities_of
from flowkit.testing.base import ContractBase
from flowkit.testing.observe import _RENDEZVOUS_TIMEOUT, record_attempt

#: The pool the contract's pooled tasks share (``fk.run(limits={POOL: n})``).
POOL = "flowkit-contract"


def _count(path: str) -> int:
    try:
        return len(os.listdir(path))
    except FileNotFoundError:
        return 0


def probe(folder: str, n: int, cap: int, cpus: float = 1.0) -> int:
    """Run as one of ``n`` probed calls that may overlap up to ``cap``; return how many calls
    this one saw running at once (itself included). Appends it to ``folder/seen``."""
    running = os.path.join(folder, "running")
    done = os.path.join(folder, "done")
    os.makedirs(running, exist_ok=True)
    os.makedirs(done, exist_ok=True)
    me = uuid.uuid4().hex
    mine = os.path.join(running, f"{me}_{cpus!r}")
    with open(mine, "w", encoding="utf-8"):
        pass
    try:
        deadline = time.monotonic() + _RENDEZVOUS_TIMEOUT
        seen = _count(running)
        while seen < min(cap, n - _count(done)) and time.monotonic() < deadline:
            time.sleep(0.005)
            seen = _count(running)
        cpus_seen = sum(float(name.split("_", 1)[1]) for name in os.listdir(running))
        with open(os.path.join(folder, "seen"), "a", encoding="utf-8") as f:
            f.write(f"{seen} {cpus_seen!r}\n")
        return seen
    finally:
        with open(os.path.join(done, me), "w", encoding="utf-8"):
            pass
        os.remove(mine)


def seen_counts(folder: str) -> list[int]:
    """What each probed call saw running at once (:func:`probe`), in the order they ended."""
    return [int(line.split()[0]) for line in _lines(folder)]


def seen_cpus(folder: str) -> list[float]:
    """The sum of the ``cpus`` of the calls each probed call saw running at once."""
    return [float(line.split()[1]) for line in _lines(folder)]


def _lines(folder: str) -> list[str]:
    path = os.path.join(folder, "seen")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [line for line in f if line.strip()]


# -- tasks and workflows (module level: workers import them by name) ----------------------------


@fk.task(concurrency=2)
def two_at_a_time(folder: str, x: int, n: int, cap: int) -> int:
    probe(folder, n, cap)
    return 10 * x


@fk.task(pool=POOL)
def pooled_a(folder: str, x: int, n: int, cap: int) -> int:
    probe(folder, n, cap)
    return x


@fk.task(pool=POOL)
def pooled_b(folder: str, x: int, n: int, cap: int) -> int:
    probe(folder, n, cap)
    return -x


@fk.task(retries=1)
def sometimes(folder: str, x: int, bad: list[int], flaky: list[int]) -> int:
    """Fails for good when ``x`` is in ``bad``; fails its first attempt when in ``flaky``."""
    attempt = record_attempt(folder, f"sometimes_{x}")
    if x in bad or (x in flaky and attempt == 1):
        raise ValueError(f"item {x} failed (attempt {attempt})")
    return x


@fk.task
def count_present(xs: list[int | None]) -> int:
    return sum(1 for x in xs if x is not None)


@fk.workflow
def limited_fan(folder: str, xs: list[int], n: int, cap: int) -> list[int]:
    out: list[int] = two_at_a_time.map(folder=folder, x=xs, n=n, cap=cap)
    return out


@fk.workflow
def pooled_fan(folder: str, xs: list[int], n: int, cap: int) -> tuple[list[int], list[int]]:
    return (
        pooled_a.map(folder=folder, x=xs, n=n, cap=cap),
        pooled_b.map(folder=folder, x=xs, n=n, cap=cap),
    )


@fk.workflow
def tolerant(
    folder: str, xs: list[int], bad: list[int], flaky: list[int]
) -> tuple[list[int | None], int]:
    got = sometimes.map(
        folder=folder, x=xs, bad=fk.unmapped(bad), flaky=fk.unmapped(flaky), min_success=0.5
    )
    return got, count_present(got)


class FanoutContract(ContractBase):
    """Limits on calls in flight and tolerant maps, through the backend."""

    def _parallelism(self) -> int:
        with self.make_backend() as backend:  # a cluster backend may know its size only then
            return capabilities_of(backend).parallelism

    def test_concurrency_limit_is_held_and_reached(self, store: str, folder: str) -> None:
        cap = min(2, self._parallelism())
        xs = list(range(5))
        run = self.run(limited_fan, store, folder=folder, xs=xs, n=len(xs), cap=cap)
        assert run.output == [10 * x for x in xs]
        seen = seen_counts(folder)
        assert len(seen) == len(xs)
        assert max(seen) == cap  # never above the task's concurrency=2, and it was reached

    def test_pool_limit_is_shared_by_its_tasks(self, store: str, folder: str) -> None:
        cap = min(2, self._parallelism())
        xs = [1, 2, 3]
        run = self.run(
            pooled_fan, store, folder=folder, xs=xs, n=2 * len(xs), cap=cap, limits={POOL: 2}
        )
        assert run.output == ([1, 2, 3], [-1, -2, -3])
        seen = seen_counts(folder)
        assert len(seen) == 2 * len(xs)
        assert max(seen) == cap

    def test_a_pool_without_a_limit_fails_before_any_call(self, store: str, folder: str) -> None:
        with pytest.raises(fk.GraphError, match=f"pool '{POOL}'.*limits="):
            self.run(pooled_fan, store, folder=folder, xs=[1], n=2, cap=1)
        assert seen_counts(folder) == []

    def test_min_success_gives_none_for_failed_items(self, store: str, folder: str) -> None:
        # 4 items: item 2 fails for good, item 1 only on its first attempt (retried)
        run = self.run(tolerant, store, folder=folder, xs=[0, 1, 2, 3], bad=[2], flaky=[1])
        assert run.status == "succeeded"
        assert run.output == ([0, 1, None, 3], 3)
        assert run.tolerated == {"sometimes": {"items": 4, "min_success": 0.5, "failed": [2]}}
        by_node = {t.node: t for t in run.tasks}
        assert by_node["sometimes[2]"].status == "failed"
        assert by_node["sometimes[2]"].attempts == 2
        assert "item 2 failed" in (by_node["sometimes[2]"].error or "")
        assert by_node["sometimes[1]"].status == "succeeded"
        header, _ = fk.Store(store).read_run(run.id)
        assert header["tolerated"]["sometimes"]["failed"] == [2]

    def test_min_success_not_met_fails_the_run(self, store: str, folder: str) -> None:
        with pytest.raises(fk.TaskFailedError, match=r"min_success=0\.5") as info:
            self.run(tolerant, store, folder=folder, xs=[0, 1, 2, 3], bad=[0, 2, 3], flaky=[])
        header, _ = fk.Store(store).read_run(info.value.run_id)
        assert header["status"] == "failed"
        # 2 of 4 may fail: the run fails at the third failure, listing the three
        assert header["tolerated"]["sometimes"]["failed"] == [0, 2, 3]
        assert isinstance(info.value.__cause__, ValueError)

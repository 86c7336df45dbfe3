"""Every output kept: what a run writes of its calls' outputs, and how ``keep=False`` opts out.

Each test reads the outputs back from the store through the artifacts the task records name
(the same bytes ``fk.runs`` serves), on every kind of store.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import flowkit as fk
from flowkit.store import Artifact, Store


class Pair(NamedTuple):
    n: int
    text: str


@fk.task
def inc(x: int) -> int:
    return x + 1


@fk.task
def pair(x: int) -> Pair:
    return Pair(x, "x" * x)


@fk.task
def big(n: int) -> list[int]:
    return list(range(n))


@fk.task(keep=False)
def huge(n: int) -> list[int]:
    return list(range(n))


@fk.task(cache=True, keep=False)
def cached_unkept(n: int) -> int:
    return n * 10


@fk.task
def total(xs: list[int]) -> int:
    return sum(xs)


@fk.workflow
def flow(n: int) -> int:
    p = pair(inc(n))
    return total([total(big(p.n)), total(huge(n)), cached_unkept(n)])


def loaded(store: Store, art: dict[str, Any] | None) -> Any:
    assert art is not None
    return store.get(Artifact.from_dict(art))


def by_node(run: fk.Run) -> dict[str, fk.TaskRecord]:
    return {t.node: t for t in run.tasks}


def test_every_output_is_kept_with_its_lineage(any_store: Store) -> None:
    run = fk.run(flow, n=3, store=any_store)
    recs = by_node(run)
    assert loaded(any_store, recs["inc"].outputs["0"]) == 4  # type: ignore[index]
    assert loaded(any_store, recs["pair"].outputs["n"]) == 4  # type: ignore[index]
    assert loaded(any_store, recs["pair"].outputs["text"]) == "xxxx"  # type: ignore[index]
    assert loaded(any_store, recs["big"].outputs["0"]) == [0, 1, 2, 3]  # type: ignore[index]
    # lineage: the consumer names the token of what the producer stored
    produced = Artifact.from_dict(recs["inc"].outputs["0"])  # type: ignore[index]
    assert recs["pair"].inputs == {"x": produced.digest}
    # the workflow's own output, read back from the header in the store
    header, _ = any_store.read_run(run.id)
    assert loaded(any_store, header["output"]) == run.output == sum(range(4)) + sum(range(3)) + 30


def test_task_keep_false_opts_out_unless_cached(any_store: Store) -> None:
    run = fk.run(flow, n=3, store=any_store)
    recs = by_node(run)
    assert recs["huge"].outputs is None
    assert loaded(any_store, recs["cached_unkept"].outputs["0"]) == 30  # type: ignore[index]


def test_run_keep_false_keeps_only_cached_outputs_and_the_final_one(any_store: Store) -> None:
    run = fk.run(flow, n=3, store=any_store, keep=False)
    recs = by_node(run)
    assert {n for n, r in recs.items() if r.outputs is not None} == {"cached_unkept"}
    header, records = any_store.read_run(run.id)
    assert header["keep"] is False
    assert loaded(any_store, header["output"]) == run.output
    assert all("outputs" not in r for r in records if r["node"] != "cached_unkept")


def test_a_repeated_value_is_stored_once(local_store: Store) -> None:
    run1 = fk.run(flow, n=3, store=local_store)
    objects = sorted(p for p in (Path(local_store.root, "objects")).rglob("*") if p.is_file())
    run2 = fk.run(flow, n=3, store=local_store)
    again = sorted(p for p in (Path(local_store.root, "objects")).rglob("*") if p.is_file())
    assert objects == again  # same values, same objects: nothing new written
    assert by_node(run1)["big"].outputs == by_node(run2)["big"].outputs


class Unstorable:
    """Refuses every serializer: a lock inside."""

    def __init__(self) -> None:
        self.lock = threading.Lock()


@fk.task
def make_lock() -> Unstorable:
    return Unstorable()


@fk.task
def use_lock(u: Unstorable) -> int:
    return 1 if u.lock.acquire(blocking=False) else 0


@fk.workflow
def locks() -> int:
    return use_lock(make_lock())


def test_an_unstorable_output_of_a_call_that_is_only_kept_is_not_kept(
    local_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        run = fk.run(locks, store=local_store)
    assert run.output == 1 and run.status == "succeeded"
    assert by_node(run)["make_lock"].outputs == {"0": None}
    assert "make_lock" in caplog.text and "keep=False" in caplog.text


@fk.task(cache=True)
def cached_lock() -> Unstorable:
    return Unstorable()


@fk.workflow
def cached_locks() -> int:
    return use_lock(cached_lock())


def test_an_unstorable_output_of_a_cached_call_still_fails(local_store: Store) -> None:
    with pytest.raises(fk.SerializationError, match="cached_lock"):
        fk.run(cached_locks, store=local_store)


def test_keep_is_checked() -> None:
    with pytest.raises(fk.FlowkitError, match="keep="):
        fk.run(flow, n=1, keep="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keep"):
        fk.task(keep=False, kep=1)(lambda: 1)  # type: ignore[call-overload]

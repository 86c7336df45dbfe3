"""fk.cond and field access on the two-node cluster, beyond the contract (which
``test_ray_workflows.TestRayContract`` runs): a field of an ObjectRef read on the worker with
its own cache key, and a skipped branch holding a map."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from flowkit_ray import RayBackend
from raycluster import RayCluster

import flowkit as fk


@dataclass(frozen=True)
class Two:
    a: int
    b: int


@fk.task(cache=True)
def make_two(a: int, b: int) -> Two:
    return Two(a, b)


@fk.task(cache=True)
def tenfold(x: int) -> int:
    return 10 * x


@fk.task
def big(x: int) -> bool:
    return x > 5


@fk.task
def square(x: int) -> int:
    return x * x


@fk.task
def span(n: int) -> list[int]:
    return list(range(n))


@fk.task
def total(xs: list[int]) -> int:
    return sum(xs)


@fk.workflow
def two_fields(a: int, b: int) -> tuple[int, int]:
    t = make_two(a, b)
    return tenfold(t.a), tenfold(t.b)


@fk.workflow
def squares_if_big(n: int) -> Two:
    s = fk.cond(
        big(n),
        then=lambda n: total(square.map(x=span(n))),
        otherwise=lambda n: tenfold(n),
        n=n,
    )
    return make_two(s, n)


@pytest.fixture
def ray(ray_cluster: RayCluster) -> RayBackend:
    return RayBackend(address=ray_cluster.address)


def test_fields_of_one_output_get_their_own_keys(ray: RayBackend, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    assert fk.run(two_fields, a=1, b=2, backend=ray, store=store).output == (10, 20)
    again = fk.run(two_fields, a=1, b=3, backend=ray, store=store)
    assert again.output == (10, 30)
    assert {t.node: t.cached for t in again.tasks} == {
        "make_two": False,
        "tenfold": True,
        "tenfold_2": False,
    }
    fresh = fk.run(two_fields, a=1, b=3, backend=ray, store=store, cache=False)
    assert fresh.output == again.output


@pytest.mark.parametrize(("n", "expected"), [(7, 91), (3, 30)])
def test_a_skipped_branch_with_a_map(
    ray: RayBackend, tmp_path: Path, n: int, expected: int
) -> None:
    run = fk.run(squares_if_big, n=n, backend=ray, store=str(tmp_path / "s"), cache=False)
    assert run.output == Two(expected, n)
    status = {t.node.split("[")[0]: t.status for t in run.tasks}  # map items: square[i]
    taken = {"span", "square", "total"} if n > 5 else {"tenfold"}
    for node in ("span", "square", "total", "tenfold"):
        assert status[node] == ("succeeded" if node in taken else "skipped")


@fk.dynamic(cache=True)
def squares_of(n: int) -> list[int]:
    return [square(i) for i in range(n)]


@fk.workflow
def cached_dynamic(n: int) -> int:
    return total(squares_of(n))


def test_a_cached_dynamic_task(ray: RayBackend, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    first = fk.run(cached_dynamic, n=4, backend=ray, store=store)
    assert first.output == 14
    assert len(first.tasks) == 6  # the body, four squares, the total
    again = fk.run(cached_dynamic, n=4, backend=ray, store=store)
    assert again.output == 14
    assert [(t.node, t.cached) for t in again.tasks] == [("squares_of", True), ("total", False)]

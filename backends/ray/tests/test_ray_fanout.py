"""Tolerant and throttled fan-out on the two-node cluster, beyond the contract (which runs
``FanoutContract`` on Ray too): a limit across both nodes with a task that asks for resources,
and a tolerant map whose Nones travel between Ray tasks beside ``ObjectRef`` s."""

from __future__ import annotations

from pathlib import Path

from flowkit_ray import RayBackend
from raycluster import RayCluster

import flowkit as fk
from flowkit.testing.fanout import probe, seen_counts

# -- tasks of this module (not installed: they reach the workers by value) ----------------


@fk.task(pool="cluster-api", resources=fk.Resources(cpus=0.5))
def half_cpu_call(folder: str, x: int, n: int) -> int:
    probe(folder, n, 1)
    return x


@fk.task(pool="cluster-api")
def whole_cpu_call(folder: str, x: int, n: int) -> int:
    probe(folder, n, 1)
    return -x


@fk.workflow
def one_at_a_time(folder: str, xs: list[int], n: int) -> tuple[list[int], list[int]]:
    return (
        half_cpu_call.map(folder=folder, x=xs, n=n),
        whole_cpu_call.map(folder=folder, x=xs, n=n),
    )


@fk.task
def fragile(x: int) -> list[int]:
    if x % 2:
        raise ValueError(f"odd {x}")
    return [x] * x


@fk.task
def sizes(parts: list[list[int] | None]) -> list[int]:
    return [-1 if p is None else len(p) for p in parts]


@fk.workflow
def tolerant_chain(xs: list[int]) -> tuple[list[int], list[list[int] | None]]:
    parts = fragile.map(x=xs, min_success=0.5)
    return sizes(parts), parts


def test_a_pool_of_one_holds_across_the_cluster(ray_cluster: RayCluster, tmp_path: Path) -> None:
    # half-cpu calls would fit 4 at once on the 2 CPUs: the pool's limit holds them to one
    backend = RayBackend(ray_cluster.address, task_options={"scheduling_strategy": "SPREAD"})
    folder = tmp_path / "marks"
    folder.mkdir()
    run = fk.run(
        one_at_a_time,
        folder=str(folder),
        xs=[1, 2, 3],
        n=6,
        backend=backend,
        store=str(tmp_path / "s"),
        limits={"cluster-api": 1},
    )
    assert run.output == ([1, 2, 3], [-1, -2, -3])
    assert seen_counts(str(folder)) == [1] * 6


def test_a_tolerant_map_hands_its_nones_to_the_next_ray_task(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    run = fk.run(
        tolerant_chain,
        xs=[0, 1, 2, 3, 4],
        backend=RayBackend(ray_cluster.address),
        store=str(tmp_path / "s"),
    )
    assert run.output == ([0, -1, 2, -1, 4], [[], None, [2, 2], None, [4, 4, 4, 4]])
    assert run.tolerated == {"fragile": {"items": 5, "min_success": 0.5, "failed": [1, 3]}}

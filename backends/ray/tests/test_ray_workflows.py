"""Whole workflows on the two-node cluster: flowkit's backend contract, caching on the
workers, user code from a driver-only module, and the backend chosen by name."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flowkit_ray import RayBackend
from raycluster import RayCluster, ray_env

import flowkit as fk
from flowkit.testing import BackendContract


class TestRayContract(BackendContract):
    """Every semantic flowkit promises, on Ray (store: a folder every node can read,
    because both nodes are this machine)."""

    address: str = ""

    @pytest.fixture(autouse=True)
    def _on_the_cluster(self, ray_cluster: RayCluster) -> None:
        type(self).address = ray_cluster.address

    def make_backend(self) -> RayBackend:
        return RayBackend(address=self.address)


# -- tasks of this module (not installed: they reach the workers by value) ----------------


@fk.task
def node_of(i: int) -> str:
    import time

    import ray

    time.sleep(0.2)  # long enough that one node's single CPU cannot take them all
    return ray.get_runtime_context().get_node_id()


@fk.workflow
def spread(xs: list[int]) -> list[str]:
    return node_of.map(i=xs)


@fk.task(cache=True, cache_ignore=("folder",))
def expensive(folder: str, x: int) -> int:
    with open(os.path.join(folder, f"ran-{x}"), "a") as f:
        f.write("x")
    return x * 10


@fk.task(cache=True)
def summed(xs: list[int]) -> int:
    return sum(xs)


@fk.workflow
def cached_fan(folder: str, xs: list[int]) -> int:
    return summed(expensive.map(x=xs, folder=folder))


class Broken(Exception):
    pass


@fk.task
def explode(x: int) -> int:
    raise Broken(f"exploded at {x}")


@fk.workflow
def exploding(x: int) -> int:
    return explode(x)


@pytest.fixture
def backend(ray_cluster: RayCluster) -> RayBackend:
    return RayBackend(address=ray_cluster.address)


def test_a_map_spreads_over_both_nodes(ray_cluster: RayCluster, tmp_path: Path) -> None:
    backend = RayBackend(ray_cluster.address, task_options={"scheduling_strategy": "SPREAD"})
    run = fk.run(spread, xs=list(range(12)), backend=backend, store=str(tmp_path), cache=False)
    assert set(run.output) == {ray_cluster.head_node_id, ray_cluster.worker_node_id}
    assert run.backend == "ray"
    assert len(run.tasks) == 12


def test_cache_hits_are_served_by_the_workers(backend: RayBackend, tmp_path: Path) -> None:
    folder = tmp_path / "marks"
    folder.mkdir()
    store = str(tmp_path / "store")
    xs = list(range(6))
    first = fk.run(cached_fan, folder=str(folder), xs=xs, backend=backend, store=store)
    second = fk.run(cached_fan, folder=str(folder), xs=xs, backend=backend, store=store)
    assert first.output == second.output == 150
    assert not any(t.cached for t in first.tasks)
    assert all(t.cached for t in second.tasks)
    assert sorted(p.read_text() for p in folder.iterdir()) == ["x"] * 6  # each ran once


def test_a_failure_keeps_type_and_remote_traceback(backend: RayBackend, tmp_path: Path) -> None:
    with pytest.raises(fk.TaskFailedError) as info:
        fk.run(exploding, x=3, backend=backend, store=str(tmp_path / "store"))
    err = info.value
    assert isinstance(err.__cause__, Broken)
    assert err.remote_traceback is not None
    assert "Broken: exploded at 3" in err.remote_traceback
    assert "in explode" in err.remote_traceback
    assert "in run_call" in err.remote_traceback  # the worker's traceback, not the driver's


# -- user code from a module that only the driver has ----------------------------------------

PIPELINE = """
import flowkit as fk

OFFSET = 7


def helper(x):
    return x + OFFSET


@fk.task(cache=True)
def step(x: int) -> int:
    return helper(x) * 2


@fk.workflow
def pipeline(xs: list[int]) -> list[int]:
    return step.map(x=xs)
"""


@pytest.fixture
def driver_only_pipeline() -> Iterator[ModuleType]:
    folder = tempfile.mkdtemp(prefix="fkwf", dir="/tmp")
    name = f"fk_pipeline_{uuid.uuid4().hex[:8]}"
    Path(folder, f"{name}.py").write_text(textwrap.dedent(PIPELINE))
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(folder)
        sys.modules.pop(name, None)
        shutil.rmtree(folder, ignore_errors=True)


def test_user_workflow_from_a_driver_only_module(
    backend: RayBackend, driver_only_pipeline: ModuleType, tmp_path: Path
) -> None:
    store = str(tmp_path / "store")
    run = fk.run(driver_only_pipeline.pipeline, xs=[1, 2, 3], backend=backend, store=store)
    assert run.output == [16, 18, 20]
    again = fk.run(driver_only_pipeline.pipeline, xs=[1, 2, 3], backend=backend, store=store)
    assert all(t.cached for t in again.tasks)


# -- by name, from RAY_ADDRESS ------------------------------------------------------------------


def test_by_name_with_ray_address(ray_cluster: RayCluster, tmp_path: Path) -> None:
    script = tmp_path / "by_name.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, sys
            import ray
            import flowkit as fk

            @fk.task
            def double(x: int) -> int:
                return 2 * x

            @fk.task
            def sum_up(xs: list[int]) -> int:
                return sum(xs)

            @fk.workflow
            def wf(xs: list[int]) -> int:
                return sum_up(double.map(x=xs))

            run = fk.run(wf, xs=[1, 2, 3], backend="ray", store=sys.argv[1])
            print(json.dumps({"output": run.output, "backend": run.backend,
                              "after": ray.is_initialized()}))
            """
        )
    )
    env: dict[str, Any] = {**ray_env(), "RAY_ADDRESS": ray_cluster.address}
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"output": 12, "backend": "ray", "after": False}

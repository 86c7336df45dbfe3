"""Drivers in their own processes: Ray Client, a 1 GB intermediate, a local Ray we start.

Each test writes a small driver script and runs it with this interpreter. The functions
the script submits are defined in its ``__main__``, which Ray ships by value.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from raycluster import RayCluster, ray_env

PRELUDE = """
import json, os, sys
from flowkit.backend import Submission
from flowkit.resources import Resources
from flowkit_ray import RayBackend
"""


def run_driver(
    tmp_path: Path, body: str, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "driver.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ray_env(),
        cwd=tmp_path,
    )


def output(proc: subprocess.CompletedProcess[str], extra: str = "") -> Any:
    assert proc.returncode == 0, proc.stderr[-4000:] + extra
    return json.loads(proc.stdout.strip().splitlines()[-1])


CLIENT_DRIVER = """
        import ray

        def square(x):
            return {"node": ray.get_runtime_context().get_node_id()}, x * x

        def add(a, b):
            if b < 0:
                raise KeyError("negative")
            return None, a + b

        with RayBackend(address=sys.argv[1]) as b:
            (m1, h1), (m2, h2) = [b.submit(square, (x,), Submission("square")).result(120)
                                  for x in (3, 4)]
            _, h3 = b.submit(add, (h1, h2), Submission("add")).result(120)
            err = b.submit(add, (1, -1), Submission("add")).exception(120)
            b.check_store("/tmp/somewhere")  # loopback nodes: no warning
            result = {
                "value": b.fetch(h3),
                "client": ray.util.client.ray.is_connected(),
                "error": type(err).__name__,
                "traceback": "KeyError: 'negative'" in err.remote_traceback,
            }
        result["after"] = ray.is_initialized()
        print(json.dumps(result))
        """


def test_ray_client_from_another_process(ray_cluster: RayCluster, tmp_path: Path) -> None:
    proc = run_driver(tmp_path, CLIENT_DRIVER, ray_cluster.client)
    for _ in range(2):
        if "Initialization failure from server" not in proc.stderr:
            break
        # Ray's proxy could not start the per-client server (under load on this shared
        # machine: "Starting Ray client server failed", or a psutil ZombieProcess); another
        # try, with its logs kept for the failure message.
        proc = run_driver(tmp_path, CLIENT_DRIVER, ray_cluster.client)
    out = output(proc, ray_cluster.logs("ray_client_server*"))
    assert out == {
        "value": 25,
        "client": True,
        "error": "KeyError",
        "traceback": True,
        "after": False,  # the backend connected, so it disconnected
    }


def test_a_1gb_intermediate_never_enters_the_driver(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    proc = run_driver(
        tmp_path,
        """
        import threading
        import time
        import numpy as np

        def private():
            # anonymous memory of this process: what it allocated itself. Zero-copy views
            # of Ray's object store are shared memory and do not count, and neither do the
            # pages of the store other tests filled (which an RSS peak would include).
            with open("/proc/self/smaps_rollup") as f:
                line = next(l for l in f if l.startswith("Anonymous:"))
            return int(line.split()[1]) * 1024

        class Peak:  # the largest private() seen while it runs (a transient copy too)
            def __enter__(self):
                self.value, self.done = private(), threading.Event()
                self.thread = threading.Thread(target=self.sample)
                self.thread.start()
                return self
            def sample(self):
                while not self.done.wait(0.005):
                    self.value = max(self.value, private())
            def __exit__(self, *exc):
                self.done.set()
                self.thread.join()
                self.value = max(self.value, private())

        def make(n):
            return "made", np.ones(n, dtype=np.uint8)

        def total(a):
            return "summed", int(a.sum())

        big = Resources(cpus=1, memory="2Gi")  # only the head node offers that much
        with RayBackend(address=sys.argv[1]) as b:
            b.submit(total, (np.zeros(4, np.uint8),), Submission("warm")).result(120)
            before = private()
            with Peak() as during:
                _, arr = b.submit(make, (2**30,), Submission("make", big)).result(300)
                _, s = b.submit(total, (arr,), Submission("total", big)).result(300)
                value = b.fetch(s)
            # the control: bring the 1 GB into the driver's own memory (a copy: a view of
            # the object store is shared, not the driver's)
            with Peak() as control:
                fetched = np.array(b.fetch(arr))
                touched = int(fetched.sum())
        print(json.dumps({"value": value, "touched": touched, "before": before,
                          "growth": during.value - before,
                          "control_growth": control.value - before}))
        """,
        ray_cluster.address,
    )
    out = output(proc)
    assert out["value"] == out["touched"] == 2**30
    assert out["growth"] < 200 * 2**20, out
    assert out["control_growth"] > 900 * 2**20, out  # the measurement would have seen it


@pytest.fixture
def short_tmp() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="rl", dir="/tmp")  # AF_UNIX socket paths are short
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_starts_a_local_ray_and_stops_only_that(tmp_path: Path, short_tmp: str) -> None:
    proc = run_driver(
        tmp_path,
        """
        import ray

        def pid():
            return "meta", os.getpid()

        opts = {"object_store_memory": 128 * 2**20, "log_to_driver": False,
                "_temp_dir": sys.argv[1]}
        with RayBackend(num_cpus=1, init_options=opts) as b:
            inside = ray.is_initialized()
            nodes = len(ray.nodes())
            worker_pid = b.fetch(b.submit(pid, (), Submission("pid")).result(120)[1])
            capacity = b.capacity
        print(json.dumps({"inside": inside, "nodes": nodes, "after": ray.is_initialized(),
                          "remote": worker_pid != os.getpid(), "capacity": capacity}))
        """,
        short_tmp,
    )
    out = output(proc)
    assert out == {"inside": True, "nodes": 1, "after": False, "remote": True, "capacity": 64}

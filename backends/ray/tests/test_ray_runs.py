"""Issue 11 on Ray: every output kept and resume by run id, each run a new driver process
connected to the two-node loopback cluster, on a local and an S3 (moto) store.

The map items ask for the worker node's (fake) GPU, so their outputs are written to the store
by a worker on the second node, and read back by the next driver.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from raycluster import RayCluster

# the moto server fixtures of tests/conftest.py, as the trust cases on Ray load them
from test_ray_trust import s3_endpoint, s3_stores  # noqa: F401

FLOW = """
import json, os, sys
import flowkit as fk

FLAGS = {flags!r}  # workers of an existing cluster do not inherit the driver's environment

@fk.task
def load(n: int) -> list[int]:
    return list(range(n))

@fk.task(resources=fk.Resources(gpus=1))
def square(x: int) -> int:
    print(f"square {{x}} on the worker node", flush=True)
    if os.path.exists(os.path.join(FLAGS, f"fail-{{x}}")):
        raise RuntimeError(f"square({{x}}) fails")
    with open(os.path.join(FLAGS, f"ran-{{x}}-{{os.getpid()}}"), "w"):
        pass
    return x * x

@fk.task
def total(xs: list[int]) -> int:
    return sum(xs)

@fk.workflow
def pipeline(n: int) -> int:
    return total(square.map(x=load(n)))

store = fk.Store(sys.argv[1], **json.loads(os.environ.get("FK_STORE_OPTIONS", "{{}}")))
resume = sys.argv[2] if len(sys.argv) > 2 else None
try:
    run = fk.run(pipeline, n=4, store=store, backend="ray", resume=resume)
    print("RUN", run.id, run.output)
except fk.TaskFailedError as e:
    print("RUN", e.run_id, "failed")
"""


def driver(
    tmp_path: Path, cluster: RayCluster, url: str, env: dict[str, str], *args: str
) -> tuple[str, str]:
    script = tmp_path / "flow.py"
    script.write_text(textwrap.dedent(FLOW).format(flags=env["FLAGS"]))
    done = subprocess.run(
        [sys.executable, str(script), url, *args],
        env={**env, "RAY_ADDRESS": cluster.address},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RUN ")]
    assert lines, done.stdout + done.stderr
    _, run_id, outcome = lines[-1].split()
    return run_id, outcome


@pytest.mark.parametrize("store_kind", ["local", "s3"])
def test_outputs_kept_on_workers_and_a_failed_run_resumed(
    request: pytest.FixtureRequest, tmp_path: Path, ray_cluster: RayCluster, store_kind: str
) -> None:
    from flowkit.store import Artifact, Store

    flags = tmp_path / "flags"
    flags.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWKIT_")}
    env["FLAGS"] = str(flags)
    options: dict[str, Any] = {}
    if store_kind == "local":
        url = str(tmp_path / "store")
    else:
        s3 = request.getfixturevalue("s3_stores")
        url, options = f"s3://{s3.bucket()}/prefix", s3.options
        env["FK_STORE_OPTIONS"] = json.dumps(options)
    (flags / "fail-2").touch()
    first, outcome = driver(tmp_path, ray_cluster, url, env)
    assert outcome == "failed"
    store = Store(url, **options)
    _, records = store.read_run(first)
    by_node = {r["node"]: r for r in records}
    succeeded = {i for i in range(4) if by_node[f"square[{i}]"]["status"] == "succeeded"}
    assert 2 not in succeeded
    for i in succeeded:  # kept by the worker that ran them
        assert store.get(Artifact.from_dict(by_node[f"square[{i}]"]["outputs"]["0"])) == i * i
    failed = by_node["square[2]"]
    assert "RuntimeError: square(2) fails" in failed["tries"][-1]["traceback"]
    (flags / "fail-2").unlink()
    ran_before = {p.name for p in flags.iterdir()}
    second, outcome = driver(tmp_path, ray_cluster, url, env, first[:22])
    assert outcome == str(sum(i * i for i in range(4)))
    ran_now = {p.name.split("-")[1] for p in flags.iterdir() if p.name not in ran_before}
    assert ran_now == {str(i) for i in range(4)} - {str(i) for i in succeeded}
    header, records = store.read_run(second)
    assert header["resumed_from"] == first
    reused = {r["node"] for r in records if r.get("reused_from") == first}
    assert reused == {"load"} | {f"square[{i}]" for i in succeeded}
    assert store.get(Artifact.from_dict(header["output"])) == 14

"""Issue 11 on Ray: a task's prints and logging are captured on the worker that ran it, per
attempt, and travel back with the result -- or with the exception, for a failed attempt.

The driver is a fresh process connected to the two-node loopback cluster; the tasks ask for
the worker node's (fake) GPU, so they run in a worker process on the second node. The live
``[node] line`` copies go to that worker's stderr, which Ray keeps in the session's
``worker-*.err`` files (and forwards to a driver that asks for it).
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

from raycluster import RayCluster, ray_env

FLOW = """
import json, logging, os, sys
import flowkit as fk

log = logging.getLogger("chatty")


@fk.task(resources=fk.Resources(gpus=1))
def chatty(token: str) -> str:
    import ray

    print(f"{token} stdout")
    print(f"{token} stderr", file=sys.stderr)
    log.warning("%s logged", token)
    return ray.get_runtime_context().get_node_id()


@fk.task(resources=fk.Resources(gpus=1), retries=1, retry_delay=0)
def flaky(token: str, marker: str) -> int:
    first = not os.path.exists(marker)
    print(f"{token} try {1 if first else 2}")
    if first:
        open(marker, "w").close()
        raise ValueError(f"{token} first try fails")
    return 2


@fk.task(resources=fk.Resources(gpus=1))
def broken(token: str) -> int:
    print(f"{token} about to break")
    raise RuntimeError(f"{token} always")


@fk.workflow
def talk(token: str) -> str:
    return chatty(token)


@fk.workflow
def retried(token: str, marker: str) -> int:
    return flaky(token, marker)


@fk.workflow
def fails(token: str) -> int:
    return broken(token)


def tries(run):
    return {t.node: [{"logs": a.logs, "traceback": a.traceback, "cpu": a.cpu,
                      "peak_rss": a.peak_rss} for a in t.tries] for t in run.tasks}


store, token, marker = sys.argv[1:4]
a = fk.run(talk, token=token, store=store, backend="ray")
b = fk.run(retried, token=token, marker=marker, store=store, backend="ray")
try:
    fk.run(fails, token=token, store=store, backend="ray")
except fk.TaskFailedError as e:
    failed_id = e.run_id
_, records = fk.Store(store).read_run(failed_id)
failed = [r if isinstance(r, dict) else r.to_dict() for r in records]
print(json.dumps({"node": a.output, "talk": tries(a), "retried": tries(b), "failed": failed}))
"""


def run_driver(tmp_path: Path, cluster: RayCluster, token: str) -> dict[str, Any]:
    script = tmp_path / "flow.py"
    script.write_text(textwrap.dedent(FLOW))
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store"), token, str(tmp_path / "flag")],
        env={**ray_env(), "RAY_ADDRESS": cluster.address},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr + cluster.logs("worker-*.err")
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def worker_stderr(cluster: RayCluster) -> str:
    paths = glob.glob(os.path.join(cluster.temp_dir, "session_*", "logs", "worker-*.err"))
    texts = []
    for path in paths:
        with open(path, errors="replace") as f:
            texts.append(f.read())
    return "\n".join(texts)


def test_logs_are_captured_on_the_second_node_per_attempt(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    token = f"tok{uuid.uuid4().hex[:8]}"
    result = run_driver(tmp_path, ray_cluster, token)
    assert result["node"] == ray_cluster.worker_node_id

    [talk] = result["talk"]["chatty"]
    assert talk["logs"] == f"{token} stdout\n{token} stderr\nWARNING chatty: {token} logged\n"
    assert talk["traceback"] is None
    assert talk["cpu"] is not None and talk["cpu"] >= 0
    assert talk["peak_rss"] is not None and talk["peak_rss"] > 0

    # the failed attempt's logs came back with the exception, through Ray's RayTaskError
    first, second = result["retried"]["flaky"]
    assert first["logs"] == f"{token} try 1\n"
    assert f"ValueError: {token} first try fails" in first["traceback"]
    assert second["logs"] == f"{token} try 2\n" and second["traceback"] is None

    [record] = [r for r in result["failed"] if r["node"] == "broken"]
    [only] = record["tries"]
    assert only.get("logs") == f"{token} about to break\n"
    assert f"RuntimeError: {token} always" in only.get("traceback", "")

    # live: the worker wrote each line, prefixed, to its own stderr
    shown = worker_stderr(ray_cluster)
    for line in (
        f"[chatty] {token} stdout",
        f"[chatty] {token} stderr",
        f"[chatty] WARNING chatty: {token} logged",
        f"[flaky] {token} try 1",
        f"[broken] {token} about to break",
    ):
        assert line in shown, line
    assert f"\n{token} stdout" not in shown  # never unprefixed: the proxy took it

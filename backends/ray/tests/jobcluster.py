"""A two-node Ray cluster started with ``ray start``, as a user would, with the job server.

The head listens on 127.0.0.2 (GCS, dashboard and job server on free ports), the worker on
127.0.0.3: Ray rewrites 127.0.0.1 to the machine's outside address, not these (see the
infra notes). ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` is removed from the nodes' environment
(with it a second node refuses to join). Both ``ray start --block`` processes are ours: they
are stopped by PID (SIGTERM, then SIGKILL of their own process group), never ``ray stop``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

HEAD_IP = "127.0.0.2"
WORKER_IP = "127.0.0.3"
_STOP_SECONDS = 20.0
# generous: on 2 loaded cores a head has taken 50 s to start
_START_SECONDS = 300.0
_STARTED = "Ray runtime started"
_ATTEMPTS = 3
_START_NICENESS = -10 if os.geteuid() == 0 else 0  # only root may raise a priority
_COMMON = ("--num-cpus=1", "--object-store-memory=100000000", "--disable-usage-stats")


@dataclass(frozen=True)
class JobCluster:
    address: str  # the job server: http://127.0.0.2:PORT
    gcs: str  # 127.0.0.2:PORT
    temp_dir: str
    env: dict[str, str]  # for processes that talk to it

    def logs(self, tail: int = 3000) -> str:
        """The ends of the nodes' own logs and the job logs (for failure messages)."""
        import glob

        out = []
        for pattern in ("head.log", "worker.log", "session_latest/logs/job-driver-*.log"):
            for path in sorted(glob.glob(os.path.join(self.temp_dir, pattern))):
                with open(path, errors="replace") as f:
                    out.append(f"--- {os.path.basename(path)}\n{f.read()[-tail:]}")
        return "\n".join(out)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def node_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    env["RAY_AUTH_MODE"] = "disabled"
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
    # a loaded machine starts a node's agents slowly: Ray's defaults gave up here (the raylet
    # aborted waiting for the dashboard agent's ports)
    env["RAY_agent_register_timeout_ms"] = "600000"
    env["RAY_worker_register_timeout_seconds"] = "300"
    # the job's entrypoint runs `python`: this venv's, as on a cluster built from one image
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


@contextlib.contextmanager
def job_cluster() -> Iterator[JobCluster]:
    tmp = tempfile.mkdtemp(prefix="rj", dir="/tmp")  # short: AF_UNIX paths <= 107 bytes
    env = node_env()
    started: list[subprocess.Popen[bytes]] = []
    try:
        gcs_port, dash_port = free_port(HEAD_IP), free_port(HEAD_IP)
        head = [
            "--head", f"--node-ip-address={HEAD_IP}", f"--port={gcs_port}", f"--temp-dir={tmp}",
            "--include-dashboard=true", f"--dashboard-host={HEAD_IP}",
            f"--dashboard-port={dash_port}", f"--ray-client-server-port={free_port()}",
        ]  # fmt: skip
        _start_node(head, "head", tmp, env, started)
        worker = [f"--address={HEAD_IP}:{gcs_port}", f"--node-ip-address={WORKER_IP}"]
        _start_node(worker, "worker", tmp, env, started)
        address = f"http://{HEAD_IP}:{dash_port}"
        _wait_for(lambda: _alive_nodes(address) == 2, _START_SECONDS, "two alive nodes", tmp)
        yield JobCluster(address=address, gcs=f"{HEAD_IP}:{gcs_port}", temp_dir=tmp, env=env)
    finally:
        for proc in reversed(started):
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def _start_node(
    args: list[str], name: str, tmp: str, env: dict[str, str], started: list[Any]
) -> None:
    """``ray start --block ARGS``, started again (up to :data:`_ATTEMPTS` times) when it
    gives up: on 2 loaded cores Ray's own deadline (30 s for a raylet to register, after its
    agents have started) can pass."""
    ray = os.path.join(os.path.dirname(sys.executable), "ray")
    for attempt in range(1, _ATTEMPTS + 1):
        ports = [
            f"--dashboard-agent-listen-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
        ]
        log = os.path.join(tmp, f"{name}.log")
        # started with a raised priority, lowered again once up: on 2 cores shared with many
        # busy processes, Ray's 30 s registration deadline passed 3 times in a row at nice 0
        command = ["nice", "-n", str(_START_NICENESS), ray, "start", "--block"]
        proc = _start([*command, *args, *ports, *_COMMON], log, env)
        started.append(proc)
        try:
            _wait_for(_started(proc, log), _START_SECONDS, f"{name} started", tmp)
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PGRP, proc.pid, 0)  # its own process group only
            return
        except NodeFailed:
            _stop(proc)  # and what it left running, in its process group
            started.remove(proc)
            if attempt == _ATTEMPTS:
                raise
            os.replace(log, f"{log}.{attempt}")


def _start(args: list[str], log: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the ``ray start --block`` we started (it stops its node), SIGKILL its group
    if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pass
    # what is left of its session (a node whose `ray start` gave up, a stuck one): its own
    # process group, so only processes it started
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(_STOP_SECONDS)


def _started(proc: subprocess.Popen[bytes], log: str) -> Callable[[], bool]:
    """Whether the node says it started; raises if its ``ray start`` gave up."""

    def ready() -> bool:
        try:
            with open(log, errors="replace") as f:
                if _STARTED in f.read():
                    return True
        except OSError:
            pass
        if proc.poll() is not None:
            raise NodeFailed(f"`ray start` exited {proc.returncode} before its node started")
        return False

    return ready


class NodeFailed(RuntimeError):
    pass


def _alive_nodes(address: str) -> int:
    import json

    try:
        with urllib.request.urlopen(f"{address}/nodes?view=summary", timeout=5) as r:
            doc = json.load(r)
    except (OSError, ValueError):
        return 0
    summary = doc.get("data", {}).get("summary", [])
    return sum(1 for n in summary if n.get("raylet", {}).get("state") == "ALIVE")


def _wait_for(ready: Callable[[], bool], seconds: float, what: str, tmp: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except NodeFailed as exc:
            raise NodeFailed(f"Ray cluster: {exc}\n{_node_logs(tmp)}") from None
        time.sleep(0.5)
    raise RuntimeError(f"Ray cluster: no {what} after {seconds:g} s\n{_node_logs(tmp)}")


def _node_logs(tmp: str) -> str:
    logs = ""
    for name in ("head.log", "worker.log"):
        with contextlib.suppress(OSError), open(os.path.join(tmp, name), errors="replace") as f:
            logs += f"--- {name}\n{f.read()[-3000:]}\n"
    return logs

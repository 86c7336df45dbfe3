"""An address where no Ray cluster answers fails fast with a flowkit error (issue 9).

Without the check, ``ray.init`` retries a dead GCS address for about 13 minutes, printing
"Failed to connect to GCS" warnings. Each case runs a driver in its own process under a hard
timeout (only a guard against hanging: nothing here measures time) and asserts that it
failed with :class:`flowkit_ray.RayConnectionError` naming the address.

These tests start no cluster, except the last one, which checks that a real head still
passes the check (GCS address and Ray Client).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flowkit_ray import RayBackend, RayBackendError, RayConnectionError
from flowkit_ray.reach import Target, failure_message, parse
from raycluster import _free_port, ray_env

HARD_TIMEOUT = 180  # seconds: a guard against a driver stuck in Ray's retries, not a measure

DRIVER = """
import json, os, sys
import flowkit as fk
from flowkit_ray import RayBackend, RayConnectionError

@fk.task
def one() -> int:
    return 1

@fk.workflow
def wf() -> int:
    return one()

address = sys.argv[1] or None
try:
    if sys.argv[2] == "run":
        fk.run(wf, backend="ray", store=sys.argv[3])
    else:
        with RayBackend(address=address) as backend:
            pass
    print(json.dumps({"connected": True}))
except Exception as e:
    chain = []
    while e is not None:
        chain.append(type(e).__name__)
        if isinstance(e, RayConnectionError):
            break
        e = e.__cause__
    print(json.dumps({"error": type(e).__name__ if e else None, "chain": chain,
                      "ours": isinstance(e, RayConnectionError),
                      "flowkit": isinstance(e, fk.FlowkitError), "message": str(e)}))
"""


def drive(
    tmp_path: Path, address: str | None, *, env: dict[str, str] | None = None, run: bool = False
) -> dict[str, Any]:
    """Run the driver and return its JSON line."""
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER))
    store = tmp_path / "store"
    proc = subprocess.run(
        [sys.executable, str(script), address or "", "run" if run else "open", str(store)],
        capture_output=True,
        text=True,
        timeout=HARD_TIMEOUT,
        env={**ray_env(), **(env or {})},
        cwd=tmp_path,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def assert_our_error(result: dict[str, Any], address: str) -> None:
    assert result.get("ours") and result.get("flowkit"), result
    assert repr(address) in result["message"], result
    assert "ray start --head" in result["message"], result


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener completes TCP handshakes (the kernel's backlog) but never
    says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


# -- nothing listening -------------------------------------------------------------------------


def test_free_port_as_gcs_address(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_free_port()}"
    assert_our_error(drive(tmp_path, address), address)


def test_free_port_as_ray_client_address(tmp_path: Path) -> None:
    address = f"ray://127.0.0.1:{_free_port()}"
    assert_our_error(drive(tmp_path, address), address)


def test_unknown_host(tmp_path: Path) -> None:
    address = "no-such-ray-head.invalid:6379"  # .invalid never resolves (RFC 2606)
    result = drive(tmp_path, address)
    assert_our_error(result, address)
    assert "does not resolve" in result["message"]


# -- a listener that never answers -------------------------------------------------------------


def test_silent_listener_as_gcs_address(tmp_path: Path, silent_port: int) -> None:
    address = f"127.0.0.1:{silent_port}"
    assert_our_error(drive(tmp_path, address), address)


def test_silent_listener_as_ray_client_address(tmp_path: Path, silent_port: int) -> None:
    address = f"ray://127.0.0.1:{silent_port}"
    assert_our_error(drive(tmp_path, address), address)


def test_grpc_server_that_is_not_a_gcs(tmp_path: Path) -> None:
    grpc = pytest.importorskip("grpc")
    from concurrent.futures import ThreadPoolExecutor

    server = grpc.server(ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        address = f"127.0.0.1:{port}"
        result = drive(tmp_path, address)
    finally:
        server.stop(None)
    assert_our_error(result, address)


# -- RAY_ADDRESS -------------------------------------------------------------------------------


def test_ray_address_variable(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_free_port()}"
    result = drive(tmp_path, None, env={"RAY_ADDRESS": address})
    assert_our_error(result, address)
    assert "RAY_ADDRESS" in result["message"]


def test_fk_run_with_ray_address(tmp_path: Path, silent_port: int) -> None:
    address = f"ray://127.0.0.1:{silent_port}"
    result = drive(tmp_path, None, env={"RAY_ADDRESS": address}, run=True)
    assert_our_error(result, address)


# -- in process: parsing and settings ----------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "target"),
    [
        ("127.0.0.1:6379", Target("gcs", "127.0.0.1", 6379)),
        ("head.example:6380", Target("gcs", "head.example", 6380)),
        ("[::1]:6379", Target("gcs", "::1", 6379)),
        ("ray://head:10002", Target("client", "head", 10002)),
        ("ray://head", Target("client", "head", 10001)),
        ("ray://[::1]:10001/", Target("client", "::1", 10001)),
        ("auto", None),
        ("local", None),
        ("anyscale://cluster", None),
        ("head", None),  # no port: left to Ray
        ("head:notaport", None),
        ("head:0", None),
        ("::1", None),
    ],
)
def test_parse(address: str, target: Target | None) -> None:
    assert parse(address) == target


def test_message_names_the_fix() -> None:
    text = failure_message("127.0.0.1:1", "RAY_ADDRESS", "connection refused")
    assert "'127.0.0.1:1'" in text and "RAY_ADDRESS" in text and "unset it" in text
    assert "ray start --head" in text and "ray://host:10001" in text


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_connect_timeout_must_be_positive(bad: float) -> None:
    with pytest.raises(RayBackendError, match="connect_timeout"):
        RayBackend(connect_timeout=bad)


def test_error_classes() -> None:
    import flowkit as fk

    assert issubclass(RayConnectionError, RayBackendError)
    assert issubclass(RayConnectionError, fk.FlowkitError)


# -- a real head still passes ------------------------------------------------------------------

REAL_HEAD = """
import json, os, sys, shutil, tempfile
from ray.cluster_utils import Cluster
from flowkit_ray import RayBackend

tmp = tempfile.mkdtemp(prefix="ra", dir="/tmp")  # short: AF_UNIX path limit
client_port = int(sys.argv[1])
cluster = Cluster(initialize_head=True, shutdown_at_exit=True, head_node_args={
    "num_cpus": 1, "object_store_memory": 128 * 2**20, "temp_dir": tmp,
    "include_dashboard": False, "ray_client_server_port": client_port})
out = {}
try:
    for name, address in (("gcs", cluster.address), ("client", f"ray://127.0.0.1:{client_port}")):
        with RayBackend(address=address, init_options={"log_to_driver": False}) as backend:
            out[name] = backend.parallelism
finally:
    cluster.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
print(json.dumps(out))
"""


def test_a_real_head_passes_the_check(tmp_path: Path) -> None:
    script = tmp_path / "head.py"
    script.write_text(textwrap.dedent(REAL_HEAD))
    env = ray_env()
    env.pop("RAY_ADDRESS", None)
    for _ in range(3):
        proc = subprocess.run(
            [sys.executable, str(script), str(_free_port())],
            capture_output=True,
            text=True,
            timeout=HARD_TIMEOUT,
            env=env,
            cwd=tmp_path,
        )
        # Ray's proxy sometimes cannot start the per-client server under load on this
        # shared machine ("Starting Ray client server failed", or a psutil ZombieProcess
        # while it looks at the server it spawned): Ray Client's flake, not the check's;
        # another try, on a new head.
        if "Initialization failure from server" not in proc.stderr:
            break
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    assert json.loads(lines[-1]) == {"gcs": 1, "client": 1}

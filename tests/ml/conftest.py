"""Fixtures of the flowkit.ml tests: a sqlite MLflow registry per test and a real MLflow server.

* ``tracking_uri`` — ``sqlite:///<tmp>/mlflow.db``: a real registry, fresh for every test.
* ``mlflow_server`` — ``mlflow server`` on 127.0.0.1 and a free port (sqlite backend, local
  artifact destination, one worker, job execution and telemetry off). It is started once, as
  soon as collection shows a test needs it (so it boots while earlier tests run), in its own
  process group, and stopped at the end of the session by that PID (SIGTERM, then SIGKILL
  after 20 s).
* ``isolated`` (autouse) — no ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI`` /
  ``FLOWKIT_STORE`` leaks in from the environment, and the working directory is a temp folder,
  so the embedded default registry (``./.flowkit/mlflow.db``) never lands in the repository.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

SERVER_START_TIMEOUT = 120.0


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "FLOWKIT_STORE", "FLOWKIT_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture(scope="session")
def blank_registry_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow sqlite database with every migration applied (made once: ~10 s)."""
    from flowkit.ml import uris

    uris.import_mlflow()
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("blank-registry") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking_uri(tmp_path: Path, blank_registry_db: Path) -> str:
    """A fresh sqlite MLflow tracking store and registry (a copy of the blank database)."""
    folder = tmp_path / "registry"
    folder.mkdir()
    shutil.copyfile(blank_registry_db, folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


class _Server:
    """An ``mlflow server`` process on 127.0.0.1 that we started (stopped by its PID)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fk-mlflow-server-"))
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.log_path = self.root / "server.log"
        env = {
            **os.environ,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        cmd = [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1",
            "--port", self.url.rsplit(":", 1)[1],
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination", str(self.root / "artifacts"),
            "--workers", "1",
        ]  # fmt: skip
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                cmd, stdout=log_file, stderr=subprocess.STDOUT, cwd=self.root, env=env,
                start_new_session=True,
            )  # fmt: skip

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not _healthy(self.url):
            if self.proc.poll() is not None:
                log = self.log_path.read_text()
                pytest.fail(f"mlflow server exited with {self.proc.returncode}:\n{log}")
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not healthy after {SERVER_START_TIMEOUT} s")
            time.sleep(0.25)

    def stop(self) -> None:
        _stop(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)


_server: _Server | None = None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the server as soon as we know a test needs it: it boots (~6 s, more on a busy
    machine) while the tests before it run."""
    global _server
    if _server is None and any("mlflow_server" in getattr(i, "fixturenames", ()) for i in items):
        _server = _Server()


def pytest_sessionfinish() -> None:
    global _server
    if _server is not None:
        _server.stop()
        _server = None


@pytest.fixture(scope="session")
def mlflow_server() -> str:
    """URL of a real ``mlflow server`` on loopback (one per session)."""
    global _server
    if _server is None:
        _server = _Server()
    _server.wait_healthy()
    return _server.url


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and its uvicorn worker: SIGTERM to the process group we created."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # our own session: the server and its children only
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

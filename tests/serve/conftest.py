"""Fixtures of the ``flowkit serve`` tests: a real MLflow registry and real servers on loopback.

* ``serve_registry`` (session) -- a sqlite MLflow registry holding model ``clf``, registered
  through ``ml.register``: versions 1, 2 and 3 are scikit-learn ``LinearRegression`` models
  fitted on columns ``a`` and ``b`` that predict their own version number (so an answer
  shows which version gave it), version 4 cannot be loaded (unpickling it raises). Each test
  points its *own* aliases at these versions, so tests share the registry without meeting.
* ``serve`` -- starts ``create_app(config)`` under uvicorn in a thread, on a free port of
  127.0.0.1 (the socket is bound first, so there is no race for the port), and stops it at
  the end of the test; returns a :class:`Server` with a keep-alive HTTP client.

Markers (CONTRIBUTING.md), set here for the tests of this folder: a test that uses the
registry is ``slow`` (MLflow's import and models), and ``services`` too when it starts a
server; ``SLOW_TESTS`` are slow without either.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = "clf"
BROKEN_VERSION = 4


# Tests of this folder that take a second or more without the registry (fresh interpreters,
# Ray's import).
SLOW_TESTS = frozenset(
    {
        "test_serve_cli.py::test_backend_ray_hands_the_config_to_ray_serve",
        "test_serve_cli.py::test_the_help_lists_serve_and_loads_no_serving_library",
    }
)


# Tests that start a server process themselves.
SERVICE_TESTS = frozenset(
    {"test_serve_cli.py::test_a_server_process_follows_its_alias_and_logs_predictions"}
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not str(item.path).startswith(HERE + os.sep):
            continue
        fixtures = set(getattr(item, "fixturenames", ()))
        name = f"{item.path.name}::{item.name.split('[', 1)[0]}"
        if "serve" in fixtures or name in SERVICE_TESTS:
            item.add_marker(pytest.mark.services)
        if "serve_registry" in fixtures or name in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


class _Unloadable:
    """A model whose unpickling raises: the registry holds it, nobody can load it."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_refuse_to_load, ("this model version is broken on purpose",))

    def predict(self, frame: Any) -> Any:  # pragma: no cover - never loaded
        raise AssertionError("unreachable")


def _refuse_to_load(message: str) -> Any:
    raise RuntimeError(message)


@dataclass(frozen=True)
class Registry:
    uri: str
    model: str = MODEL

    def point(self, alias: str, version: int) -> None:
        """Point ``alias`` of the model at ``version`` (ml.promote)."""
        from flowkit import ml

        ml.promote(self.model, version, alias=alias, tracking_uri=self.uri)


@pytest.fixture(scope="session")
def serve_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from flowkit import ml

    root = tmp_path_factory.mktemp("serve-registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    features = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    for version in (1, 2, 3):
        model = LinearRegression().fit(features, [float(version)] * 4)
        assert ml.register(model, MODEL, uri).version == version
    assert ml.register(_Unloadable(), MODEL, uri).version == BROKEN_VERSION
    yield Registry(uri)
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def version(self) -> int:
        return int(self.headers["x-model-version"])


@dataclass
class Server:
    """A running app: its URL, its port, and a client (one keep-alive connection per thread)."""

    app: Any
    port: int
    _local: threading.local = field(default_factory=threading.local)
    _conns: list[http.client.HTTPConnection] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self._conns.append(conn)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
        except (ConnectionError, http.client.HTTPException):
            conn.close()
            self._local.conn = None
            raise
        if resp.getheader("connection", "").lower() == "close":
            conn.close()
            self._local.conn = None
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)

    def score(self, doc: Any, content_type: str = "application/json") -> Reply:
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return self.request("POST", "/invocations", body, {"Content-Type": content_type})

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the ``/metrics`` samples ``name`` whose labels include ``labels``."""
        from prometheus_client.parser import text_string_to_metric_families

        reply = self.get("/metrics")
        assert reply.status == 200, reply.body
        return sum(
            sample.value
            for family in text_string_to_metric_families(reply.body.decode())
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def close(self) -> None:
        for conn in self._conns:
            conn.close()

    @staticmethod
    def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
        return wait_for(check, timeout, what)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``check()`` held (fails after ``timeout``)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """``serve(config)``: the app for ``config`` running on a free loopback port."""
    import uvicorn

    from flowkit.serve.app import create_app

    running: list[tuple[uvicorn.Server, threading.Thread, socket.socket]] = []
    clients: list[Server] = []

    def start(config: Any) -> Server:
        app = create_app(config)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        running.append((server, thread, sock))
        wait_for(lambda: server.started or not thread.is_alive(), 120, "the server starting")
        assert server.started, "the server did not start (see the log above)"
        clients.append(Server(app, sock.getsockname()[1]))
        return clients[-1]

    yield start
    for client in clients:
        client.close()
    for server, thread, sock in running:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
        assert not thread.is_alive(), "the server did not stop"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No tracking URI or store leaks in from the environment; the cwd is a temp folder."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "FLOWKIT_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.chdir(tmp_path)

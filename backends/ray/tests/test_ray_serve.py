"""``flowkit.serve.ray_serve`` on the two-node cluster: a registered model deployed on Ray
Serve, scored over HTTP on loopback, following promote and rollback, logging predictions, then
deleted.

The registry is a real sqlite MLflow registry in a /tmp folder both nodes read (they are this
machine). Each replica reserves 1 CPU and each node has 1, so two replicas run one per node.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from raycluster import RayCluster, _free_port, ray_env
from sklearn.linear_model import LogisticRegression

from flowkit import ml
from flowkit.serve import ray_serve
from flowkit.serve.models import ServeConfig
from flowkit.serve.predlog import PredictionLog

X = np.random.default_rng(0).normal(size=(40, 3))
Y = (X[:, 0] > 0).astype(int)
COLUMNS = ["a", "b", "c"]
BODY = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": X[:4].tolist()}}).encode()
FOLLOW = 1.0
SWITCH_TIMEOUT = 30.0  # each replica polls on its own; generous on 2 shared cores
CLI_TIMEOUT = 180.0


@pytest.fixture
def folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fk-rayserve-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def registry(folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A sqlite registry: ``clf`` v1 (production) predicts y, v2 predicts 1 - y."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.chdir(folder)  # MLflow must leave nothing in the repository
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    ml.register(LogisticRegression().fit(X, Y), "clf", tracking_uri=uri, alias="production")
    ml.register(LogisticRegression().fit(X, 1 - Y), "clf", tracking_uri=uri)
    return uri


def _post(url: str, body: bytes = BODY) -> tuple[int, Message, Any]:
    """Status, headers (names in any case: Ray's proxy lowers them) and JSON body."""
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.headers, json.load(resp)
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, json.loads(err.read())


def _expected(version: int) -> list[int]:
    y = (X[:4, 0] > 0).astype(int)
    return (y if version == 1 else 1 - y).tolist()


class Load:
    """Requests in a loop from a client thread; every answer's version, every failure."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.versions: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, headers, body = _post(self.url)
            except OSError as exc:
                self.failures.append(repr(exc))
                continue
            version = int(headers.get("X-Model-Version", 0))
            if status != 200 or body != {"predictions": _expected(version)}:
                self.failures.append(f"{status} v{version} {body}")
            self.versions.append(version)

    def wait_for(self, version: int) -> float:
        """Seconds until 20 answers in a row come from ``version``."""
        started = time.monotonic()
        while time.monotonic() - started < SWITCH_TIMEOUT:
            tail = self.versions[-20:]
            if len(tail) == 20 and set(tail) == {version}:
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"still answering {sorted(set(self.versions[-20:]))}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def test_two_replicas_follow_promote_and_rollback_and_log(
    ray_cluster: RayCluster, registry: str, folder: Path
) -> None:
    serve = ray_serve.import_serve()
    store = str(folder / "store")
    plog = PredictionLog(store, "clf", flush_seconds=0.5)  # each replica opens its own
    config = ServeConfig("clf", tracking_uri=registry, follow_seconds=FOLLOW, prediction_log=plog)
    app = ray_serve.deploy(config, replicas=2, address=ray_cluster.address, port=_free_port())
    try:
        status = serve.status().applications[app.name]
        assert status.deployments["model"].replica_states == {"RUNNING": 2}

        code, headers, body = _post(app.url)
        assert (code, headers["X-Model-Version"], body) == (200, "1", {"predictions": _expected(1)})
        with urllib.request.urlopen(f"{app.url}/version", timeout=30) as resp:
            assert json.load(resp)["version"] == 1

        # A bad body is the app's 4xx through the Ray proxy; the replicas keep serving.
        code, _, body = _post(app.url, b"{not json")
        assert code == 400 and "message" in body
        code, _, body = _post(
            app.url, json.dumps({"dataframe_split": {"columns": ["x"], "data": [[1]]}}).encode()
        )
        assert code == 400 and "message" in body

        load = Load(app.url)
        try:
            ml.promote("clf", 2, tracking_uri=registry)
            switched = load.wait_for(2)
            ml.rollback("clf", tracking_uri=registry)
            back = load.wait_for(1)
        finally:
            load.stop()
        assert load.failures == []
        assert switched < SWITCH_TIMEOUT and back < SWITCH_TIMEOUT
        assert len(load.versions) > 40
    finally:
        app.delete()  # each replica's app shuts down: its prediction log is flushed
        plog.close()
    assert app.name not in serve.status().applications

    # Every answered request (1 + the load's), 4 rows each, with the version that answered.
    table = ml.prediction_log("clf", store=store)
    assert table.num_rows == 4 * (1 + len(load.versions))
    logged = table.column("version").to_pylist()
    assert {v: logged.count(v) for v in (1, 2)} == {
        v: 4 * ((v == 1) + load.versions.count(v)) for v in (1, 2)
    }


def test_the_cli_serves_on_ray_until_sigterm(ray_cluster: RayCluster, registry: str) -> None:
    """``flowkit serve --backend ray``: deployed, answering, deleted on SIGTERM."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "flowkit", "serve", "clf", "--tracking-uri", registry, "--pin"]
    cmd += ["--backend", "ray", "--ray-address", ray_cluster.address, "--port", str(port)]
    proc = subprocess.Popen(
        cmd, env=ray_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + CLI_TIMEOUT
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "flowkit serve --backend ray never answered"
            try:  # the proxy answers (404, 503) before the application is deployed
                with urllib.request.urlopen(f"{url}/ping", timeout=10) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        code, headers, body = _post(url)
        assert (code, headers["X-Model-Version"], body) == (200, "1", {"predictions": _expected(1)})
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=CLI_TIMEOUT)[0]
        assert proc.returncode == 0, out
        assert "deleted the Ray Serve application flowkit-clf" in out
        # The proxy went with the last application.
        with pytest.raises(urllib.error.URLError, match="Connection refused"):
            _post(url)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert ray_serve.import_serve().status().applications == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"replicas": 0}, "replicas must be a whole number"),
        ({"replicas": 2, "autoscaling": {"max_replicas": 2}}, "not both"),
        ({"autoscaling": {"max_replica": 2}}, "unknown autoscaling option"),
    ],
)
def test_bad_scaling_deploys_nothing(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ray_serve.RayServeError, match=message):
        ray_serve.deploy(ServeConfig("clf", tracking_uri="sqlite:////nowhere.db"), **kwargs)

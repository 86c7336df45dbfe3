"""``flowkit serve`` on the command line: usage errors, lazy imports, and a real server process
that follows its alias and logs its predictions to the store."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from flowkit.cli import main

SERVE_LIBRARIES = ("starlette", "uvicorn", "prometheus_client", "flowkit.serve", "mlflow")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["@production"], "MODEL or MODEL@ALIAS"),
        (["clf@"], "MODEL or MODEL@ALIAS"),
        (["clf", "--canary", "other@b:0.1"], "an alias of the served model 'clf'"),
        (["clf", "--canary", "clf@b:1.5"], "between 0 and 1"),
        (["clf", "--canary", "clf@b"], "expected MODEL@ALIAS:FRACTION"),
        (["clf", "--canary", "clf@b:x"], "between 0 and 1"),
        (["clf", "--shadow", "clf"], "expected MODEL@ALIAS"),
        (["clf", "--follow", "1", "--pin"], "not allowed with argument"),
        (["clf", "--follow", "0"], "expected a positive number"),
        (["clf", "--max-body-mb", "-1"], "expected a positive number"),
        (["clf", "--port", "99999"], "port number"),
        (["clf", "--backend", "k8s"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2_naming_the_problem(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_the_help_lists_serve_and_loads_no_serving_library() -> None:
    script = (
        "import sys, json\n"
        "import flowkit, flowkit.cli\n"
        "flowkit.cli.main(['--help'])\n"
        f"print(json.dumps(sorted(m for m in {SERVE_LIBRARIES!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "serve MODEL[@ALIAS]" in proc.stdout
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _call(url: str, body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, _lower(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, _lower(exc.headers), json.loads(exc.read())


def test_a_server_process_follows_its_alias_and_logs_predictions(
    serve_registry: Any, tmp_path: Path
) -> None:
    serve_registry.point("cli_prod", 1)
    port = _free_port()
    store = str(tmp_path / "store")
    cmd = [
        sys.executable, "-m", "flowkit", "serve", "clf@cli_prod",
        "--tracking-uri", serve_registry.uri, "--port", str(port), "--follow", "0.5",
        "--log-predictions", "--store", store,
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    base = f"http://127.0.0.1:{port}"
    body = json.dumps({"instances": [[1.0, 2.0]]}).encode()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, _, health = _call(base + "/health")
                break
            except (ConnectionError, urllib.error.URLError):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert status == 200 and health["version"] == 1
        status, headers, answer = _call(base + "/invocations", body)
        assert status == 200 and headers["x-model-version"] == "1"
        assert [round(p) for p in answer["predictions"]] == [1]
        serve_registry.point("cli_prod", 3)
        deadline = time.monotonic() + 10
        while _call(base + "/version")[2]["version"] != 3:
            assert time.monotonic() < deadline, "the server did not follow the alias"
            time.sleep(0.1)
        status, headers, answer = _call(base + "/invocations", body)
        assert headers["x-model-version"] == "3" and round(answer["predictions"][0]) == 3
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert "flowkit serve: clf@cli_prod (alias followed: every 0.5 s)" in err
    assert f"http://127.0.0.1:{port}/invocations" in err
    assert "Traceback" not in err
    from flowkit import ml

    logged = ml.prediction_log("clf", store=store).to_pylist()  # flushed on shutdown
    assert sorted(row["version"] for row in logged) == [1, 3]


def test_backend_ray_hands_the_config_to_ray_serve(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flowkit.serve import ray_serve

    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(ray_serve, "run", lambda config, **kw: calls.append((config, kw)))
    args = [
        "serve", "clf@live", "--backend", "ray", "--replicas", "2", "--port", "8123",
        "--canary", "clf@next:0.25", "--shadow", "clf@shadow", "--pin", "--max-body-mb", "2",
        "--tracking-uri", "sqlite:///nowhere.db", "--ray-address", "127.0.0.1:6379",
    ]  # fmt: skip
    assert main(args) == 0
    [(config, kw)] = calls
    assert (config.model, config.alias, config.follow_seconds) == ("clf", "live", None)
    assert config.canary == ("next", 0.25) and config.shadow == "shadow"
    assert config.max_body_bytes == 2 * 2**20 and config.tracking_uri == "sqlite:///nowhere.db"
    assert config.prediction_log is None
    assert kw["replicas"] == 2 and kw["port"] == 8123 and kw["address"] == "127.0.0.1:6379"

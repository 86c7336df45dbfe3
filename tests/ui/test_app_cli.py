"""``flowkit ui``: its help, its options, the missing-extra message, the warning when it binds
beyond loopback, a real server on a free loopback port answering over HTTP (then stopped by
PID), and ``import flowkit`` staying free of the web libraries.
"""

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

import flowkit as fk
from flowkit.cli import commands_ui, main

WEB = ("starlette", "uvicorn", "jinja2", "markdown_it", "flowkit.ui")


@fk.task
def double(x: int) -> int:
    return 2 * x


@fk.workflow
def doubled(x: int) -> int:
    return double(x)


def test_help_names_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ui", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--store", "--host", "--port", "--tracking-uri", "flowkit[ui]"):
        assert option in out
    assert main(["--help"]) == 0
    usage = capsys.readouterr().out
    assert "ui [--store URL]" in usage and "report RUN_ID" in usage


def test_report_is_registered(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--help"]) == 0
    assert "usage: flowkit report" in capsys.readouterr().out


@pytest.mark.parametrize("port", ["0", "70000", "http"])
def test_a_bad_port_is_a_usage_error(capsys: pytest.CaptureFixture[str], port: str) -> None:
    assert main(["ui", "--port", port]) == 2
    assert "expected a port number" in capsys.readouterr().err


def test_a_missing_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = commands_ui.importlib.import_module

    def without_uvicorn(name: str, *args: Any) -> Any:
        if name == "uvicorn":
            raise ImportError("No module named 'uvicorn'")
        return real(name, *args)

    monkeypatch.setattr(commands_ui.importlib, "import_module", without_uvicorn)
    assert main(["ui"]) == 2
    err = capsys.readouterr().err
    assert 'pip install "flowkit[ui]"' in err and "missing: uvicorn" in err


def fake_uvicorn(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    import uvicorn

    seen: dict[str, Any] = {}

    def run(app: Any, **kwargs: Any) -> None:
        seen.update(kwargs, app=app)

    monkeypatch.setattr(uvicorn, "run", run)
    return seen


def test_loopback_by_default_and_only_loopback_host_names_answered(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from starlette.testclient import TestClient

    seen = fake_uvicorn(monkeypatch)
    assert main(["ui", "--store", str(tmp_path)]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8765
    err = capsys.readouterr().err
    assert "http://127.0.0.1:8765/" in err and "no authentication" not in err
    assert f"warning: store {tmp_path} has no flowkit-store.json" in err
    with TestClient(seen["app"], base_url="http://127.0.0.1:8765") as c:
        assert c.get("/").status_code == 503  # served (the folder is not a store yet)
    with TestClient(seen["app"], base_url="http://rebound.example:8765") as c:
        assert c.get("/").status_code == 400  # a DNS name rebound to 127.0.0.1 is refused


def test_binding_beyond_loopback_warns_that_there_is_no_authentication(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    seen = fake_uvicorn(monkeypatch)
    assert main(["ui", "--store", str(tmp_path), "--host", "0.0.0.0", "--port", "9000"]) == 0
    assert seen["host"] == "0.0.0.0" and seen["port"] == 9000
    err = capsys.readouterr().err
    assert "warning: flowkit ui has no authentication" in err and "http://0.0.0.0:9000/" in err


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get(url: str, host: str | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def test_a_real_server_answers_over_http(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    run = fk.run(doubled, x=21, store=store)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowkit", "ui", "--store", store, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                status, headers, body = get(base + "/")
                break
            except (ConnectionError, urllib.error.URLError):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        assert status == 200 and f'data-run-id="{run.id}"' in body
        assert "default-src 'self'" in headers["content-security-policy"]
        status, _, body = get(f"{base}/api/runs/{run.id}/status")
        assert status == 200 and json.loads(body)["status"] == "succeeded"
        assert get(base + "/", host=f"evil.example:{port}")[0] == 400
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert f"at http://127.0.0.1:{port}/" in err
    assert "Traceback" not in err


def test_import_flowkit_and_the_cli_load_no_web_library(tmp_path: Path) -> None:
    script = (
        "import sys, json\n"
        "import flowkit, flowkit.cli\n"
        "flowkit.cli.main(['--help'])\n"
        f"print(json.dumps(sorted(m for m in {WEB!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []

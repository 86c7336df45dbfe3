"""A secret goes everywhere a run goes, and is found nowhere: the attacker's view of issue 13.

A workflow takes a ``fk.Secret``; its tasks print it, log it, put it in a cached call's key
and in the error of a task that fails. The run is notified to a real webhook receiver and its
pages are rendered by the UI's app. Then every file of the store, the captured stdout, stderr
and log records, the webhook bodies and the UI pages are searched for the secret: as text, as
JSON- and HTML-escaped text, in hex and in base64. Hypothesis picks the secrets (after a marker
no other value holds, so a match can only be a leak).

Masking works on what flowkit sees as one text; the live ``[node] line`` view on stderr masks
line by line, so secrets here hold no line break (a multi-line secret printed live shows as
pieces; docs/secrets.md says so).
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import logging
import os
import uuid
from pathlib import Path

import pytest
from core_fixtures.secrets import MARKER, SETTINGS
from core_fixtures.webhook import receiver
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import flowkit as fk
from flowkit import notify
from flowkit.cli import main
from flowkit.secret import Secret

secrets = st.text(
    st.characters(blacklist_categories=("Cs", "Zl", "Zp", "Cc")), min_size=1, max_size=16
).map(lambda s: MARKER + s)

FLOW = """
import logging
import sys

import flowkit as fk

log = logging.getLogger("leaky.flow")


@fk.task(cache=True)
def fetch(token: fk.Secret, n: int) -> int:
    print("fetching with", token.reveal())
    log.warning("the token is %s", token.reveal())
    return n + len(token.reveal())


@fk.task
def explode(token: fk.Secret, m: int) -> int:
    print(token.reveal(), file=sys.stderr)
    raise PermissionError(f"the server refused {token.reveal()!r} after {m}")


@fk.workflow
def good(token: fk.Secret, n: int = 1) -> int:
    return fetch(token, n)


@fk.workflow
def bad(token: fk.Secret, n: int = 1) -> int:
    return explode(token, fetch(token, n))
"""


def forms(value: str) -> list[bytes]:
    """Every way the secret's bytes could be written down."""
    data = value.encode("utf-8")
    texts = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        html.escape(value),
        html.escape(value, quote=False),
        repr(value)[1:-1],
    }
    return [t.encode("utf-8") for t in texts] + [
        data.hex().encode(),
        data.hex().upper().encode(),
        base64.b64encode(data),
        base64.urlsafe_b64encode(data),
        base64.b64encode(data).rstrip(b"="),
    ]


def leaks(data: bytes, value: str) -> list[bytes]:
    return [f for f in forms(value) if f in data]


def store_leaks(root: Path, value: str) -> list[str]:
    """The store's files (gzip documents also decompressed) holding any form of ``value``."""
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            data = Path(path).read_bytes()
            if path.endswith(".gz"):
                data += gzip.decompress(data.partition(b"\n")[2])
            if leaks(data, value):
                found.append(path)
    return found


def _ui_pages(store: Path, run_ids: list[str]) -> bytes:
    from starlette.testclient import TestClient

    from flowkit.ui.app import create_app

    pages = [b""]
    with TestClient(create_app(str(store))) as client:
        paths = ["/", "/workflows/good", "/workflows/bad"]
        for run_id in run_ids:
            paths += [f"/runs/{run_id}", f"/api/runs/{run_id}/status"]
            run = fk.runs.get(run_id, store=str(store))
            paths += [f"/runs/{run_id}/tasks/{t.node}" for t in run.tasks]
        for path in paths:
            resp = client.get(path)
            assert resp.status_code == 200, path
            pages.append(resp.content)
    return b"\n".join(pages)


def _flowkit_logs(caplog: pytest.LogCaptureFixture) -> str:
    """What flowkit logged. A task's own records on an in-process backend also reach the
    process's root handlers as the task made them (flowkit keeps a masked copy with the
    attempt): that is the user's logging, not flowkit's."""
    return "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if r.name.startswith("flowkit")
    )


@pytest.fixture
def flow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("leaky")
    (d / "leaky_flow.py").write_text(FLOW)
    return d


@settings(
    SETTINGS,
    max_examples=6,
    phases=[Phase.explicit, Phase.generate],  # a leak is shown as found: no shrinking
    # each example uses its own store and env var; the fixtures only collect output
    suppress_health_check=[*SETTINGS.suppress_health_check, HealthCheck.function_scoped_fixture],
)
@given(value=secrets, backend=st.sampled_from(["local", "threads"]))
def test_a_secret_is_in_no_file_log_payload_or_page(
    flow_dir: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    value: str,
    backend: str,
) -> None:
    store = flow_dir / f"store-{uuid.uuid4().hex}"
    env = f"FK_LEAK_{uuid.uuid4().hex}"
    os.environ[env] = value
    caplog.clear()
    capsys.readouterr()
    try:
        with receiver() as r, caplog.at_level(logging.DEBUG):
            argv = ["run", f"{flow_dir}/leaky_flow.py:good", "--store", str(store)]
            argv += ["--backend", backend, "--secret", f"token=env:{env}", "--n", "2"]
            hooks = ["--notify", r.url, "--notify-on", "started,succeeded,failed"]
            assert main([*argv, *hooks]) == 0
            assert main([*argv, *hooks]) == 0  # a cache hit, keyed by the secret's HMAC
            bad = [a.replace(":good", ":bad") for a in argv]
            assert main([*bad, *hooks, "--traceback"]) == 1
            bodies = r.wait_for(6)
            raw = b"\n".join(r.raw)
    finally:
        del os.environ[env]
    out = capsys.readouterr()
    assert len(bodies) == 6 and "***" in json.dumps(bodies)  # the error was sent, masked
    assert "fetching with ***" in out.err  # the live view, masked
    run_ids = [run.id for run in fk.runs.list(store=str(store))]
    assert len(run_ids) == 3
    assert store_leaks(store, value) == []
    assert leaks(raw, value) == []
    assert leaks((out.out + out.err + _flowkit_logs(caplog)).encode("utf-8"), value) == []
    assert leaks(_ui_pages(store, run_ids), value) == []


@pytest.mark.parametrize("backend", ["local", "threads"])
def test_the_python_api_leaks_nothing_either(
    flow_dir: Path, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    import importlib
    import sys

    sys.path.insert(0, str(flow_dir))
    try:
        flow = importlib.import_module("leaky_flow")
    finally:
        sys.path.remove(str(flow_dir))
    value = f"{MARKER}{uuid.uuid4().hex}"
    store = flow_dir / f"store-{backend}"
    with receiver() as r, caplog.at_level(logging.DEBUG):
        hook = notify.webhook(r.url, on=notify.EVENTS, backoff=0.01)
        first = fk.run(flow.good, token=Secret(value), backend=backend, store=str(store))
        with pytest.raises(fk.TaskFailedError) as info:
            fk.run(
                flow.bad, token=Secret(value), backend=backend, store=str(store), callbacks=[hook]
            )
        bodies = r.wait_for(2)
        raw = b"\n".join(r.raw)
    assert first.tasks[0].key is not None  # cached: its key holds the HMAC, not the text
    # the exception raised to the caller is the caller's; what flowkit wrote of it is masked
    assert "explode" in str(info.value)
    assert {b["flowkit"]["event"] for b in bodies} == {"started", "failed"}
    assert store_leaks(store, value) == []
    assert leaks(raw, value) == [] and leaks(_flowkit_logs(caplog).encode(), value) == []
    header = json.loads((store / "runs" / first.id / "run.json").read_bytes().partition(b"\n")[2])
    assert header["inputs"]["token"] == {"$secret": True}
    (failed,) = fk.runs.list(store=str(store), status="failed")
    assert "the server refused '***'" in (failed.error or "")

"""``flowkit submit`` without a cluster: the job's entrypoint and shipped folder, the job
server's checks against real local servers that are not one, refusals before anything is
sent, and following a run whose cluster is out of reach. (On a real two-node cluster:
backends/ray/tests/test_ray_jobs.py.)"""

from __future__ import annotations

import http.server
import logging
import os
import shlex
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import flowkit as fk
from flowkit.automation import rayfollow, rayjobs, raysubmit, shipdir
from flowkit.automation.launch import Launch, option
from flowkit.cli import main
from flowkit.cli.commands_submit import input_texts
from flowkit.records import new_run_id
from flowkit.store import Store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the entrypoint -------------------------------------------------------------------------


def test_the_entrypoint_is_flowkit_run_with_the_launch_quoted() -> None:
    launch = Launch(
        target="wf.py",
        run_id="r1",
        store="/s",
        params={"items": "0,1", "store": "x y", "no_cache": "'$(boom)'; rm -rf /"},
        notify=("http://hook",),
    )
    text = raysubmit.entrypoint(launch, "wf.py:spread", "/s t", "ray")
    assert shlex.split(text) == [
        "python", "-m", "flowkit", "run", "wf.py:spread", "--store", "/s t", "--run-id", "r1",
        "--backend", "ray", "--notify", "http://hook", "--items=0,1", "--input-store=x y",
        "--input-no-cache='$(boom)'; rm -rf /",
    ]  # fmt: skip


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.text(), max_size=4))
def test_any_input_text_reaches_the_job_unchanged(params: dict[str, str]) -> None:
    params = {k: v.replace("\x00", "") for k, v in params.items()}  # argv holds no NUL
    launch = Launch(target="wf.py", run_id="r", store="/s", params=params)
    args = shlex.split(raysubmit.entrypoint(launch, "wf.py", "/s", "ray"))[11:]
    assert args == [f"{option(k)}={v}" for k, v in params.items()]


# -- the shipped folder ---------------------------------------------------------------------


def _tree(root: Path) -> None:
    for rel in (
        "wf.py",
        "helpers/__init__.py",
        "data/small.csv",
        ".venv/lib/x.py",
        "sub/.git/HEAD",
        "sub/__pycache__/a.pyc",
        "store/runs/r/run.json",
        ".flowkit/flowkit-store.json",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    for rel in ("data/big.parquet", "d[1]/big *!.bin"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        with open(root / rel, "wb") as f:
            f.truncate(shipdir.LARGE_BYTES + 1)  # sparse


def test_the_shipment_leaves_out_stores_envs_and_large_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ray._private.runtime_env.packaging import _get_excludes  # what Ray itself applies

    _tree(tmp_path)
    with caplog.at_level(logging.WARNING, logger="flowkit"):
        plan = shipdir.plan(str(tmp_path), keep_out=(str(tmp_path / "store"),))
    excluded = _get_excludes(tmp_path, list(plan.excludes))
    shipped = set()
    for folder, dirs, files in os.walk(tmp_path):
        dirs[:] = [d for d in dirs if not excluded(Path(folder) / d)]
        shipped |= {
            os.path.relpath(os.path.join(folder, f), tmp_path)
            for f in files
            if not excluded(Path(folder) / f)
        }
    assert shipped == {"wf.py", "helpers/__init__.py", "data/small.csv"}
    assert set(plan.left_large) == {"data/big.parquet", "d[1]/big *!.bin"}
    assert "data/big.parquet" in caplog.text and "not shipped" in caplog.text
    assert plan.runtime_env()["working_dir"] == str(tmp_path)


def test_a_store_outside_the_folder_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "wf.py").write_text("x")
    plan = shipdir.plan(str(tmp_path / "p"), keep_out=(str(tmp_path / "elsewhere"),))
    assert plan.excludes == shipdir.EXCLUDED and plan.left_large == ()


# -- the job server's address ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_", "url"),
    [
        ("http://head:8265", "http://head:8265"),
        ("head:8265/", "http://head:8265"),
        (" https://h.example:443 ", "https://h.example:443"),
        ("http://[::1]:8265", "http://[::1]:8265"),
    ],
)
def test_dashboard_urls(given_: str, url: str) -> None:
    assert rayjobs.dashboard_url(given_) == url


@pytest.mark.parametrize("bad", ["ray://head:10001", "s3://b/k", "http://", "http://h:port"])
def test_addresses_that_are_not_a_job_server_are_refused(bad: str) -> None:
    with pytest.raises(rayjobs.RayJobError, match="8265"):
        rayjobs.dashboard_url(bad)


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b""
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (404, b"", "HTTP 404"),
        (200, b"<html>", "no JSON"),
        (200, b'{"version": "1"}', "without a ray_version"),
        (200, b"[1]", "without a ray_version"),
    ],
)
def test_a_server_that_is_not_rays_is_named(
    web: tuple[str, type[_Handler]], status: int, body: bytes, says: str
) -> None:
    url, handler = web
    handler.status, handler.body = status, body
    with pytest.raises(rayjobs.RayJobError, match=says) as e:
        rayjobs.check(url)
    assert url in str(e.value)


def test_a_job_server_answering_its_version_passes(web: tuple[str, type[_Handler]]) -> None:
    url, handler = web
    handler.body = b'{"ray_version": "2.60.0", "version": "4"}'
    assert rayjobs.check(url + "/") == url


def test_a_silent_listener_and_a_closed_port_fail_in_time() -> None:
    with socket.socket() as listener:  # accepts connections (the backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        silent = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(rayjobs.RayJobError, match="no Ray job server answers"):
            rayjobs.check(silent, timeout=0.5)
    closed = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(rayjobs.RayJobError, match=closed.replace(".", r"\.")):
        rayjobs.check(closed)


def test_a_server_speaking_another_protocol_is_named() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"

        def garbage() -> None:
            try:
                conn, _ = listener.accept()
                with conn:
                    conn.recv(1024)
                    conn.sendall(b"\x00\x00\x12\x04\x00\x00\x00\x00\x00 not http\r\n\r\n")
            except OSError:  # the client gave up first: nothing to answer
                pass

        thread = threading.Thread(target=garbage, daemon=True)
        thread.start()
        with pytest.raises(rayjobs.RayJobError, match=r"not|no Ray job server"):
            rayjobs.check(url, timeout=5)
        thread.join()


# -- refused before anything is sent --------------------------------------------------------


def _launch(tmp_path: Path, **kw: object) -> Launch:
    (tmp_path / "wf.py").write_text("x = 1\n")
    fields: dict[str, object] = {
        "target": str(tmp_path / "wf.py"),
        "run_id": new_run_id(),
        "store": str(tmp_path / "store"),
        "address": f"http://127.0.0.1:{_free_port()}",
        **kw,
    }
    return Launch(**fields)  # type: ignore[arg-type]


def test_a_memory_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(fk.FlowkitError, match="cluster reaches"):
        raysubmit.submit(_launch(tmp_path, store="memory://x"))


def test_a_file_outside_the_shipped_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    with pytest.raises(fk.FlowkitError, match="not a file inside the folder"):
        raysubmit.submit(_launch(tmp_path), working_dir=str(tmp_path / "other"))
    with pytest.raises(fk.FlowkitError, match="not a file inside"):
        raysubmit.submit(_launch(tmp_path, target=str(tmp_path / "missing.py")))
    with pytest.raises(fk.FlowkitError, match="local folder"):
        raysubmit.submit(_launch(tmp_path), runtime_env={"working_dir": "s3://b/pkg.zip"})


def test_a_run_id_in_use_is_refused_and_kept(tmp_path: Path) -> None:
    launch = _launch(tmp_path)
    store = Store(launch.store)
    store.check()
    store.write_run(launch.run_id, {"id": launch.run_id, "status": "submitted"})
    with pytest.raises(fk.FlowkitError, match="already in the store"):
        raysubmit.submit(launch)
    assert store.read_run(launch.run_id)[0]["status"] == "submitted"


def test_no_job_server_writes_no_run(tmp_path: Path) -> None:
    launch = _launch(tmp_path)
    with pytest.raises(rayjobs.RayJobError, match=launch.address or "?"):
        raysubmit.submit(launch)
    assert Store(launch.store).list_runs() == []


def test_a_local_store_for_a_remote_cluster_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the relative store is made here, not in the checkout
    with caplog.at_level(logging.WARNING, logger="flowkit"):
        store = raysubmit._store_for_cluster("rel-store", "http://10.1.2.3:8265")
    assert os.path.isabs(store.url)
    assert "local path" in caplog.text and "10.1.2.3" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="flowkit"):
        raysubmit._store_for_cluster(str(tmp_path / "s"), "http://127.0.0.2:8265")
    assert caplog.text == ""


# -- following a run ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tags",
    [None, "x", {"ray_job": 1, "ray_address": "http://h:1"}, {"ray_job": "j"}, {"ray_job": ""}],
)
def test_planted_job_tags_name_no_job(tags: object) -> None:
    assert rayfollow.job_of({"status": "submitted", "tags": tags}) is None
    assert rayfollow.job_note({"status": "submitted", "tags": tags}) is None


def test_the_note_says_when_ray_cannot_be_asked() -> None:
    address = f"http://127.0.0.1:{_free_port()}"
    header = {"status": "submitted", "tags": {"ray_job": "flowkit-r", "ray_address": address}}
    note = rayfollow.job_note(header)
    assert note is not None and "cannot ask Ray" in note
    assert f"ray job logs flowkit-r --address {address}" in note
    assert rayfollow.job_note({**header, "status": "running"}) is None


def test_waiting_on_an_ended_run_returns_it(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    store.check()
    store.write_run("r", {"id": "r", "status": "succeeded", "tags": {}})
    assert rayfollow.wait(store, "r")["status"] == "succeeded"


def test_a_cluster_out_of_reach_leaves_the_store_to_decide(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    store.check()
    address = f"http://127.0.0.1:{_free_port()}"
    tags = {"ray_job": "flowkit-r", "ray_address": address}
    store.write_run("r", {"id": "r", "status": "submitted", "tags": tags})
    with pytest.raises(TimeoutError, match="run r"):
        rayfollow.wait(store, "r", poll=0.05, timeout=0.5)
    assert store.read_run("r")[0]["status"] == "submitted"  # not guessed


# -- the command line -----------------------------------------------------------------------

WF = """
import flowkit as fk

@fk.task
def add(a: int, b: int) -> int:
    return a + b

@fk.workflow
def plus(store: int, n: int = 1, long_name: str = "x") -> int:
    return add(store, n)
"""


def test_input_texts_are_the_texts_given(tmp_path: Path) -> None:
    (tmp_path / "wf.py").write_text(WF)
    from flowkit.cli.loading import load_workflow

    wf = load_workflow(str(tmp_path / "wf.py"))
    argv = ["wf.py", "--address", "h:1", "--input-store", "07", "--n", "1", "--n", "2"]
    assert input_texts(wf, [*argv, "--long-name", "a b"]) == {
        "store": "07",
        "n": "2",
        "long_name": "a b",
    }


def test_cli_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "wf.py").write_text(WF)
    wf = str(tmp_path / "wf.py")
    store = str(tmp_path / "s")
    closed = f"http://127.0.0.1:{_free_port()}"
    cases = [
        ([wf, "--input-store", "1"], "--address is required"),
        ([wf, "--address", closed, "--store", store], "--input-store"),  # required input
        ([wf, "--address", closed, "--store", store, "--input-store", "x"], "--input-store"),
        ([wf, "--address", closed, "--store", store, "--input-store", "1"], closed),
        ([wf, "--address", "ray://h:1", "--store", store, "--input-store", "1"], "8265"),
        ([wf, "--address", closed, "--tag", "novalue", "--input-store", "1"], "--tag"),
    ]
    for argv, says in cases:
        assert main(["submit", *argv]) == 2, argv
        out, err = capsys.readouterr()
        assert out == "" and says in err, (argv, err)
        assert "Traceback" not in err
    assert not os.path.exists(os.path.join(store, "runs")) or os.listdir(store + "/runs") == []
    assert main(["submit", wf, "--help"]) == 0
    assert "--address" in capsys.readouterr().out


def test_an_input_named_like_a_submit_option_is_a_clear_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "wf.py").write_text(WF.replace("long_name", "address"))
    assert main(["submit", str(tmp_path / "wf.py"), "--address", "h:1"]) == 2
    err = capsys.readouterr().err
    assert "--address" in err and "rename the input" in err and "Traceback" not in err

"""``flowkit submit``: runs submitted as Ray Jobs to a two-node cluster started with
``ray start`` (head with the job server on 127.0.0.2, worker on 127.0.0.3; jobcluster.py).

One cluster for the module. Each test submits from a fresh ``python -m flowkit`` process, as
a user's laptop would, and follows the run through the store and ``flowkit runs``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jobcluster import HEAD_IP, WORKER_IP, JobCluster, free_port, job_cluster

from flowkit.automation import rayfollow, raysubmit
from flowkit.automation.launch import Launch, start
from flowkit.records import new_run_id
from flowkit.store import Store

WAIT_SECONDS = 600  # a job on 2 loaded cores: its driver and workers start from cold

HELPERS = """
import os
import time

import ray


def where(i: int, barrier: str) -> str:
    # Two calls meet here: with one CPU per node, both can be running only on two nodes.
    if barrier == "-":
        return "-"
    os.makedirs(barrier, exist_ok=True)
    open(os.path.join(barrier, str(i)), "w").close()
    deadline = time.time() + 300
    while len(os.listdir(barrier)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    shipped = sorted(n for n in os.listdir(".") if not n.startswith("__"))
    return f"{ray.util.get_node_ip_address()} {os.getpid()} {','.join(shipped)}"
"""

WORKFLOW = """
import flowkit as fk
from helpers import where


@fk.task
def probe(i: int, barrier: str) -> str:
    return where(i, barrier)


@fk.task
def boom(fail: bool) -> int:
    if fail:
        raise ValueError("planted failure")
    return 1


@fk.workflow
def spread(items: list[int], barrier: str, fail: bool = False) -> list[str]:
    boom(fail)
    return probe.map(i=items, barrier=barrier)
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[JobCluster]:
    with job_cluster() as c:
        yield c


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A workflow file, the module it imports, a large data file and a store, in one folder."""
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "wf.py").write_text(WORKFLOW)
    (folder / "helpers.py").write_text(HELPERS)
    with open(folder / "big.bin", "wb") as f:  # sparse: 17 MiB that cost nothing
        f.truncate(17 * 2**20)
    return folder


def _flowkit(
    cluster: JobCluster, cwd: Path, *args: str, timeout: float = WAIT_SECONDS
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in cluster.env.items() if k != "FLOWKIT_STORE"}
    return subprocess.run(
        [sys.executable, "-m", "flowkit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _wait(store: str, run_id: str, cluster: JobCluster) -> dict[str, object]:
    try:
        return rayfollow.wait(Store(store), run_id, poll=0.5, ask_ray_every=1, timeout=WAIT_SECONDS)
    except TimeoutError:
        pytest.fail(f"run {run_id} did not end\n{cluster.logs()}")


def test_a_submitted_run_spreads_over_the_cluster(cluster: JobCluster, project: Path) -> None:
    barrier = str(project.parent / "barrier")
    submitted = _flowkit(
        cluster, project, "submit", "wf.py", "--address", cluster.address,
        "--tag", "team=ml", "--items", "0,1", "--barrier", barrier,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    run_id = submitted.stdout.strip()
    assert run_id and "\n" not in run_id  # the run id alone on stdout, at once
    job = raysubmit.job_id_for(run_id)
    assert job in submitted.stderr and f"flowkit runs show {run_id}" in submitted.stderr
    store = str(project / ".flowkit")  # the default store, made absolute for the cluster

    shown = _flowkit(cluster, project, "runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    assert run_id in shown.stdout and "spread" in shown.stdout

    header = _wait(store, run_id, cluster)
    assert header["status"] == "succeeded", (header, cluster.logs())
    assert header["tags"] == {
        "team": "ml",
        raysubmit.JOB_TAG: job,
        raysubmit.ADDRESS_TAG: cluster.address,
    }
    assert header["backend"] == "ray"
    out = _flowkit(cluster, project, "runs", "output", run_id)
    assert out.returncode == 0, out.stderr
    places = [line.split(" ") for line in json.loads(out.stdout)]
    # both nodes ran a call, in Ray worker processes (not the job's driver)
    assert {ip for ip, _, _ in places} == {HEAD_IP, WORKER_IP}
    assert all(int(pid) != header["pid"] for _, pid, _ in places)
    # the folder was shipped: the modules, not the store nor the large file
    for _, _, shipped in places:
        assert shipped.split(",") == ["helpers.py", "wf.py"]

    listed = _flowkit(cluster, project, "runs", "list", "--tag", "team=ml")
    assert run_id in listed.stdout and "succeeded" in listed.stdout


def test_a_failing_task_fails_the_run_and_submit_wait(cluster: JobCluster, project: Path) -> None:
    store = str(project.parent / "store")
    waited = _flowkit(
        cluster, project, "submit", "wf.py:spread", "--address", cluster.address,
        "--store", store, "--wait", "--items", "0", "--barrier", "-", "--fail", "true",
    )  # fmt: skip
    assert waited.returncode == 1, (waited.stdout, waited.stderr, cluster.logs())
    run_id = waited.stdout.strip()
    assert f"run {run_id} failed" in waited.stderr
    assert "planted failure" in waited.stderr
    shown = _flowkit(cluster, project, "runs", "show", run_id, "--store", store)
    assert "failed" in shown.stdout and "boom" in shown.stdout


def test_a_job_that_fails_before_the_run_starts_is_visible(
    cluster: JobCluster, project: Path
) -> None:
    """The workflow imports here but not on the cluster: the run never begins; Ray's
    message reaches `runs show`, the job's output `runs logs`, and waiting marks it failed."""
    (project / "wf.py").write_text(
        "import os\n"
        "if 'RAY_JOB_CONFIG_JSON_ENV_VAR' in os.environ:\n"
        "    raise ImportError('no such package on the cluster: planted')\n" + WORKFLOW
    )
    store = str(project.parent / "store")
    run_id = new_run_id()
    launch = Launch(
        target=str(project / "wf.py"),
        run_id=run_id,
        store=store,
        params={"items": "0", "barrier": "-"},
        address=cluster.address,
    )
    job = raysubmit.submit(launch)
    assert job == raysubmit.job_id_for(run_id)
    seen = Store(store).read_run(run_id)[0]
    assert seen["status"] == "submitted" and seen["workflow"] == "wf"

    deadline = time.monotonic() + WAIT_SECONDS
    while "FAILED" not in (note := rayfollow.job_note(seen) or "") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "FAILED" in note and "planted" in note, note
    shown = _flowkit(cluster, project, "runs", "show", run_id, "--store", store)
    assert "submitted" in shown.stdout and "FAILED" in shown.stdout, shown.stdout
    assert f"ray job logs {job}" in shown.stdout
    logs = _flowkit(cluster, project, "runs", "logs", run_id, "--store", store)
    assert logs.returncode == 0 and "no such package on the cluster" in logs.stdout, logs

    header = _wait(store, run_id, cluster)
    assert header["status"] == "failed"
    assert "before the run started" in str(header["error"]) and "planted" in str(header["error"])
    assert Store(store).read_run(run_id)[0]["status"] == "failed"  # written for every reader


def test_a_scheduled_fire_with_an_address_runs_as_a_job(cluster: JobCluster, project: Path) -> None:
    """The scheduler's way in: ``launch.start`` with an address submits; the fire's tags
    reach the run through the ``submitted`` header."""
    store = str(project.parent / "store")
    fire = Launch(
        target=f"{project / 'wf.py'}:spread",
        run_id=new_run_id(),
        store=store,
        params={"items": "0", "barrier": "-"},
        tags={"schedule": "nightly", "fire_time": "2026-03-29T02:00:00+01:00"},
        address=cluster.address,
    )
    start(fire)
    header = _wait(store, fire.run_id, cluster)
    assert header["status"] == "succeeded", (header, cluster.logs())
    assert header["workflow"] == "spread"
    tags = header["tags"]
    assert isinstance(tags, dict)
    assert tags["schedule"] == "nightly" and tags["fire_time"] == "2026-03-29T02:00:00+01:00"
    assert tags[raysubmit.JOB_TAG] == raysubmit.job_id_for(fire.run_id)


def test_bad_addresses_and_inputs_submit_nothing(cluster: JobCluster, project: Path) -> None:
    store = project.parent / "store"
    nobody = f"http://127.0.0.1:{free_port()}"
    not_jobs = f"http://{cluster.gcs}"  # the GCS: a gRPC server, not the job server
    for address in (nobody, not_jobs, "ray://127.0.0.1:10001"):
        r = _flowkit(
            cluster, project, "submit", "wf.py", "--address", address, "--store", str(store),
            "--items", "0", "--barrier", "-", timeout=120,
        )  # fmt: skip
        assert r.returncode == 2, (address, r.stderr)
        assert r.stdout == ""
        assert address in r.stderr and "8265" in r.stderr, r.stderr  # names it, and the fix
    bad_input = _flowkit(
        cluster, project, "submit", "wf.py", "--address", cluster.address, "--store", str(store),
        "--items", "x", "--barrier", "-",
    )  # fmt: skip
    assert bad_input.returncode == 2 and "--items" in bad_input.stderr, bad_input.stderr
    no_address = _flowkit(cluster, project, "submit", "wf.py", "--items", "0", "--barrier", "-")
    assert no_address.returncode == 2 and "--address" in no_address.stderr
    runs = store / "runs"
    assert not runs.exists() or os.listdir(runs) == []

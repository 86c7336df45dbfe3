"""Resume by run id: a new run reuses every call of an earlier run that succeeded and whose key
still matches (cached or not), and runs the failed, interrupted and changed ones.

The oracle is a fresh run with nothing to reuse: a resumed run must give the same output, and
run exactly the calls that did not succeed before or whose code or inputs changed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowkit as fk
from flowkit.store import Artifact, Store
from flowkit.testing.observe import record_attempt

# Calls are counted in files of a per-test folder: a module-level counter would be part of
# the tasks' code fingerprints (module state they reach), and change their keys.
FOLDER = "FLOWKIT_TEST_RESUME_DIR"


def note(name: str) -> None:
    record_attempt(os.environ[FOLDER], name)


def fails(x: int) -> bool:
    return os.path.exists(os.path.join(os.environ[FOLDER], f"fail-{x}"))


def ran() -> Counter[str]:
    folder = Path(os.environ[FOLDER])
    return Counter({p.stem: len(p.read_text().split()) for p in folder.glob("*.attempts")})


def clear(fail: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    folder = Path(os.environ[FOLDER])
    for p in folder.iterdir():
        p.unlink()
    for x in fail:
        (folder / f"fail-{x}").touch()


@fk.task
def load(n: int) -> list[int]:
    note("load")
    return list(range(n))


@fk.task
def square(x: int) -> int:
    note(f"square[{x}]")
    if fails(x):
        raise RuntimeError(f"square({x}) fails")
    return x * x


@fk.task(cache=True)
def total(xs: list[int]) -> int:
    note("total")
    return sum(xs)


@fk.workflow
def pipeline(n: int) -> int:
    return total(square.map(x=load(n)))


@pytest.fixture(autouse=True)
def _folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "calls"
    folder.mkdir()
    monkeypatch.setenv(FOLDER, str(folder))


def test_a_failed_run_resumed_reruns_only_what_did_not_succeed(any_store: Store) -> None:
    clear({3})
    with pytest.raises(fk.TaskFailedError) as info:
        fk.run(pipeline, n=5, store=any_store)
    first = info.value.run_id
    clear()
    run = fk.run(pipeline, n=5, store=any_store, resume=first)
    assert run.output == sum(x * x for x in range(5))
    assert run.resumed_from == first
    assert {t.node for t in run.tasks if not t.cached} == set(ran())
    assert set(ran()) == {"square[3]", "square[4]", "total"}  # [4] was skipped by the failure
    reused = {t.node: t.reused_from for t in run.tasks if t.cached}
    assert reused == dict.fromkeys(["load", "square[0]", "square[1]", "square[2]"], first)
    header, _ = any_store.read_run(run.id)
    assert header["resumed_from"] == first


def test_resume_accepts_a_prefix_and_a_run(local_store: Store) -> None:
    first = fk.run(pipeline, n=3, store=local_store)
    clear()
    fk.run(pipeline, n=3, store=local_store, resume=first.id[:20])
    fk.run(pipeline, n=3, store=local_store, resume=first)
    assert ran() == Counter()


def test_other_inputs_are_not_reused(local_store: Store) -> None:
    first = fk.run(pipeline, n=3, store=local_store)
    clear()
    run = fk.run(pipeline, n=4, store=local_store, resume=first.id)
    assert run.output == sum(x * x for x in range(4))
    # load(4) is another call; the items square(0..2) are the same calls as before
    assert set(ran()) == {"load", "square[3]", "total"}


def make_flow(offset: int) -> fk.WorkflowDef[..., int]:
    @fk.task
    def shift(x: int) -> int:
        note("shift")
        return x + offset

    @fk.task
    def double(x: int) -> int:
        note("double")
        return 2 * x

    @fk.task
    def untouched(x: int) -> int:
        note("untouched")
        return x

    @fk.workflow
    def flow(x: int) -> tuple[int, int]:
        return double(shift(x)), untouched(x)

    return flow


def test_changed_code_reruns_with_everything_downstream(local_store: Store) -> None:
    first = fk.run(make_flow(1), x=1, store=local_store)
    clear()
    run = fk.run(make_flow(2), x=1, store=local_store, resume=first.id)
    assert run.output == (6, 1)
    assert ran() == Counter({"shift": 1, "double": 1})  # untouched is reused


@fk.task
def wide(n: int) -> list[int]:
    note("wide")
    return list(range(n))  # well over the inline limit: an object in the store


@fk.task
def length(xs: list[int]) -> int:
    return len(xs)


@fk.workflow
def wide_flow(n: int) -> int:
    return length(wide(n))


def test_a_reused_output_whose_object_is_gone_or_damaged_is_recomputed(local_store: Store) -> None:
    first = fk.run(wide_flow, n=2000, store=local_store)
    art = Artifact.from_dict(next(t for t in first.tasks if t.name == "wide").outputs["0"])  # type: ignore[index]
    path = Path(local_store.root, "objects", art.digest[:2], art.digest)
    path.write_bytes(b"[1,2,3]" + path.read_bytes()[7:])  # same size, other bytes
    clear()
    run = fk.run(wide_flow, n=2000, store=local_store, resume=first.id)
    assert run.output == 2000 and ran()["wide"] == 1
    path.unlink()
    clear()
    run = fk.run(wide_flow, n=2000, store=local_store, resume=first.id)
    assert run.output == 2000 and ran()["wide"] == 1


def test_a_planted_malformed_artifact_in_the_old_record_is_not_reused(local_store: Store) -> None:
    first = fk.run(pipeline, n=2, store=local_store)
    folder = Path(local_store.root, "runs", first.id)
    for batch in folder.glob("tasks-*"):
        batch.unlink()
    records = [t.to_dict() for t in first.tasks]
    for r in records:
        r["outputs"] = {"0": {"digest": "../../etc/passwd", "format": "json", "size": 3}}
    local_store.write_task_records(first.id, 0, records)
    clear()
    run = fk.run(pipeline, n=2, store=local_store, resume=first.id, cache=False)
    assert run.output == 1 and set(ran()) == {"load", "square[0]", "square[1]", "total"}


def test_resume_refusals(local_store: Store) -> None:
    with pytest.raises(fk.StoreError, match="no run 'nope'"):
        fk.run(pipeline, n=2, store=local_store, resume="nope")
    with pytest.raises(fk.FlowkitError, match="refresh"):
        fk.run(pipeline, n=2, store=local_store, resume="x", cache="refresh")
    with pytest.raises(fk.FlowkitError, match="resume="):
        fk.run(pipeline, n=2, store=local_store, resume=3)  # type: ignore[arg-type]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(0, 8),
    fail=st.sets(st.integers(0, 8), max_size=3),
    backend=st.sampled_from(["local", "threads"]),
)
def test_resumed_output_equals_a_fresh_run(
    tmp_path: Path, n: int, fail: set[int], backend: str
) -> None:
    store = Store(tmp_path / f"store-{time.monotonic_ns()}")
    clear(fail)
    try:
        first_id = fk.run(pipeline, n=n, store=store, backend=backend).id
    except fk.TaskFailedError as e:
        first_id = e.run_id
    _, records = store.read_run(first_id)
    succeeded = {r["node"] for r in records if r["status"] == "succeeded"}
    clear()
    resumed = fk.run(pipeline, n=n, store=store, backend=backend, resume=first_id)
    assert not set(ran()) & succeeded  # nothing that succeeded runs again
    fresh = fk.run(
        pipeline, n=n, store=Store(tmp_path / f"fresh-{time.monotonic_ns()}"), backend=backend
    )
    assert resumed.output == fresh.output
    assert {t.node for t in resumed.tasks if t.reused_from} == succeeded


FLOW = """
import os, sys, time
import flowkit as fk

@fk.task
def quick(n: int) -> int:
    print("quick ran", flush=True)
    return n + 1

@fk.task
def slow(n: int) -> int:
    if os.environ.get("STUCK"):
        open(sys.argv[2], "w").write("started")
        # a thread cannot be killed: the test lets it end once the run is interrupted
        while not os.path.exists(sys.argv[2] + ".release"):
            time.sleep(0.05)
    return n * 10

@fk.workflow
def wf(n: int) -> int:
    return slow(quick(n))

resume = sys.argv[3] if len(sys.argv) > 3 else None
run = fk.run(wf, n=1, store=sys.argv[1], backend=os.environ.get("BACKEND", "local"), resume=resume)
print(run.id, run.output)
"""


@pytest.mark.parametrize("backend", ["local", "threads"])
def test_an_interrupted_run_resumed_in_a_new_process(tmp_path: Path, backend: str) -> None:
    script = tmp_path / "flow.py"
    script.write_text(textwrap.dedent(FLOW))
    store, started = tmp_path / "store", tmp_path / "started"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWKIT_")}
    env["BACKEND"] = backend
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store), str(started)],
        env={**env, "STUCK": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not started.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    Path(f"{started}.release").touch()
    proc.communicate(timeout=60)
    (header,) = Store(store).list_runs()
    assert header["status"] == "interrupted"
    done = subprocess.run(
        [sys.executable, str(script), str(store), str(started), header["id"][:22]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    new_id, output = done.stdout.split()[-2:]
    assert output == "20"
    _, records = Store(store).read_run(new_id)
    by_node = {r["node"]: r for r in records}
    assert by_node["quick"]["reused_from"] == header["id"]
    assert "reused_from" not in by_node["slow"]
    assert "quick ran" not in done.stdout + done.stderr  # served, not run again

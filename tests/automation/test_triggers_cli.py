"""``flowkit trigger``: bad input (exit 2, one line naming the problem), list / pause / resume,
and fires run for real: the launched ``flowkit run`` process receives the event."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import flowkit as fk
from flowkit.automation.launch import run_command
from flowkit.automation.triggers import due
from flowkit.cli import main
from flowkit.store import Store

WORKFLOWS = """
import flowkit as fk

@fk.task
def show(event: fk.Event, n: int) -> str:
    return f"{event.kind} {event.workflow} {event.run_id} {','.join(event.urls)} n={n}"

@fk.workflow
def react(event: fk.Event, n: int = 1) -> str:
    return show(event, n)

@fk.task
def one() -> int:
    return 1

@fk.workflow
def train() -> int:
    return one()

@fk.task
def twice(a: fk.Event, b: fk.Event | None) -> int:
    return 2

@fk.workflow
def two_events(a: fk.Event, b: fk.Event | None = None) -> int:
    return twice(a, b)

@fk.task
def needs(n: int) -> int:
    return n

@fk.workflow
def needs_n(n: int) -> int:
    return needs(n)
"""


@pytest.fixture
def wf(tmp_path: Path) -> Path:
    path = tmp_path / "flows.py"
    path.write_text(WORKFLOWS)
    (tmp_path / "inbox").mkdir()
    return path


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store")
    s.check()
    return s


BAD = [
    (["{wf}:react"], "one of the arguments --on-success --on-failure --on-alias --on-new"),
    (["{wf}:react", "--on-success", "train", "--on-new", "{tmp}/inbox"], "not allowed with"),
    (["{tmp}/missing.py:react", "--on-success", "train"], "missing.py: not found"),
    (["{wf}:nosuch", "--on-success", "train"], "nosuch"),
    (["{wf}:react", "--on-success", "train", "--param", "n"], "write NAME=VALUE"),
    (["{wf}:react", "--on-success", "train", "--param", "m=1"], "has no input 'm'"),
    (["{wf}:react", "--on-success", "train", "--param", "n=x"], "expected int"),
    (["{wf}:react", "--on-success", "train", "--param", "event={{}}"], "receives the event"),
    (["{wf}:react", "--on-success", "train", "--param", "n=1", "--param", "n=2"], "given twice"),
    (["{wf}:needs_n", "--on-success", "train"], "needs input 'n'"),
    (["{wf}:react", "--on-success", "react"], "would start itself"),
    (["{wf}:react", "--on-failure", "{wf}:train"], "not its file"),
    (["{wf}:two_events", "--on-success", "train"], "2 inputs annotated fk.Event"),
    (["{wf}:react", "--on-success", "train", "--notify", "ftp://x"], "http:// or https://"),
    (["{wf}:react", "--on-success", "train", "--backend", "nosuch"], "not a backend here"),
    (["{wf}:react", "--on-success", "train", "--name", "bad name"], "is not valid"),
    (["{wf}:react", "--on-new", "nosuch://x"], "Protocol not known"),
    (["{wf}:react", "--on-new", "{tmp}/nothere"], "no such folder; create it first"),
    (["{wf}:react", "--on-alias", "clf"], "write MODEL@ALIAS"),
    (["{wf}:react", "--on-alias", "clf@v3"], "is not valid"),
    (["{wf}:react", "--on-success", "train", "--tracking-uri", "sqlite:///x"], "--on-alias only"),
]


@pytest.mark.parametrize(("args", "says"), BAD)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str],
    says: str,
    wf: Path,
    store: Store,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [a.format(wf=wf, tmp=tmp_path) for a in args]
    assert main(["trigger", "add", *argv, "--store", store.url]) == 2
    err = capsys.readouterr().err
    assert says in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert store.list_dir("triggers") == []  # nothing kept


def test_names_states_and_the_store_are_checked(
    wf: Path, store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add = ["trigger", "add", f"{wf}:react", "--on-success", "train", "--store", store.url]
    assert main(add) == 0
    assert main(add) == 2  # the default name is taken
    assert "already in store" in capsys.readouterr().err
    for action in ("pause", "resume", "remove"):
        assert main(["trigger", action, "nosuch", "--store", store.url]) == 2
        assert "no trigger 'nosuch'" in capsys.readouterr().err
    assert main(["trigger", "list", "--store", str(tmp_path / "no-store")]) == 2
    assert "there is no store" in capsys.readouterr().err
    assert not (tmp_path / "no-store").exists()
    memory = f"memory://fk-{time.time_ns()}"
    alias = ["trigger", "add", f"{wf}:react", "--on-alias", "clf@production", "--store", memory]
    assert main(alias) == 2  # no embedded registry in a remote store
    assert "give --tracking-uri" in capsys.readouterr().err


def test_list_pause_resume(wf: Path, store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trigger", "list", "--store", store.url]) == 0
    assert "no triggers" in capsys.readouterr().err
    assert main(["trigger", "add", f"{wf}:react", "--on-new", str(wf.parent / "inbox"),
                 "--param", "n=2", "--name", "inbox", "--store", store.url]) == 0  # fmt: skip
    assert "runs react when objects appear under file://" in capsys.readouterr().err
    assert main(["trigger", "pause", "inbox", "--store", store.url]) == 0
    assert main(["trigger", "list", "--store", store.url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["NAME", "WORKFLOW", "ON", "STATE", "FIRED", "ADDED", "SOURCE"]
    assert out[1].split()[:5] == ["inbox", "react", "--on-new", "paused", "0"]
    assert main(["trigger", "resume", "inbox", "--store", store.url]) == 0
    assert main(["trigger", "list", "--store", store.url]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[3] == "active"


def test_a_fire_runs_the_workflow_with_its_event(wf: Path, store: Store) -> None:
    """The launch runs as the scheduler runs it: `python -m flowkit run ...` in a process."""
    inbox = wf.parent / "inbox"
    assert main(["trigger", "add", f"{wf}:react", "--on-success", "train", "--param", "n=3",
                 "--store", store.url]) == 0  # fmt: skip
    assert main(["trigger", "add", f"{wf}:react", "--on-new", str(inbox), "--store",
                 store.url]) == 0  # fmt: skip
    assert main(["run", f"{wf}:train", "--store", store.url, "--run-id", "train-1"]) == 0
    (inbox / "a.csv").write_text("1")

    launches = due(store, time.time())
    assert len(launches) == 2
    for launch in launches:
        done = subprocess.run(run_command(launch), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    on_success, on_new = sorted(launches, key=lambda la: la.tags["event"] != "success")
    run = fk.runs.get(on_success.run_id, store=store)
    assert run.status == "succeeded"
    assert run.output == "success train train-1  n=3"
    assert dict(run.tags) == {"trigger": "react-on-success", "event": "success"}
    run = fk.runs.get(on_new.run_id, store=store)
    assert run.output == f"new_objects None None file://{inbox}/a.csv n=1"
    assert dict(run.tags) == {"trigger": "react-on-new", "event": "new_objects"}
    assert json.loads(on_new.params["event"])["urls"] == [f"file://{inbox}/a.csv"]
    # the fired run is a run of `react`: a trigger on react's success would see it
    assert [r.id for r in fk.runs.list(store=store, tags={"trigger": "react-on-new"})] == [
        on_new.run_id
    ]


def test_two_processes_racing_fire_each_run_once(wf: Path, store: Store, tmp_path: Path) -> None:
    assert main(["trigger", "add", f"{wf}:react", "--on-success", "train", "--store",
                 store.url]) == 0  # fmt: skip
    runs = []
    for i in range(20):
        run_id = f"planted-{i:02d}"
        header = {"id": run_id, "workflow": "train", "status": "succeeded", "started": 1.0,
                  "ended": 2.0 + i}  # fmt: skip
        store.write_run(run_id, header)
        runs.append(run_id)
    script = (
        "import json, sys, time\n"
        "from flowkit.automation.triggers import due\n"
        "from flowkit.store import Store\n"
        "got = []\n"
        "for _ in range(5):\n"
        "    got += [json.loads(la.params['event'])['run_id'] for la in due(Store(sys.argv[1]), "
        "time.time())]\n"
        "print(json.dumps(got))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, store.url], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    fired = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        fired += json.loads(out)
    assert sorted(fired) == runs  # each once, whichever process claimed it

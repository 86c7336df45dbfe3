"""Triggers evaluated in process: ``due(store, now)`` on real runs, folders and stores.

Runs are real ``flowkit run`` calls (in process, through ``flowkit.cli.main``); objects are
real files (a local folder, ``memory://``). Planted and damaged state is written where a
user with write access to the store could put it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest

from flowkit.automation import trigger_store
from flowkit.automation.launch import Launch
from flowkit.automation.trigger_defs import definition_path, fired_folder, state_path
from flowkit.automation.triggers import due
from flowkit.cli import main
from flowkit.events import Event
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
def one(fail: bool) -> int:
    if fail:
        raise RuntimeError("asked to fail")
    return 1

@fk.workflow
def train(fail: bool = False) -> int:
    return one(fail)
"""


@pytest.fixture
def wf_file(tmp_path: Path) -> Path:
    path = tmp_path / "flows.py"
    path.write_text(WORKFLOWS)
    return path


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store")
    s.check()
    return s


def cli(*argv: str) -> int:
    return main([str(a) for a in argv])


def run_train(wf_file: Path, store: Store, fail: bool = False) -> str:
    run_id = f"train-{uuid.uuid4().hex[:8]}"
    code = cli("run", f"{wf_file}:train", "--store", store.url, "--run-id", run_id, "--quiet",
               "--fail", str(fail).lower())  # fmt: skip
    assert code == (1 if fail else 0)
    return run_id


def events(launches: list[Launch]) -> list[Event]:
    return [Event.from_json(launch.params["event"]) for launch in launches]


def plant_run(store: Store, workflow: str, status: str, **extra: Any) -> str:
    run_id = f"planted-{uuid.uuid4().hex[:8]}"
    header = {"id": run_id, "workflow": workflow, "status": status, "started": time.time(),
              "host": "another-machine", "pid": 12345, **extra}  # fmt: skip
    store.write_run(run_id, header)
    return run_id


# -- runs ----------------------------------------------------------------------------------


def test_fires_once_per_succeeded_run_after_it_was_added(wf_file: Path, store: Store) -> None:
    before = run_train(wf_file, store)
    assert cli("trigger", "add", f"{wf_file}:react", "--on-success", "train", "--param", "n=3",
               "--store", store.url) == 0  # fmt: skip
    assert due(store, time.time()) == []  # the run of before `add` does not fire
    first, second = run_train(wf_file, store), run_train(wf_file, store)
    run_train(wf_file, store, fail=True)  # not a success

    launches = due(store, 1000.0)
    assert [e.run_id for e in events(launches)] == [first, second]
    for launch, event in zip(launches, events(launches), strict=True):
        assert launch.target == f"{wf_file}:react"
        assert launch.tags == {"trigger": "react-on-success", "event": "success"}
        assert launch.params["n"] == "3"
        assert launch.store == store.url
        assert (event.kind, event.workflow, event.trigger, event.time) == (
            "success", "train", "react-on-success", 1000.0,
        )  # fmt: skip
    assert len({launch.run_id for launch in launches}) == 2
    assert before not in {e.run_id for e in events(launches)}
    assert due(store, time.time()) == []  # each run fires once
    fired = store.list_dir(fired_folder("react-on-success"))
    assert sorted(fired) == sorted([f"{first}.json", f"{second}.json"])


def test_failure_counts_failed_and_lost_runs_not_interrupted_ones(
    wf_file: Path, store: Store
) -> None:
    assert cli("trigger", "add", f"{wf_file}:react", "--on-failure", "train", "--store",
               store.url) == 0  # fmt: skip
    failed = run_train(wf_file, store, fail=True)
    run_train(wf_file, store)  # a success: not an event
    old = time.time() - 3600
    lost = plant_run(store, "train", "running", heartbeat=old, started=old)  # machine gone
    plant_run(store, "train", "interrupted")  # stopped on purpose
    running = plant_run(store, "train", "running", heartbeat=time.time())
    plant_run(store, "other", "failed")  # another workflow

    assert sorted(e.run_id or "" for e in events(due(store, time.time()))) == sorted([failed, lost])
    # the run still running is looked at again, and fires once it has failed
    store.write_run(running, {**store.read_doc(f"runs/{running}/run.json"), "status": "failed"})
    assert [e.run_id for e in events(due(store, time.time()))] == [running]
    assert due(store, time.time()) == []


def test_a_trigger_whose_workflow_takes_no_event_gets_only_its_params(
    tmp_path: Path, wf_file: Path, store: Store
) -> None:
    plain = tmp_path / "plain.py"
    plain.write_text(
        "import flowkit as fk\n\n@fk.task\ndef t(n: int) -> int:\n    return n\n\n"
        "@fk.workflow\ndef report(n: int) -> int:\n    return t(n)\n"
    )
    assert cli("trigger", "add", f"{plain}:report", "--on-success", "train", "--param", "n=4",
               "--store", store.url) == 0  # fmt: skip
    run_train(wf_file, store)
    [launch] = due(store, time.time())
    assert launch.params == {"n": "4"}
    assert launch.tags["event"] == "success"


# -- objects -------------------------------------------------------------------------------


def test_new_and_rewritten_files_in_a_folder_fire_once(
    wf_file: Path, store: Store, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "sub").mkdir(parents=True)
    (inbox / "old.csv").write_text("there before")
    assert cli("trigger", "add", f"{wf_file}:react", "--on-new", str(inbox), "--name", "inbox",
               "--store", store.url) == 0  # fmt: skip
    assert due(store, time.time()) == []

    (inbox / "a.csv").write_text("1")
    (inbox / "sub" / "b.csv").write_text("22")
    [launch] = due(store, time.time())  # one run for the objects of one look
    [event] = events([launch])
    assert event.kind == "new_objects" and event.prefix == f"file://{inbox}"
    assert sorted(event.urls) == sorted([f"file://{inbox}/a.csv", f"file://{inbox}/sub/b.csv"])
    assert due(store, time.time()) == []

    (inbox / "old.csv").write_text("rewritten, longer")  # rewritten: new again
    (inbox / "a.csv").unlink()  # a deletion is not an event
    assert [e.urls for e in events(due(store, time.time()))] == [(f"file://{inbox}/old.csv",)]
    assert due(store, time.time()) == []


def test_memory_prefix(wf_file: Path, store: Store) -> None:
    root = f"memory://fk-inbox-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{root}/first.json", b"{}")
    assert cli("trigger", "add", f"{wf_file}:react", "--on-new", root, "--store", store.url) == 0
    assert due(store, time.time()) == []
    fs.pipe(f"{root}/second.json", b"{}")
    url = "memory:///" + root.removeprefix("memory://") + "/second.json"  # fsspec's spelling
    assert [e.urls for e in events(due(store, time.time()))] == [(url,)]
    assert due(store, time.time()) == []


def test_a_folder_that_went_away_keeps_the_cursor(
    wf_file: Path, store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "kept.csv").write_text("x")
    assert cli("trigger", "add", f"{wf_file}:react", "--on-new", str(inbox), "--name", "in",
               "--store", store.url) == 0  # fmt: skip
    state_before = store.read_doc(state_path("in"))["cursor"]
    inbox.rename(tmp_path / "unmounted")
    with caplog.at_level(logging.WARNING, logger="flowkit"):
        assert due(store, time.time()) == []
    assert "trigger in:" in caplog.text and "could not be read" in caplog.text
    assert store.read_doc(state_path("in"))["cursor"] == state_before
    (tmp_path / "unmounted").rename(inbox)
    (inbox / "new.csv").write_text("y")
    assert [e.urls for e in events(due(store, time.time()))] == [(f"file://{inbox}/new.csv",)]


# -- racing schedulers ---------------------------------------------------------------------


def s3_env(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The S3 store's credentials and endpoint in the environment, where the CLI and the runs
    a scheduler starts read them."""
    options = store.storage_options
    if store.url.startswith("s3://"):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", options["username"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", options["secret"])
        monkeypatch.setenv("AWS_ENDPOINT_URL", options["endpoint_url"])


def test_two_callers_racing_fire_each_event_once(
    any_store: Store, wf_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_env(any_store, monkeypatch)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    assert cli("trigger", "add", f"{wf_file}:react", "--on-success", "train", "--store",
               any_store.url) == 0  # fmt: skip
    assert cli("trigger", "add", f"{wf_file}:react", "--on-new", str(inbox), "--store",
               any_store.url) == 0  # fmt: skip
    launched: list[Launch] = []
    lock = threading.Lock()
    stop = threading.Event()

    def scheduler() -> None:
        while not stop.is_set():
            got = due(any_store, time.time())
            with lock:
                launched.extend(got)

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        runs = []
        for i in range(6):
            runs.append(plant_run(any_store, "train", "succeeded"))
            staged = tmp_path / f"f{i}.csv"  # written whole, then moved in (as the docs say)
            staged.write_text(str(i))
            staged.rename(inbox / staged.name)
    finally:
        time.sleep(0.3)  # let both loops see the last ones (not an assertion on speed)
        stop.set()
        for t in threads:
            t.join()
    launched.extend(due(any_store, time.time()))  # whatever the loops had not seen yet
    by_runs = [e.run_id for e in events(launched) if e.kind == "success"]
    by_objects = [u for e in events(launched) if e.kind == "new_objects" for u in e.urls]
    assert sorted(by_runs) == sorted(runs)  # each once: no duplicates, none missing
    assert sorted(by_objects) == sorted(f"file://{inbox}/f{i}.csv" for i in range(6))
    assert len({launch.run_id for launch in launched}) == len(launched)


# -- planted and damaged state -------------------------------------------------------------


def test_a_damaged_definition_is_skipped_with_a_warning_naming_it(
    wf_file: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    assert cli("trigger", "add", f"{wf_file}:react", "--on-success", "train", "--name", "good",
               "--store", store.url) == 0  # fmt: skip
    assert cli("trigger", "add", f"{wf_file}:react", "--on-success", "train", "--name", "bad",
               "--store", store.url) == 0  # fmt: skip
    Path(store.root, definition_path("bad")).write_bytes(b"\x00not json")
    good = store.read_doc(definition_path("good"))
    store.write_doc(definition_path("typed"), {**good, "name": "typed", "paused": "no"})
    store.write_doc(definition_path("renamed"), {**good})  # names another trigger
    Path(store.root, "triggers", "bad name!.json").write_text("{}")  # no trigger has that name
    run_id = run_train(wf_file, store)
    with caplog.at_level(logging.WARNING, logger="flowkit"):
        launches = due(store, time.time())
    assert [
        (la.tags["trigger"], e.run_id) for la, e in zip(launches, events(launches), strict=True)
    ] == [("good", run_id)]
    for name in ("bad", "typed", "renamed"):
        assert f"trigger {name}" in caplog.text
    assert "'paused'" in caplog.text
    assert cli("trigger", "list", "--store", store.url) == 0  # lists the damaged ones too


@pytest.mark.parametrize(
    "damage",
    [
        b"garbage",
        json.dumps({"on": "success", "source": "train", "cursor": {"known": "all"}}).encode(),
        json.dumps({"on": "success", "source": "train", "cursor": {"known": [1, 2]}}).encode(),
        json.dumps({"on": "new", "source": "elsewhere", "cursor": {}}).encode(),
        json.dumps([1, 2]).encode(),
    ],
)
def test_a_damaged_state_starts_over_from_the_present(
    wf_file: Path, store: Store, damage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    assert cli("trigger", "add", f"{wf_file}:react", "--on-success", "train", "--name", "t",
               "--store", store.url) == 0  # fmt: skip
    run_train(wf_file, store)
    rel = state_path("t")
    if damage.startswith(b"{") or damage.startswith(b"["):
        store.write_doc(rel, json.loads(damage))  # well-formed, checksummed, wrong content
    else:
        Path(store.root, rel).write_bytes(damage)
    with caplog.at_level(logging.WARNING, logger="flowkit"):
        assert due(store, time.time()) == []  # never a flood of old events, never a crash
    assert "trigger t: its state" in caplog.text
    later = run_train(wf_file, store)
    assert [e.run_id for e in events(due(store, time.time()))] == [later]


def test_a_planted_claim_keeps_its_event_from_firing(wf_file: Path, store: Store) -> None:
    assert cli("trigger", "add", f"{wf_file}:react", "--on-success", "train", "--name", "t",
               "--store", store.url) == 0  # fmt: skip
    first, second = run_train(wf_file, store), run_train(wf_file, store)
    Path(store.root, fired_folder("t")).mkdir(parents=True)
    Path(store.root, fired_folder("t"), f"{first}.json").write_text("damaged claim")
    assert [e.run_id for e in events(due(store, time.time()))] == [second]


def test_paused_triggers_do_not_fire_and_resume_from_the_present(
    wf_file: Path, store: Store
) -> None:
    assert cli("trigger", "add", f"{wf_file}:react", "--on-success", "train", "--name", "t",
               "--store", store.url) == 0  # fmt: skip
    assert cli("trigger", "pause", "t", "--store", store.url) == 0
    run_train(wf_file, store)
    assert due(store, time.time()) == []
    assert cli("trigger", "resume", "t", "--store", store.url) == 0
    assert due(store, time.time()) == []  # what happened while paused does not fire
    later = run_train(wf_file, store)
    assert [e.run_id for e in events(due(store, time.time()))] == [later]
    assert cli("trigger", "remove", "t", "--store", store.url) == 0
    assert trigger_store.names(store) == []
    assert list(store.walk("triggers/t")) == []  # its state and claims went with it


def test_a_signed_store_skips_a_planted_unsigned_trigger(
    wf_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FLOWKIT_STORE_KEY", "the-shared-signing-key")  # the CLI's key
    ours = Store(tmp_path / "signed", key="the-shared-signing-key")
    ours.check()
    assert cli("trigger", "add", f"{wf_file}:react", "--on-success", "train", "--name", "ours",
               "--store", ours.url) == 0  # fmt: skip
    run_id = run_train(wf_file, ours)
    monkeypatch.delenv("FLOWKIT_STORE_KEY")
    plain = Store(tmp_path / "signed")  # someone without the key plants a trigger
    planted = {**ours.read_doc(definition_path("ours")), "name": "planted"}
    plain.write_doc(definition_path("planted"), planted)
    with caplog.at_level(logging.WARNING, logger="flowkit"):
        launches = due(ours, time.time())
    assert [launch.tags["trigger"] for launch in launches] == ["ours"]
    assert [e.run_id for e in events(launches)] == [run_id]
    assert "trigger planted" in caplog.text


def test_a_read_only_store_fires_nothing(wf_file: Path, store: Store) -> None:
    assert cli("trigger", "add", f"{wf_file}:react", "--on-success", "train", "--store",
               store.url) == 0  # fmt: skip
    run_train(wf_file, store)
    assert due(Store(store.root, read_only=True), time.time()) == []  # it cannot claim
    assert len(due(store, time.time())) == 1  # nothing was taken by the read-only look


def test_many_new_objects_are_split_over_runs(
    wf_file: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event is one command-line argument (Linux caps one at 128 KiB): a look that finds
    thousands of objects starts several runs, each object in exactly one."""
    import flowkit.automation.triggers as triggers_module

    monkeypatch.setattr(triggers_module, "MAX_URLS", 3)
    root = f"memory://fk-many-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    fs.mkdir(root)
    assert cli("trigger", "add", f"{wf_file}:react", "--on-new", root, "--store", store.url) == 0
    for i in range(7):
        fs.pipe(f"{root}/o{i}.bin", b"x")
    launches = due(store, time.time())
    assert [len(e.urls) for e in events(launches)] == [3, 3, 1]
    assert len({launch.run_id for launch in launches}) == 3
    urls = [u for e in events(launches) for u in e.urls]
    assert sorted(urls) == sorted({*urls}) and len(urls) == 7
    # each claim names the run its object went to
    for launch, event in zip(launches, events(launches), strict=True):
        for url in event.urls:
            [claim] = [
                c for c in (store.read_doc(f"{fired_folder('react-on-new')}/{n}")
                            for n in store.list_dir(fired_folder("react-on-new")))
                if c["body"]["event"]["urls"] == [url]
            ]  # fmt: skip
            assert claim["body"]["run_id"] == launch.run_id

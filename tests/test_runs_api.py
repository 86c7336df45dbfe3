"""``fk.runs``: past runs read back from the store, lazily and read-only.

The first half runs real workflows (``fk.run`` on a store in ``tmp_path``) and reads them back:
outputs, parameters, calls in order, map items, attempts with their logs and tracebacks,
``keep=False`` and resumed runs. The second half attacks the reader with planted records: ids
that are prefixes of several runs or hold path characters, a damaged header, records naming
missing, damaged or malformed artifacts, malformed fields, and a 100k-item run whose views
must load no output.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowkit as fk
from flowkit import runs
from flowkit.records import AttemptRecord, Run, TaskRecord
from flowkit.secret import REDACTED
from flowkit.store import ObjectCorrupt, ObjectMissing, Store

# -- workflows ------------------------------------------------------------------------------


class Stats(NamedTuple):
    total: int
    label: str


@fk.task
def numbers(n: int) -> list[int]:
    print(f"making {n} numbers")
    return list(range(n))


@fk.task(cache=True)
def square(x: int) -> int:
    return x * x


@fk.task
def stats(xs: list[int]) -> Stats:
    return Stats(sum(xs), "sum")


@fk.task
def split(xs: list[int]) -> tuple[int, str]:
    return len(xs), "items"


@fk.task
def chatty(n: int) -> str:
    print("line\n" * n, end="")  # more than the record keeps inline when n is large
    return "done"


@fk.workflow
def pipeline(n: int = 3) -> Stats:
    xs = square.map(x=numbers(n))
    split(xs)
    return stats(xs)


@fk.task(retries=1)
def flaky(marker: str) -> int:
    """Fails on its first attempt (it leaves the marker), succeeds on the second."""
    if not os.path.exists(marker):
        Path(marker).write_text("seen")
        print("first attempt: failing")
        raise RuntimeError("first attempt fails")
    print("second attempt: fine")
    return 7


@fk.workflow
def retried(marker: str) -> int:
    return flaky(marker)


@fk.task
def boom(x: int) -> int:
    raise ValueError(f"bad value {x}")


@fk.workflow
def breaks(x: int = 42) -> int:
    return boom(square(x))


@fk.task(keep=False)
def unkept(n: int) -> list[int]:
    return list(range(n))


@fk.task
def count(xs: list[int]) -> int:
    return len(xs)


@fk.workflow
def opted_out(n: int = 3) -> int:
    return square(count(unkept(n)))


@fk.workflow
def talkative(n: int = 2000) -> str:
    return chatty(n)


@fk.task
def shout(who: int) -> int:
    for line in range(200):
        print(f"call {who} line {line}")
    return who


@fk.workflow
def choir(n: int = 4) -> list[int]:
    return shout.map(who=numbers(n))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store")
    s.check()
    return s


# -- real runs read back ----------------------------------------------------------------------


def test_a_run_read_back_by_id_prefix_and_record(store: Store) -> None:
    record = fk.run(pipeline, store=store, n=3)
    for name in (record.id, record.id[:20], record):
        run = runs.get(name, store=store)
        assert run.id == record.id
    assert run.workflow == "pipeline" and run.status == "succeeded"
    assert run.output == Stats(5, "sum")
    assert dict(run.params) == {"n": 3}
    assert run.started == pytest.approx(record.started)
    assert run.duration == pytest.approx(record.duration)
    assert run.keep is True and run.resumed_from is None and run.error is None


def test_calls_in_order_by_node_and_map_item(store: Store) -> None:
    run = runs.get(fk.run(pipeline, store=store, n=12).id, store=store)
    nodes = [t.node for t in run.tasks]
    assert nodes[0] == "numbers" and set(nodes[-2:]) == {"split", "stats"}
    assert [t.node for t in run.map_items("square")] == [f"square[{i}]" for i in range(12)]
    assert run["square[10]"].output == 100 and run["numbers"].output == list(range(12))
    assert run["numbers"].logs == "making 12 numbers\n"
    assert "square[3]" in run and "square" not in run
    with pytest.raises(KeyError, match=r"map node .* 12 items: use run\['square\[0\]'\]"):
        run["square"]
    with pytest.raises(runs.UnknownNodeError, match="has no call `nope`; its nodes: numbers"):
        run["nope"]


def test_several_outputs_come_back_as_the_task_gave_them(store: Store) -> None:
    run = runs.get(fk.run(pipeline, store=store, n=3).id, store=store)
    named = run["stats"].output
    assert named.total == 5 and named.label == "sum" and named._fields == ("label", "total")
    assert run["split"].output == (3, "items")
    assert run["stats"].load("total") == 5
    assert set(run["stats"].outputs) == {"total", "label"}
    with pytest.raises(runs.NoOutputError, match="has 2 outputs"):
        run["stats"].load()
    with pytest.raises(runs.NoOutputError, match="no output `nope`"):
        run["stats"].load("nope")


def test_lineage_digests_name_the_stored_values(store: Store) -> None:
    run = runs.get(fk.run(pipeline, store=store, n=3).id, store=store)
    produced = run["numbers"].outputs["0"]
    assert produced == store.put([0, 1, 2]).digest
    # square.map takes its items one by one; stats takes the list of squares
    assert set(run["stats"].inputs) == {"xs"}


def test_attempts_keep_their_own_logs_and_tracebacks(store: Store, tmp_path: Path) -> None:
    record = fk.run(retried, store=store, marker=str(tmp_path / "marker"))
    call = runs.get(record.id, store=store)["flaky"]
    first, second = call.attempts
    assert (first.n, first.status, second.n, second.status) == (1, "failed", 2, "succeeded")
    assert first.logs == "first attempt: failing\n" and second.logs == "second attempt: fine\n"
    assert call.logs == first.logs + second.logs
    assert first.traceback is not None and "Traceback (most recent call last)" in first.traceback
    assert 'raise RuntimeError("first attempt fails")' in first.traceback
    assert call.traceback == first.traceback and second.traceback is None
    assert first.duration is not None and first.duration >= 0
    assert call.output == 7


def test_a_failed_run_has_no_output_but_its_finished_calls_do(store: Store) -> None:
    with pytest.raises(fk.TaskFailedError):
        fk.run(breaks, store=store)
    run = runs.latest("breaks", store=store)
    assert run.status == "failed" and "bad value 1764" in (run.error or "")
    with pytest.raises(runs.NoOutputError, match="its status is failed"):
        _ = run.output
    assert run["square"].output == 42 * 42
    with pytest.raises(runs.NoOutputError, match="failed, so it has no output: ValueError"):
        _ = run["boom"].output
    assert 'raise ValueError(f"bad value {x}")' in (run["boom"].traceback or "")


def test_keep_false_says_which_switch_dropped_an_output(store: Store) -> None:
    kept = runs.get(fk.run(opted_out, store=store).id, store=store)
    with pytest.raises(runs.OutputNotKeptError, match=r"@fk\.task\(keep=False\)"):
        _ = kept["unkept"].output
    lean = runs.get(fk.run(opted_out, store=store, keep=False).id, store=store)
    assert lean.keep is False
    with pytest.raises(runs.OutputNotKeptError, match=r"fk\.run\(\.\.\., keep=False\)"):
        _ = lean["unkept"].output
    assert lean["square"].output == 9  # cached: always stored
    assert lean.output == 9  # the workflow's output is always kept


def test_a_large_log_is_loaded_whole_from_its_object(store: Store) -> None:
    run = runs.get(fk.run(talkative, store=store, n=3000).id, store=store)
    (attempt,) = run["chatty"].attempts
    assert attempt.logs_cut and attempt.has_logs
    assert attempt.logs == "line\n" * 3000
    kept = run["chatty"].record["tries"][0]["logs"]  # the record holds head and tail only
    assert "characters cut" in kept and len(kept) < len(attempt.logs)


def test_calls_on_threads_keep_their_own_lines(store: Store) -> None:
    run = runs.get(fk.run(choir, store=store, backend="threads", n=4).id, store=store)
    for who, call in enumerate(run.map_items("shout")):
        expected = "".join(f"call {who} line {line}\n" for line in range(200))
        assert call.logs == expected and call.output == who


def test_a_resumed_run_names_the_run_and_the_calls_it_reused(store: Store) -> None:
    with pytest.raises(fk.TaskFailedError):
        fk.run(breaks, store=store)
    first = runs.latest("breaks", store=store)
    with pytest.raises(fk.TaskFailedError):
        fk.run(breaks, store=store, resume=first.id, cache=False)
    second = runs.latest("breaks", store=store)
    assert second.id != first.id and second.resumed_from == first.id
    assert second["square"].reused_from == first.id and second["square"].output == 1764
    assert second["boom"].reused_from is None


def test_list_and_latest_filter_newest_first(store: Store) -> None:
    a = fk.run(pipeline, store=store, n=1).id
    with pytest.raises(fk.TaskFailedError):
        fk.run(breaks, store=store)
    c = fk.run(pipeline, store=store, n=2).id
    assert runs.list(store=store)[0].id == c
    assert [r.id for r in runs.list(store=store, workflow="pipeline")] == [c, a]
    assert [r.workflow for r in runs.list(store=store, status="failed")] == ["breaks"]
    assert len(runs.list(store=store, limit=2)) == 2
    assert runs.latest("pipeline", store=store).id == c
    assert runs.latest(store=store, status="failed").workflow == "breaks"
    with pytest.raises(runs.UnknownRunError, match="no run of workflow `nope` in store"):
        runs.latest("nope", store=store)
    with pytest.raises(fk.FlowkitError, match="status='succeded': use one of running"):
        runs.list(store=store, status="succeded")
    with pytest.raises(fk.FlowkitError, match="limit=0"):
        runs.list(store=store, limit=0)


def test_the_default_store_and_a_missing_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWKIT_STORE", str(tmp_path / "env-store"))
    record = fk.run(pipeline, n=2)
    assert runs.get(record.id).output == Stats(1, "sum")
    assert runs.get(record.id, store=str(tmp_path / "env-store")).id == record.id
    with pytest.raises(fk.StoreError, match=r"there is no store at .*nothing-here"):
        runs.get("x", store=tmp_path / "nothing-here")
    assert not (tmp_path / "nothing-here").exists()  # a reader creates nothing


def test_views_are_read_only(store: Store) -> None:
    run = runs.get(fk.run(pipeline, store=store, n=2).id, store=store)
    with pytest.raises(AttributeError):
        run.status = "failed"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        run["numbers"].output = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        run["numbers"].record["status"] = "failed"  # type: ignore[index]
    with pytest.raises(TypeError):
        run.header["status"] = "failed"  # type: ignore[index]
    assert runs.get(run.id, store=store)["numbers"].status == "succeeded"


def test_an_s3_store(s3_stores: Any) -> None:
    store = s3_stores.new()
    record = fk.run(pipeline, store=store, n=300)  # the numbers' list is an object (> 1 KiB)
    run = runs.get(record.id[:21], store=store)
    assert run.output == Stats(sum(i * i for i in range(300)), "sum")
    assert run["numbers"].output == list(range(300)) and run["square[299]"].output == 299**2
    assert runs.latest("pipeline", store=store).id == record.id


# -- planted records ----------------------------------------------------------------------


def plant(
    store: Store,
    run_id: str,
    records: list[TaskRecord] | None = None,
    *,
    workflow: str = "planted",
    started: float = 1_700_000_000.0,
    **header: Any,
) -> None:
    run = Run(id=run_id, workflow=workflow, status="succeeded", started=started)
    run.ended = started + 1
    store.write_run(run_id, {**run.to_dict(), **header})
    for n in range(0, len(records or ()), 1000):
        batch = (records or [])[n : n + 1000]
        store.write_task_records(run_id, n // 1000, [r.to_dict() for r in batch])


def record(node: str, outputs: Any = None, **fields: Any) -> TaskRecord:
    r = TaskRecord(name=node.split("[")[0], node=node, status="succeeded", attempts=1)
    r.started, r.ended, r.outputs = 1_700_000_000.0, 1_700_000_001.0, outputs
    for k, v in fields.items():
        setattr(r, k, v)
    return r


def test_an_ambiguous_prefix_names_every_candidate(store: Store) -> None:
    plant(store, "20260101T100000.000001-aaaaaa", workflow="alpha")
    plant(store, "20260101T100000.000002-bbbbbb", workflow="beta", started=1_700_000_100.0)
    plant(store, "20270101T100000.000003-cccccc", workflow="gamma")
    with pytest.raises(runs.UnknownRunError) as caught:
        runs.get("2026", store=store)
    message = str(caught.value)
    assert "'2026' is ambiguous" in message and "begins 2 run ids" in message
    assert "20260101T100000.000001-aaaaaa (alpha, succeeded, started 2023-" in message
    assert "(beta, succeeded, started 2023-" in message and "gamma" not in message
    assert {v.id for v in caught.value.candidates} == {
        "20260101T100000.000001-aaaaaa",
        "20260101T100000.000002-bbbbbb",
    }
    assert runs.get("2027", store=store).workflow == "gamma"
    with pytest.raises(runs.UnknownRunError, match=r"no run '2028'.*the newest: 2027"):
        runs.get("2028", store=store)


@pytest.mark.parametrize(
    "bad", ["../x", "..", ".", "runs/..", "a/b", "/etc/passwd", "", "x\x00", "a b", "~"]
)
def test_ids_with_path_characters_name_no_run(store: Store, bad: str) -> None:
    plant(store, "20260101T100000.000001-aaaaaa")
    (Path(store.root) / "runs" / "a b").mkdir()  # a planted folder that is no run id
    if bad == "":
        with pytest.raises(runs.UnknownRunError, match="no run ''"):
            runs.get(bad, store=store)
        return
    with pytest.raises(runs.UnknownRunError, match="no run"):
        runs.get(bad, store=store)
    assert [v.id for v in runs.list(store=store)] == ["20260101T100000.000001-aaaaaa"]


def test_an_empty_store_says_it_holds_no_runs(store: Store) -> None:
    with pytest.raises(runs.UnknownRunError, match="it holds no runs"):
        runs.get("x", store=store)
    assert runs.list(store=store) == []


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    suffixes=st.sets(st.text("ab0", min_size=1, max_size=4), min_size=1, max_size=6),
    prefix=st.text("ab0", max_size=5),
)
def test_a_prefix_finds_the_one_run_it_begins_or_lists_them(
    tmp_path_factory: pytest.TempPathFactory, suffixes: set[str], prefix: str
) -> None:
    store = Store(tmp_path_factory.mktemp("ids") / "store")
    store.check()
    ids = {f"r{s}" for s in suffixes}
    for run_id in ids:
        plant(store, run_id)
    wanted = f"r{prefix}"
    matches = {i for i in ids if i.startswith(wanted)}
    if wanted in ids or len(matches) == 1:
        found = runs.get(wanted, store=store).id
        assert found == (wanted if wanted in ids else matches.pop())
        return
    with pytest.raises(runs.UnknownRunError) as caught:
        runs.get(wanted, store=store)
    shown = {v.id for v in caught.value.candidates}
    if matches:
        assert shown == matches if len(matches) <= 5 else shown < matches
    else:
        assert shown <= ids and "no run" in str(caught.value)


def test_a_damaged_header_still_shows_the_calls(store: Store) -> None:
    plant(store, "run1", [record("a", {"0": store.put(5).to_dict(compact=True)})])
    header = Path(store.root) / "runs" / "run1" / "run.json"
    header.write_bytes(header.read_bytes()[:-5] + b"XXXXX")
    run = runs.get("run1", store=store)
    assert run.status == "unknown" and run.workflow == "?"
    assert run.damage is not None and "runs/run1/run.json is unreadable" in run.damage
    assert run["a"].output == 5
    with pytest.raises(runs.NoOutputError, match="output of run run1 is unknown: its header"):
        _ = run.output
    with pytest.raises(fk.FlowkitError, match="inputs of run run1 are unknown"):
        _ = run.params
    assert [v.status for v in runs.list(store=store)] == ["unknown"]
    assert runs.list(store=store, status="unknown")[0].id == "run1"


def test_a_header_that_is_not_an_object(store: Store) -> None:
    store.write_run("run1", ["not", "a", "header"])  # type: ignore[arg-type]
    run = runs.get("run1", store=store)
    assert run.status == "unknown" and "not a JSON object" in (run.damage or "")
    assert run.tasks == ()


def test_a_record_naming_a_missing_object_says_so(store: Store) -> None:
    art = store.put(list(range(1000)))  # an object, not inline
    plant(store, "run1", [record("a", {"0": art.to_dict(compact=True)})])
    os.remove(os.path.join(store.root, store.object_path(art.digest)))
    with pytest.raises(ObjectMissing) as caught:
        _ = runs.get("run1", store=store)["a"].output
    message = str(caught.value)
    assert "task `a` (node `a`) of run run1" in message and art.digest in message
    assert "flowkit cache gc" in message


def test_a_record_naming_a_damaged_object_says_so(store: Store) -> None:
    art = store.put(list(range(1000)))
    plant(store, "run1", [record("a", {"0": art.to_dict(compact=True)})])
    path = os.path.join(store.root, store.object_path(art.digest))
    data = bytearray(Path(path).read_bytes())
    data[10] ^= 1
    os.chmod(path, 0o644)
    Path(path).write_bytes(bytes(data))
    with pytest.raises(ObjectCorrupt, match=r"task `a` .* run run1.*digest mismatch"):
        _ = runs.get("run1", store=store)["a"].output


@pytest.mark.parametrize(
    "planted",
    [
        {"digest": "../../etc/passwd", "format": "json", "size": 3},
        {"digest": "0" * 64, "format": "json", "size": -1},
        {"format": "json", "inline": "5", "digest": "1" * 64},  # inline bytes disagree
        {"format": "json", "inline": "5", "inline64": "NQ=="},
        {"format": "dir", "inline64": "NQ=="},  # a folder can never be inline
        "not an artifact",
    ],
)
def test_a_planted_artifact_is_refused_not_followed(store: Store, planted: Any) -> None:
    plant(store, "run1", [record("a", {"0": planted})])
    call = runs.get("run1", store=store)["a"]
    if not isinstance(planted, dict):  # not a dict: read as an output that was not kept
        with pytest.raises(runs.OutputNotKeptError):
            _ = call.output
        return
    with pytest.raises(ObjectCorrupt, match="malformed artifact"):
        _ = call.output
    with pytest.raises(ObjectCorrupt, match="output `0` is malformed"):
        _ = call.outputs


def test_malformed_fields_read_as_absent(store: Store) -> None:
    store.write_run("run1", Run(id="run1", workflow="w", status="succeeded").to_dict())
    planted = [
        {"node": "a", "status": 3, "tries": "no", "started": "soon", "inputs": ["x"]},
        {"node": None, "name": 5, "tries": [{"n": "one", "logs": 7}, "junk"]},
        "not a record",
        {"node": "b", "status": "succeeded", "outputs": []},
    ]
    store.write_task_records("run1", 0, planted)  # type: ignore[arg-type]
    run = runs.get("run1", store=store)
    a = run["a"]
    assert (a.status, a.attempts, a.started, dict(a.inputs)) == ("unknown", (), None, {})
    with pytest.raises(runs.NoOutputError, match="its status is unknown"):
        _ = a.output
    odd = run["?"]
    assert odd.name == "?" and [t.n for t in odd.attempts] == [0] and odd.logs == ""
    with pytest.raises(ObjectCorrupt, match="record of outputs is malformed"):
        _ = run["b"].output


def test_a_lost_log_object_gives_the_head_and_tail_with_a_note(store: Store) -> None:
    whole = "line\n" * 3000
    ref = store.put(whole)
    tries = [AttemptRecord(n=1, started=1.0, ended=2.0, logs="head...tail", logs_ref=ref.to_dict())]
    plant(store, "run1", [record("a", tries=tries)])
    assert runs.get("run1", store=store)["a"].logs == whole
    os.remove(os.path.join(store.root, store.object_path(ref.digest)))
    text = runs.get("run1", store=store)["a"].logs
    assert text.startswith("head...tail\n[flowkit: the whole log is not readable")


def test_a_run_before_outputs_were_kept(store: Store) -> None:
    header = Run(id="old", workflow="w", status="succeeded").to_dict()
    del header["keep"]
    store.write_run("old", header)
    store.write_task_records("old", 0, [record("a").to_dict()])
    run = runs.get("old", store=store)
    assert run.keep is None
    with pytest.raises(runs.OutputNotKeptError, match="kept only cached outputs"):
        _ = run["a"].output
    with pytest.raises(runs.OutputNotKeptError, match="output of run old was not kept"):
        _ = run.output


def test_large_and_secret_params_as_the_header_records_them(store: Store) -> None:
    big = list(range(5000))
    art = store.put(big)
    inputs = {"small": 3, "big": {"$artifact": art.to_dict()}, "token": {"$secret": True}}
    plant(store, "run1", inputs=inputs)
    params = runs.get("run1", store=store).params
    assert params["small"] == 3 and params["big"] == big
    assert params["token"] is REDACTED
    assert sorted(params) == ["big", "small", "token"]  # documents sort their keys


def test_a_100k_item_run_loads_no_output(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = {"digest": "ab" * 32, "format": "json", "size": 5000}  # no such object
    records = [record(f"big[{i}]", {"0": missing}) for i in range(100_000)]
    plant(store, "huge", records)
    loads: list[Any] = []
    monkeypatch.setattr(Store, "get", lambda self, *a, **k: loads.append(a))
    started = time.perf_counter()
    run = runs.get("huge", store=store)
    tasks = run.tasks
    item = run["big[99999]"]
    elapsed = time.perf_counter() - started
    assert len(tasks) == 100_000 and item.node == "big[99999]"
    assert [t.node for t in tasks[:3]] == ["big[0]", "big[1]", "big[2]"]  # 2 before 10
    assert len(run.map_items("big")) == 100_000
    assert loads == []
    print(f"100k-item run: get + tasks + index in {elapsed:.2f}s")

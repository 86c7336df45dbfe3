"""``flowkit runs list|show|logs|output``: the shell's view of past runs (``fk.runs``).

Each test runs a real workflow file (written to ``tmp_path``) with ``flowkit run`` and reads
the run back through :func:`flowkit.cli.main` in-process; the last one does it all through the
console script in fresh processes, as a shell would. Exit codes: 0 ok, 2 bad usage, an unknown
or ambiguous id, an unknown node, or an output that is not JSON without ``-o``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flowkit import runs
from flowkit.cli import main
from flowkit.records import Run, TaskRecord
from flowkit.store import Store

FLOWKIT = Path(sys.executable).parent / "flowkit"

WORKFLOW = """
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

import flowkit as fk


class Scores(NamedTuple):
    best: float
    name: str


@fk.task
def load(n: int) -> list[int]:
    print(f"loading {n}")
    return list(range(n))


@fk.task(cache=True)
def square(x: int) -> int:
    print(f"squaring {x}")
    return x * x


@fk.task(retries=1)
def flaky(xs: list[int], marker: str) -> int:
    if not os.path.exists(marker):
        Path(marker).write_text("seen")
        print("first try")
        raise RuntimeError("first attempt fails")
    print("second try")
    return sum(xs)


@fk.task
def matrix(n: int) -> np.ndarray:
    return np.arange(n * n, dtype=np.float64).reshape(n, n)


@fk.task
def score(total: int) -> Scores:
    return Scores(total / 2, "half")


@fk.task
def boom(x: int) -> int:
    raise ValueError(f"bad value {x}")


@fk.workflow
def flow(n: int = 3, marker: str = "marker") -> int:
    xs = square.map(x=load(n))
    matrix(n)
    total = flaky(xs, marker)
    score(total)
    return total


@fk.workflow
def breaks(x: int = 42) -> int:
    return boom(square(x))
"""


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "runs_wf.py").write_text(WORKFLOW)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWKIT_STORE", raising=False)
    monkeypatch.setenv("FLOWKIT_QUIET", "1")
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def flow_run(capsys: pytest.CaptureFixture[str], *extra: str, output: str = "5\n") -> str:
    """Run ``flow`` with the CLI into store ``s``; returns the run id."""
    code, out, _ = cli(capsys, "run", "runs_wf.py:flow", "--store", "s", *extra)
    assert (code, out) == (0, output)
    return runs.latest("flow", store="s").id


def test_logs_of_every_call_under_node_headers(work: Path, capsys: Any) -> None:
    run_id = flow_run(capsys)
    code, out, _ = cli(capsys, "runs", "logs", run_id, "--store", "s")
    assert code == 0
    assert out.startswith("[load]\nloading 3\n[square[0]]\nsquaring 0\n")
    failed, retried = out.split("[flaky] attempt 1 (failed)\n")[1].split("[flaky] attempt 2\n")
    assert failed.startswith("first try\nTraceback (most recent call last):")
    assert 'raise RuntimeError("first attempt fails")' in failed
    assert retried == "second try\n"
    assert "[matrix]" not in out and "[score]" not in out  # they printed nothing


def test_logs_of_a_node_a_map_node_and_one_attempt(work: Path, capsys: Any) -> None:
    run_id = flow_run(capsys)
    code, out, _ = cli(capsys, "runs", "logs", run_id[:20], "square[1]", "--store", "s")
    assert (code, out) == (0, "squaring 1\n")  # one call, one attempt: no header
    code, out, _ = cli(capsys, "runs", "logs", run_id, "square", "--store", "s")
    assert out == "[square[0]]\nsquaring 0\n[square[1]]\nsquaring 1\n[square[2]]\nsquaring 2\n"
    code, out, _ = cli(capsys, "runs", "logs", run_id, "flaky", "--attempt", "2", "--store", "s")
    assert (code, out) == (0, "second try\n")
    code, out, _ = cli(capsys, "runs", "logs", run_id, "flaky", "--attempt", "1", "--store", "s")
    assert out.startswith("first try\nTraceback") and "RuntimeError: first attempt fails" in out
    code, out, err = cli(capsys, "runs", "logs", run_id, "matrix", "--store", "s")
    assert (code, out) == (0, "") and "printed and logged nothing" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["flaky", "--attempt", "3"], "has no attempt 3: it has attempts 1 to 2"),
        (["--attempt", "1"], "--attempt needs a NODE"),
        (["square", "--attempt", "1"], "`square` is a map node: --attempt needs one item"),
        (["nope"], "has no call `nope`; its nodes: load, "),
        (["flaky", "--attempt", "0"], "expected a positive integer, got '0'"),
    ],
)
def test_logs_usage_errors_exit_2(work: Path, capsys: Any, args: list[str], message: str) -> None:
    run_id = flow_run(capsys)
    code, out, err = cli(capsys, "runs", "logs", run_id, *args, "--store", "s")
    assert code == 2 and out == ""
    assert message in one_line(err)


def test_output_as_json_or_to_a_file(work: Path, capsys: Any) -> None:
    run_id = flow_run(capsys)
    assert cli(capsys, "runs", "output", run_id, "--store", "s")[:2] == (0, "5\n")
    code, out, _ = cli(capsys, "runs", "output", run_id, "load", "--store", "s")
    assert (code, json.loads(out)) == (0, [0, 1, 2])
    code, out, _ = cli(capsys, "runs", "output", run_id, "score", "--store", "s")
    assert json.loads(out) == {"best": 2.5, "name": "half"}  # named outputs: an object
    code, out, err = cli(capsys, "runs", "output", run_id, "matrix", "--store", "s")
    assert code == 2 and out == ""
    assert "is a ndarray (numpy), not JSON: pass -o FILE" in one_line(err)
    code, out, err = cli(capsys, "runs", "output", run_id, "matrix", "-o", "m.npy", "--store", "s")
    assert (code, out) == (0, "") and "numpy.load(FILE)" in err
    assert np.array_equal(np.load(work / "m.npy"), np.arange(9.0).reshape(3, 3))
    code, _, _ = cli(capsys, "runs", "output", run_id, "load", "-o", "xs.json", "--store", "s")
    assert code == 0 and json.loads((work / "xs.json").read_text()) == [0, 1, 2]


def test_output_errors_exit_2(work: Path, capsys: Any) -> None:
    run_id = flow_run(capsys)
    code, _, err = cli(capsys, "runs", "output", run_id, "square", "--store", "s")
    assert code == 2 and "map node" in one_line(err) and "square[0] to square[2]" in err
    assert cli(capsys, "run", "runs_wf.py:breaks", "--store", "s")[0] == 1
    failed = runs.latest("breaks", store="s").id
    code, _, err = cli(capsys, "runs", "output", failed, "--store", "s")
    assert code == 2 and "has no output: its status is failed" in one_line(err)
    code, _, err = cli(capsys, "runs", "output", failed, "boom", "--store", "s")
    assert code == 2 and "failed, so it has no output: ValueError: bad value 1764" in err
    code, out, _ = cli(capsys, "runs", "output", failed, "square", "--store", "s")
    assert (code, out) == (0, "1764\n")


def test_unknown_and_ambiguous_ids_exit_2_naming_the_candidates(work: Path, capsys: Any) -> None:
    first = flow_run(capsys)
    second = flow_run(capsys, "--n", "4", "--marker", "other", output="14\n")
    for action in ("show", "logs", "output"):
        code, _, err = cli(capsys, "runs", action, "nope", "--store", "s")
        assert code == 2
        line = one_line(err)
        assert "no run 'nope' in store" in line and f"{second} (flow, succeeded, started" in line
    code, _, err = cli(capsys, "runs", "show", "2", "--store", "s")
    assert code == 2 and "'2' is ambiguous" in one_line(err)
    assert first in err and second in err
    code, _, err = cli(capsys, "runs", "logs", "x", "--store", "elsewhere")
    assert code == 2 and "there is no store at elsewhere" in one_line(err)
    assert not (work / "elsewhere").exists()


def test_show_marks_cached_reused_kept_and_logged_calls(work: Path, capsys: Any) -> None:
    flow_run(capsys)
    run_id = flow_run(capsys, "--marker", "other")  # square's calls are cached now
    code, out, _ = cli(capsys, "runs", "show", run_id, "--store", "s")
    assert code == 0
    table = out.split("\n\n")[1].splitlines()
    rows = {row.split()[0]: row.split()[1:] for row in table[1:]}
    # task, status, cached, attempts, duration, output, logs
    assert rows["square[1]"][2] == "yes" and rows["square[1]"][-1] == "-"  # a hit logs nothing
    assert rows["flaky"][2:4] == ["no", "2"] and rows["flaky"][-2:] == ["yes", "yes"]
    assert rows["matrix"][-2:] == ["yes", "-"]
    assert "failed attempts retried:\n  flaky #1: RuntimeError: first attempt fails" in out


def test_show_a_resumed_run_and_an_unkept_output(work: Path, capsys: Any) -> None:
    store = Store(work / "s")
    store.check()
    header = Run(id="run-b", workflow="w", status="succeeded", resumed_from="run-a", keep=False)
    big = store.put(list(range(2000)))
    header.recorded_inputs = {
        "n": 3,
        "data": {"$artifact": big.to_dict()},
        "key": {"$secret": True},
    }
    store.write_run("run-b", header.to_dict())
    reused = TaskRecord(name="t", node="t", status="succeeded", attempts=0, reused_from="run-a")
    reused.outputs = {"0": store.put(3).to_dict(compact=True)}
    unkept = TaskRecord(name="u", node="u", status="succeeded", attempts=1)
    store.write_task_records("run-b", 0, [reused.to_dict(), unkept.to_dict()])
    code, out, _ = cli(capsys, "runs", "show", "run-b", "--store", "s")
    assert code == 0 and "resumed   from run run-a (1 calls reused)" in out
    assert f"data=<stored json value, {big.size} bytes>, key=***, n=3" in out
    rows = {row.split()[0]: row.split()[1:] for row in out.split("\n\n")[1].splitlines()[1:]}
    assert rows["t"][2] == "reused" and rows["u"][-2:] == ["no", "-"]
    code, _, err = cli(capsys, "runs", "output", "run-b", "u", "--store", "s")
    assert code == 2 and "keep=False" in one_line(err)


def test_list_filters_by_status_and_workflow(work: Path, capsys: Any) -> None:
    flow_run(capsys)
    assert cli(capsys, "run", "runs_wf.py:breaks", "--store", "s")[0] == 1
    code, out, _ = cli(capsys, "runs", "list", "--store", "s", "--status", "failed")
    assert [line.split()[1:3] for line in out.splitlines()[1:]] == [["breaks", "failed"]]
    code, out, _ = cli(capsys, "runs", "list", "--store", "s", "--workflow", "flow", "--json")
    assert [h["workflow"] for h in json.loads(out)] == ["flow"]
    code, out, err = cli(capsys, "runs", "list", "--store", "s", "--workflow", "nope")
    assert (code, out) == (0, "") and "no runs in s" in err
    code, _, err = cli(capsys, "runs", "list", "--store", "s", "--status", "done")
    assert code == 2 and "invalid choice: 'done'" in one_line(err)


def test_the_console_script_in_fresh_processes(work: Path) -> None:
    def flowkit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(FLOWKIT), *args], cwd=work, capture_output=True, text=True, timeout=120
        )

    done = flowkit("run", "runs_wf.py:flow", "--store", "s")
    assert (done.returncode, done.stdout) == (0, "5\n")
    run_id = flowkit("runs", "list", "--store", "s", "--json")
    run_id_text = json.loads(run_id.stdout)[0]["id"]
    shown = flowkit("runs", "output", run_id_text[:20], "--store", "s")
    assert (shown.returncode, shown.stdout) == (0, "5\n")
    logs = flowkit("runs", "logs", run_id_text, "flaky", "--store", "s")
    assert logs.returncode == 0 and "[flaky] attempt 2\nsecond try\n" in logs.stdout
    missing = flowkit("runs", "output", "nope", "--store", "s")
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_values_written_to_a_file_by_kind(tmp_path: Path) -> None:
    import flowkit as fk
    from flowkit import serialize
    from flowkit.cli.common import UsageError
    from flowkit.cli.runs_output import json_text, write_value

    assert json_text(float("nan")) is None and json_text({1: (2, 3)}) is not None
    assert "JSON" in write_value([1, "a"], str(tmp_path / "v.json"))
    assert json.loads((tmp_path / "v.json").read_text()) == [1, "a"]
    write_value(b"\x00\xff", str(tmp_path / "v.bin"))
    assert (tmp_path / "v.bin").read_bytes() == b"\x00\xff"
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "f.txt").write_text("inside")
    write_value(fk.File(source / "sub" / "f.txt"), str(tmp_path / "copy.txt"))
    assert (tmp_path / "copy.txt").read_text() == "inside"
    write_value(fk.Directory(source), str(tmp_path / "tree"))
    assert (tmp_path / "tree" / "sub" / "f.txt").read_text() == "inside"
    with pytest.raises(UsageError, match="exists"):
        write_value(fk.Directory(source), str(tmp_path / "tree"))
    said = write_value({3, 1}, str(tmp_path / "set.bin"))  # not plain JSON: flowkit's format
    assert "flowkit.serialize.load('json'" in said
    assert serialize.load("json", (tmp_path / "set.bin").read_bytes()) == {1, 3}

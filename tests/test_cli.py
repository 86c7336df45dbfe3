"""The ``flowkit`` command line: every command, exit code and error message.

Most tests call :func:`flowkit.cli.main` in-process (stdout/stderr through capsys); a few go
through the installed console script in a subprocess to prove the entry point and the exit
codes as a shell sees them. Every run uses a store in ``tmp_path``. Fixture workflow files
live in ``tests/cli_fixtures`` and are copied to ``tmp_path`` when a test edits them.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal, Optional, Union

import pytest

import flowkit as fk
from flowkit.cli import main
from flowkit.cli.commands_run import format_output
from flowkit.cli.params import ParamError, option_names, parse_value
from flowkit.cli.progress import ProgressLine, progress_for
from flowkit.records import Run, TaskRecord

FIXTURES = Path(__file__).parent / "cli_fixtures"
FLOWKIT = Path(sys.executable).parent / "flowkit"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding copies of the fixture files; the default store is inside it."""
    for f in FIXTURES.glob("*.py"):
        shutil.copy(f, tmp_path / f.name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWKIT_STORE", raising=False)
    monkeypatch.delenv("FLOWKIT_BACKEND", raising=False)
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


# -- run -------------------------------------------------------------------------------------


def test_run_prints_output_then_summary_and_reuses_the_cache(work: Path, capsys: Any) -> None:
    code, out, err = cli(capsys, "run", work / "pipeline.py", "--store", work / "s", "--n", "3")
    assert code == 0
    assert out == "45.5\n"  # (3*0)^2 + (3*1)^2 + (3*2)^2 + 0.5
    assert "succeeded in" in err and "5 tasks run, 0 cached, 0 failed" in err
    assert "\r" not in err and "\x1b" not in err  # no progress line off a terminal

    code, out, err = cli(capsys, "run", work / "pipeline.py", "--store", work / "s", "--n", "3")
    assert (code, out) == (0, "45.5\n")
    assert "0 tasks run, 5 cached, 0 failed" in err


@pytest.mark.parametrize("flag", ["--no-cache", "--refresh"])
def test_no_cache_and_refresh_recompute(work: Path, capsys: Any, flag: str) -> None:
    assert cli(capsys, "run", "pipeline.py", "--store", "s")[0] == 0
    code, out, err = cli(capsys, "run", "pipeline.py", "--store", "s", flag)
    assert code == 0 and out == "126.5\n" and "6 tasks run, 0 cached" in err


def test_no_cache_and_refresh_exclude_each_other(work: Path, capsys: Any) -> None:
    code, _, err = cli(capsys, "run", "pipeline.py", "--no-cache", "--refresh")
    assert code == 2
    assert "not allowed with argument" in one_line(err)


def test_store_and_backend_come_from_the_environment(
    work: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWKIT_STORE", str(work / "envstore"))
    monkeypatch.setenv("FLOWKIT_BACKEND", "threads")
    code, _, err = cli(capsys, "run", "pipeline.py")
    assert code == 0
    run_id = err.split()[1]
    header = json.loads(
        (work / "envstore" / "runs" / run_id / "run.json").read_bytes().split(b"\n", 1)[1]
    )
    assert header["backend"] == "threads"
    assert not (work / ".flowkit").exists()


def test_default_store_is_dot_flowkit(work: Path, capsys: Any) -> None:
    assert cli(capsys, "run", "pipeline.py", "--backend", "threads")[0] == 0
    assert (work / ".flowkit" / "flowkit-store.json").exists()


def test_main_block_does_not_run_and_sibling_imports_work(work: Path, capsys: Any) -> None:
    # pipeline.py raises SystemExit in its __main__ block: loading it as a module must not
    assert cli(capsys, "graph", "pipeline.py")[0] == 0
    code, out, _ = cli(capsys, "run", "sibling.py", "--store", "s", "--x", "5")
    assert (code, out) == (0, "15\n")


def test_typed_inputs_end_to_end(work: Path, capsys: Any) -> None:
    code, out, err = cli(
        capsys, "run", "typed.py", "--store", "s",
        "--n", "5", "--x", "2", "--flag", "yes", "--name", "hi there", "--path", "/tmp/p",
        "--maybe", "none", "--depths", "[1, 2]", "--opts", '{"a": 1}', "--max-depth", "7",
    )  # fmt: skip
    assert code == 0, err
    assert out.strip() == repr(
        repr((5, 2.0, True, "hi there", Path("/tmp/p"), None, [1, 2], {"a": 1.0}, 7))
    )


def test_defaults_apply_when_inputs_are_omitted(work: Path, capsys: Any) -> None:
    code, out, _ = cli(capsys, "run", "typed.py", "--store", "s", "--n", "1", "--depths", "4,5")
    assert code == 0
    assert out.strip() == repr(repr((1, 1.5, False, "a", Path("."), None, [4, 5], {}, 3)))


def test_help_after_the_file_lists_the_workflow_inputs(work: Path, capsys: Any) -> None:
    code, out, _ = cli(capsys, "run", "typed.py", "--help")
    assert code == 0
    out = " ".join(out.split())  # argparse wraps to the terminal width
    assert "inputs of workflow `echo`" in out
    assert "--n N" in out and "int (an integer); required" in out
    assert "--depths DEPTHS" in out and "list[int]" in out and "default: [1]" in out
    assert "--max_depth MAX_DEPTH, --max-depth MAX_DEPTH" in out
    assert "int | None" in out and "--backend NAME" in out


def test_help_without_a_file_and_top_level_help(work: Path, capsys: Any) -> None:
    code, out, _ = cli(capsys, "run", "--help")
    assert code == 0 and "FILE.py[:WORKFLOW]" in out and "exit codes" in out
    code, out, _ = cli(capsys, "--help")
    assert code == 0 and "cache explain" in out and "runs show" in out
    code, out, _ = cli(capsys)
    assert code == 2 and "usage: flowkit" in out
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.strip() == f"flowkit {fk.__version__}"
    for command in (["graph"], ["runs"], ["runs", "show"], ["cache"], ["cache", "gc"]):
        code, out, _ = cli(capsys, *command, "--help")
        assert code == 0 and "usage: flowkit" in out


# -- choosing the workflow -------------------------------------------------------------------


def test_workflow_is_picked_by_attribute_or_declared_name(work: Path, capsys: Any) -> None:
    assert cli(capsys, "run", "two.py:first", "--store", "s")[1] == "2\n"
    assert cli(capsys, "run", "two.py:second", "--store", "s")[1] == "12\n"
    assert cli(capsys, "run", "two.py:second_wf", "--store", "s", "--x", "0")[1] == "2\n"


def test_several_workflows_without_a_name_exit_2_listing_them(work: Path, capsys: Any) -> None:
    code, _, err = cli(capsys, "run", "two.py", "--store", "s")
    assert code == 2
    line = one_line(err)
    assert "defines 2 workflows" in line and "first, second" in line
    assert "imported_pipeline" not in line  # imported workflows are not offered


def test_unknown_workflow_exits_2_listing_the_choices(work: Path, capsys: Any) -> None:
    code, _, err = cli(capsys, "run", "two.py:third")
    assert code == 2
    assert "has no workflow 'third'; workflows: first, second" in one_line(err)


def test_file_without_workflows(work: Path, capsys: Any) -> None:
    code, _, err = cli(capsys, "run", "sibling_helper.py")
    assert code == 2 and "defines no workflow" in one_line(err)


# -- exit 2: bad usage or bad input ----------------------------------------------------------


def test_unknown_file(work: Path, capsys: Any) -> None:
    code, _, err = cli(capsys, "run", "missing.py")
    assert code == 2
    assert one_line(err) == (
        "flowkit run: error: missing.py: not found; give the path of a Python file defining a "
        "workflow"
    )


def test_syntax_error_names_file_and_line(work: Path, capsys: Any) -> None:
    (work / "broken.py").write_text("import flowkit as fk\n\ndef f(:\n    pass\n")
    code, _, err = cli(capsys, "run", "broken.py")
    assert code == 2
    line = one_line(err)
    assert line.startswith("flowkit run: error: syntax error in ")
    assert "syntax error in broken.py:3: " in line


def test_exception_while_importing_names_the_line(work: Path, capsys: Any) -> None:
    (work / "raises.py").write_text("import flowkit as fk\n\nx = undefined_name\n")
    code, _, err = cli(capsys, "graph", "raises.py")
    assert code == 2
    line = one_line(err)
    assert "error while importing raises.py" in line and "raises.py:3" in line
    assert "NameError" in line


def test_type_mismatch_at_decoration_is_one_line(work: Path, capsys: Any) -> None:
    code, _, err = cli(capsys, "run", "mismatch.py")
    assert code == 2
    line = one_line(err)
    assert "TypeMismatchError" in line and "double" in line and "`x`" in line


def test_traceback_flag_shows_the_traceback(work: Path, capsys: Any) -> None:
    code, _, err = cli(capsys, "run", "mismatch.py", "--traceback")
    assert code == 2
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("flowkit run: error:")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--n", "many"], "argument --n: expected int (an integer), got 'many'"),
        (["--n", "2.5"], "expected int"),
        (["--offset", "x"], "argument --offset: expected float (a number), got 'x'"),
        (["--bogus", "1"], "unrecognized arguments: --bogus 1"),
        (["--n"], "argument --n: expected one argument"),
    ],
)
def test_bad_input_values_exit_2(work: Path, capsys: Any, args: list[str], expected: str) -> None:
    code, _, err = cli(capsys, "run", "pipeline.py", "--store", "s", *args)
    assert code == 2
    line = one_line(err)
    assert line.startswith("flowkit run: error: ") and expected in line


def test_required_input_and_typed_errors(work: Path, capsys: Any) -> None:
    code, _, err = cli(capsys, "run", "typed.py", "--store", "s")
    assert code == 2 and "the following arguments are required: --n" in one_line(err)
    code, _, err = cli(capsys, "run", "typed.py", "--n", "1", "--flag", "maybe")
    assert code == 2 and "expected bool (true/false), got 'maybe'" in one_line(err)
    code, _, err = cli(capsys, "run", "typed.py", "--n", "1", "--depths", "1,x")
    assert code == 2 and "expected list[int]" in one_line(err)
    code, _, err = cli(capsys, "run", "typed.py", "--n", "1", "--opts", "[1]")
    assert code == 2 and "expected dict[str, float] (a JSON object)" in one_line(err)


def test_input_of_a_type_the_command_line_cannot_write(work: Path, capsys: Any) -> None:
    code, _, err = cli(capsys, "run", "opaque.py")
    assert code == 2
    assert "input `b` has type Blob and no default" in one_line(err)


def test_unknown_backend(work: Path, capsys: Any) -> None:
    code, _, err = cli(capsys, "run", "pipeline.py", "--store", "s", "--backend", "warp")
    assert code == 2
    line = one_line(err)
    assert "unknown backend 'warp'; available: " in line and "threads" in line


def test_store_that_is_not_a_store(work: Path, capsys: Any) -> None:
    (work / "notastore").mkdir()
    (work / "notastore" / "data.txt").write_text("x")
    code, _, err = cli(capsys, "run", "pipeline.py", "--store", "notastore")
    assert code == 2 and "not a flowkit store" in one_line(err)


def test_unknown_command(capsys: Any) -> None:
    code, _, err = cli(capsys, "launch")
    assert code == 2 and "unknown command 'launch'" in one_line(err)


# -- exit 1: a task failed -------------------------------------------------------------------


def test_failed_task_exits_1_naming_task_node_attempts_and_run(work: Path, capsys: Any) -> None:
    code, out, err = cli(capsys, "run", "failing.py", "--store", "s")
    assert code == 1 and out == ""
    assert "Traceback" not in err
    # the retry is logged as a warning first
    assert err.startswith("flowkit: WARNING: task `boom` (node `boom`) attempt 1 failed")
    first = err.splitlines()[1]
    assert first.startswith("flowkit run: task `boom` (node `boom`) failed after 2 attempt(s)")
    assert "ValueError: bad value 42" in first
    run_id = first.split(" in run ")[1].split(":")[0]
    assert f"run {run_id} failed in" in err and "1 task run, 0 cached, 1 failed" in err
    assert f"flowkit runs show {run_id} --store s" in err

    code, out, _ = cli(capsys, "runs", "show", run_id, "--store", "s")
    assert code == 0
    assert "status    failed" in out
    rows = {row.split()[0]: row.split()[1:5] for row in out.split("\n\n")[1].splitlines()}
    assert rows["boom"] == ["boom", "failed", "no", "2"]
    assert rows["prepare"] == ["prepare", "succeeded", "no", "1"]
    assert "boom: ValueError: bad value 42" in out


def test_failed_task_with_traceback(work: Path, capsys: Any) -> None:
    code, _, err = cli(capsys, "run", "failing.py", "--store", "s", "--traceback")
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert 'raise ValueError(f"bad value {x}")' in err


# -- runs ------------------------------------------------------------------------------------


def test_runs_list_and_show(work: Path, capsys: Any) -> None:
    for n in ("2", "3"):
        assert cli(capsys, "run", "pipeline.py", "--store", "s", "--n", n)[0] == 0
    code, out, _ = cli(capsys, "runs", "list", "--store", "s")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "RUN", "ID", "WORKFLOW", "STATUS", "STARTED", "DURATION", "RUN", "CACHED", "FAILED"
    ]  # fmt: skip
    assert len(lines) == 3
    newest = lines[1].split()
    # the second run (n=3) finds square(0) and square(1) cached by the first (n=2)
    assert newest[1:3] == ["pipeline", "succeeded"] and newest[-3:] == ["3", "2", "0"]
    assert lines[2].split()[-3:] == ["4", "0", "0"]

    code, out, _ = cli(capsys, "runs", "list", "--store", "s", "--limit", "1")
    assert len(out.splitlines()) == 2

    run_id = newest[0]
    code, out, _ = cli(capsys, "runs", "show", run_id[:22], "--store", "s")  # a unique prefix
    assert code == 0
    assert f"run       {run_id}" in out and "inputs    n=3, offset=0.5" in out
    assert "tasks     3 run, 2 cached, 0 failed" in out
    table = out.split("\n\n", 1)[1].splitlines()
    assert table[0].split() == [
        "NODE", "TASK", "STATUS", "CACHED", "ATTEMPTS", "DURATION", "KEPT", "LOGS"
    ]  # fmt: skip
    rows = {row.split()[0]: row.split()[1:] for row in table[1:]}
    assert sorted(rows) == ["load", "square[0]", "square[1]", "square[2]", "total"]
    assert rows["square[0]"][2] == "yes" and rows["square[2]"][2] == "no"  # cached or not
    assert rows["square[0]"][-2:] == ["yes", "-"]  # its output kept, nothing logged

    code, out, _ = cli(capsys, "runs", "show", run_id, "--store", "s", "--json")
    doc = json.loads(out)
    assert doc["run"]["id"] == run_id and len(doc["tasks"]) == 5


def test_runs_show_unknown_id_exits_2(work: Path, capsys: Any) -> None:
    assert cli(capsys, "run", "pipeline.py", "--store", "s")[0] == 0
    code, _, err = cli(capsys, "runs", "show", "nope", "--store", "s")
    assert code == 2
    assert "no run 'nope' in store" in one_line(err)
    code, _, err = cli(capsys, "runs", "show", "nope", "--store", "elsewhere")
    assert code == 2 and "there is no store at elsewhere" in one_line(err)


def test_runs_list_without_a_store_creates_nothing(work: Path, capsys: Any) -> None:
    code, out, err = cli(capsys, "runs", "list")
    assert code == 0 and out == "" and "no runs in ./.flowkit" in err
    assert not (work / ".flowkit").exists()
    code, _, err = cli(capsys, "runs", "list", "--limit", "0")
    assert code == 2 and "expected a positive integer" in one_line(err)


# -- graph -----------------------------------------------------------------------------------


def test_graph_in_three_formats(work: Path, capsys: Any) -> None:
    code, out, _ = cli(capsys, "graph", "pipeline.py")
    assert code == 0
    assert out.splitlines()[0] == "workflow pipeline(n, offset)"
    assert "  square: map square(x <- load) -> list[int]" in out
    code, out, _ = cli(capsys, "graph", "pipeline.py", "--format", "mermaid")
    assert out.startswith("flowchart LR") and "n_load -->|x| n_square" in out
    code, out, _ = cli(capsys, "graph", "two.py:second", "--format", "dot")
    assert out.startswith('digraph "second_wf" {') and '"inc" -> "inc_2"' in out
    code, _, err = cli(capsys, "graph", "pipeline.py", "--format", "svg")
    assert code == 2 and "invalid choice: 'svg'" in one_line(err)


# -- cache explain ---------------------------------------------------------------------------


def explain(capsys: Any, task: str, *args: str) -> str:
    code, out, err = cli(capsys, "cache", "explain", "pipeline.py", task, "--store", "s", *args)
    assert code == 0, err
    return out


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_explain_hit_then_helper_and_constant_changes(work: Path, capsys: Any) -> None:
    assert cli(capsys, "run", "pipeline.py", "--store", "s", "--n", "2")[0] == 0
    out = explain(capsys, "total", "--n", "2")
    assert out.startswith("task `total`: hit\n  key ")
    out = explain(capsys, "square", "--n", "2")
    assert "task `square` (node `square[0]`): hit" in out
    assert "task `square` (node `square[1]`): hit" in out

    edit(work / "pipeline.py", "return x * FACTOR", "return x * FACTOR + 1")
    out = explain(capsys, "square", "--n", "2")
    assert "task `square` (node `square[0]`): miss\n  - helper `clean` changed\n" in out
    assert "compared with the nearest earlier entry" in out
    assert "task `load`: hit" in explain(capsys, "load", "--n", "2")  # load does not call it
    out = explain(capsys, "total", "--n", "2")  # its input comes from the changed square
    assert "task `total`: cannot tell" in out
    assert (
        "input `xs` comes from `square`, which has no cache entry for these inputs: "
        "run the workflow first" in out
    )

    edit(work / "pipeline.py", "return x * FACTOR + 1", "return x * FACTOR")
    edit(work / "pipeline.py", "FACTOR = 3", "FACTOR = 4")
    out = explain(capsys, "square", "--n", "2")
    assert "miss\n  - constant `FACTOR` changed\n" in out


def test_explain_input_changed_and_upstream_missing(work: Path, capsys: Any) -> None:
    assert cli(capsys, "run", "pipeline.py", "--store", "s", "--n", "2")[0] == 0
    out = explain(capsys, "load", "--n", "3")
    assert out.startswith("task `load`: miss\n  - input `n` changed\n")
    out = explain(capsys, "total", "--n", "3")
    assert "task `total`: cannot tell" in out
    assert (
        "input `xs` comes from `square`, whose input `x` (mapped over) comes from `load`, "
        "which has no cache entry for these inputs: run the workflow first" in out
    )
    assert "the code and the known inputs match the newest entry" in out
    out = explain(capsys, "total", "--n", "2", "--offset", "1")
    assert "task `total`: miss\n  - input `offset` changed" in out


def test_explain_by_node_id_and_before_any_run(work: Path, capsys: Any) -> None:
    out = explain(capsys, "load")
    assert "task `load`: miss\n  - no earlier entry of task `load` in the store" in out
    assert cli(capsys, "run", "pipeline.py", "--store", "s")[0] == 0
    out = explain(capsys, "square")
    assert out.count(": hit") == 4  # n defaults to 4: one report per map item


def test_explain_unknown_and_uncached_tasks(work: Path, capsys: Any) -> None:
    code, _, err = cli(capsys, "cache", "explain", "pipeline.py", "nope", "--store", "s")
    assert code == 2
    line = one_line(err)
    assert line.startswith("flowkit cache explain: error:")
    assert "has no task or node 'nope'; tasks: load, square, total" in line
    code, out, _ = cli(capsys, "cache", "explain", "failing.py", "boom", "--store", "s")
    assert code == 0
    assert "task `boom`: not cached\n  - task `boom` is not cached; declare it with" in out
    code, _, err = cli(capsys, "cache", "explain", "pipeline.py")
    assert code == 2 and "missing TASK" in one_line(err)


# -- cache gc --------------------------------------------------------------------------------


def test_cache_gc(work: Path, capsys: Any) -> None:
    assert cli(capsys, "run", "pipeline.py", "--store", "s", "--n", "2")[0] == 0
    code, out, _ = cli(capsys, "cache", "gc", "--store", "s")
    assert code == 0
    assert out.startswith("removed 0 cache entries and 0 objects (0 bytes) older than 30 days")
    code, out, _ = cli(capsys, "cache", "gc", "--store", "s", "--older-than", "0")
    assert code == 0 and out.startswith("removed 4 cache entries and ")
    assert "task `load`: miss" in explain(capsys, "load", "--n", "2")
    code, _, err = cli(capsys, "cache", "gc", "--older-than", "-1")
    assert code == 2 and "expected a number of days >= 0" in one_line(err)
    code, _, err = cli(capsys, "cache", "gc", "--store", "nowhere")
    assert code == 0 and "no store at nowhere" in err


# -- typed parameter parsing -----------------------------------------------------------------


class Color:
    pass


@pytest.mark.parametrize(
    ("text", "tp", "value"),
    [
        ("5", int, 5),
        (" -3 ", int, -3),
        ("0.5", float, 0.5),
        ("2", float, 2.0),
        ("1e-3", float, 0.001),
        ("true", bool, True),
        ("No", bool, False),
        ("1", bool, True),
        ("0", bool, False),
        ("off", bool, False),
        ("hello world", str, "hello world"),
        ("", str, ""),
        ("data/x.csv", Path, Path("data/x.csv")),
        ("none", Optional[int], None),  # noqa: UP045
        ("null", int | None, None),
        ("7", int | None, 7),
        ("7", Union[int, str], 7),  # noqa: UP007
        ("seven", Union[int, str], "seven"),  # noqa: UP007
        ("2,4,8", list[int], [2, 4, 8]),
        ("[2, 4, 8]", list[int], [2, 4, 8]),
        ("", list[int], []),
        ("a, b", list[str], ["a", "b"]),
        ("0.5,1", list[float], [0.5, 1.0]),
        ("1,2", tuple[int, ...], (1, 2)),
        ("1,x", tuple[int, str], (1, "x")),
        ("[1, 2]", list, [1, 2]),
        ('{"a": 1, "b": 2.5}', dict[str, float], {"a": 1.0, "b": 2.5}),
        ('{"1": [1, 2]}', dict[int, list[int]], {1: [1, 2]}),
        ('{"a": null}', dict[str, Optional[int]], {"a": None}),  # noqa: UP045
        ("[[1, 2], [3]]", list[list[int]], [[1, 2], [3]]),
        ('["a", "b"]', list[Path], [Path("a"), Path("b")]),
        ("5", Any, 5),
        ('{"k": 1}', Any, {"k": 1}),
        ("plain", Any, "plain"),
        ("b", Literal["a", "b"], "b"),
    ],
)
def test_parse_value(text: str, tp: Any, value: Any) -> None:
    got = parse_value(text, tp)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("text", "tp"),
    [
        ("x", int),
        ("2.5", int),
        ("abc", float),
        ("maybe", bool),
        ("", Path),
        ("none", int),
        ("1,a", list[int]),
        ("[1, true]", list[int]),
        ('{"a": "x"}', dict[str, float]),
        ("[1]", dict[str, int]),
        ("{bad json", dict[str, int]),
        ("1,2,3", tuple[int, int]),
        ("x", Color),
        ("c", Literal["a", "b"]),
    ],
)
def test_parse_value_rejects(text: str, tp: Any) -> None:
    with pytest.raises(ParamError):
        parse_value(text, tp)


def test_parse_value_files_and_enums() -> None:
    import enum

    class Mode(enum.Enum):
        FAST = "fast"
        SLOW = "slow"

    assert parse_value("SLOW", Mode) is Mode.SLOW
    assert parse_value("fast", Mode) is Mode.FAST
    assert parse_value("/tmp/a.csv", fk.File) == fk.File("/tmp/a.csv")
    assert parse_value("/tmp/d", fk.Directory) == fk.Directory("/tmp/d")


def test_option_names() -> None:
    assert option_names("n") == ["--n"]
    assert option_names("max_depth") == ["--max_depth", "--max-depth"]
    assert option_names("store") == ["--input-store"]  # reserved by the command itself


# -- output and progress ---------------------------------------------------------------------


def test_format_output_shortens_big_values() -> None:
    assert format_output(42) == "42"
    assert format_output({"a": [1, 2]}) == "{'a': [1, 2]}"
    assert format_output(list(range(1000))).endswith(", ...]")

    class Big:
        def __repr__(self) -> str:
            return "\n".join(f"row {i}" for i in range(100))

    text = format_output(Big())
    assert text.splitlines()[39] == "row 39"
    assert text.endswith("(689 characters in all, shortened)")


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(node: str, *, cached: bool = False) -> TaskRecord:
    return TaskRecord(name=node.split("[")[0], node=node, cached=cached)


def start(line: ProgressLine, run: Run, *nodes: str) -> list[TaskRecord]:
    """What the engine does: create the calls' records (all of a map's items at once), then
    start them."""
    records = [record(n) for n in nodes]
    run.tasks.extend(records)
    for r in records:
        line.on_task_start(r)
    return records


def test_progress_line_draws_in_place_and_clears() -> None:
    stream, clock = FakeTTY(), Clock()
    run = Run(id="r", workflow="pipeline")
    # the graph of the fixture pipeline has 3 nodes: load, square (a map) and total
    line = ProgressLine(stream, _pipeline_graph(), clock=clock, ticker=False, width=200)
    line.on_run_start(run)
    [load] = start(line, run, "load")
    assert stream.getvalue() == ""  # quiet during the first second
    clock.now += 1.5
    load.cached = True
    line.on_task_end(load, fk.Output(lambda: None, int))
    assert stream.getvalue() == "\r[1.50s] 1/3 done, 0 running, 1 cached\x1b[K"
    items = start(line, run, "square[0]", "square[1]", "square[2]")
    assert line.text() == "[1.50s] 1/5 done, 3 running, 1 cached"  # the map expanded
    line.on_task_error(items[0], ValueError("x"))
    clock.now += 10
    line.render()
    assert stream.getvalue().endswith("\r[11.5s] 1/5 done, 2 running, 1 cached, 1 failed\x1b[K")
    line.on_run_end(run)
    assert stream.getvalue().endswith("\r\x1b[K")
    line.render()  # nothing is drawn after the end
    assert stream.getvalue().endswith("\r\x1b[K")


def test_progress_line_is_cut_to_the_terminal_width() -> None:
    stream, clock = FakeTTY(), Clock()
    line = ProgressLine(stream, clock=clock, ticker=False, delay=0, width=20)
    run = Run(id="r", workflow="w")
    line.on_run_start(run)
    start(line, run, "a")
    assert stream.getvalue() == "\r[0.00s] 0/1 done, 1\x1b[K"


def test_progress_only_on_a_terminal() -> None:
    assert progress_for(io.StringIO()) is None
    assert isinstance(progress_for(FakeTTY()), ProgressLine)


def test_progress_line_with_a_real_run_and_its_ticker(tmp_path: Path) -> None:
    stream = FakeTTY()
    line = ProgressLine(stream, _pipeline_graph(), delay=0, interval=0.01)
    run = fk.run(_pipeline_wf(), store=str(tmp_path / "s"), callbacks=[line], n=2)
    assert run.status == "succeeded"
    text = stream.getvalue()
    assert "\r[" in text and "4/4 done" in text
    assert text.endswith("\r\x1b[K")
    assert line._thread is not None and not line._thread.is_alive()


def _pipeline_wf() -> Any:
    from flowkit.cli.loading import load_workflow

    return load_workflow(str(FIXTURES / "pipeline.py"))


def _pipeline_graph() -> Any:
    return _pipeline_wf().graph


# -- the console script and python -m --------------------------------------------------------


def run_script(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWKIT_")}
    return subprocess.run(
        [str(FLOWKIT), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_console_script_exit_codes(work: Path) -> None:
    ok = run_script("run", "pipeline.py", "--store", "s", "--n", "2", "--backend", "threads",
                    cwd=work)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "9.5\n" and "4 tasks run" in ok.stderr

    failed = run_script("run", "failing.py", "--store", "s", cwd=work)
    assert failed.returncode == 1
    assert "task `boom` (node `boom`) failed after 2 attempt(s)" in failed.stderr
    assert "Traceback" not in failed.stderr

    bad = run_script("run", "pipeline.py", "--n", "x", cwd=work)
    assert bad.returncode == 2
    assert one_line(bad.stderr).startswith("flowkit run: error: argument --n: expected int")


def test_python_dash_m_flowkit(work: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWKIT_")}
    proc = subprocess.run(
        [sys.executable, "-m", "flowkit", "graph", "pipeline.py", "--format", "mermaid"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("flowchart LR")


# -- the explainer keys calls exactly as the runner does -------------------------------------


def test_explainer_keys_match_the_run_records(work: Path) -> None:
    from flowkit.cli.explain import Explainer
    from flowkit.cli.loading import load_workflow
    from flowkit.store import Store
    from flowkit.workflow import bind_inputs

    wf = load_workflow(str(work / "shapes.py:shapes"))
    run = fk.run(wf, store=str(work / "s"), n=7, verbose=True)
    recorded = {t.node: t.key for t in run.tasks}
    assert all(recorded.values())
    explainer = Explainer(wf.graph, bind_inputs(wf, (), {"n": 7}), Store(str(work / "s")))
    reports = [r for node in wf.graph for r in explainer.explain(node)]
    assert {r.node: r.key for r in reports} == recorded  # verbose is in cache_ignore
    assert {r.status for r in reports} == {"hit"}


def test_explain_version_change(work: Path, capsys: Any) -> None:
    assert cli(capsys, "run", "shapes.py:shapes", "--store", "s")[0] == 0
    edit(work / "shapes.py", 'version="v1"', 'version="v2"')
    code, out, _ = cli(capsys, "cache", "explain", "shapes.py:shapes", "inc", "--store", "s")
    assert code == 0
    assert "task `inc` (node `inc[0]`): miss\n  - version changed\n" in out
    code, out, _ = cli(capsys, "cache", "explain", "shapes.py:shapes", "double", "--store", "s")
    assert (
        "input `x` (mapped over) comes from `inc`, which has no cache entry for these inputs" in out
    )


def test_sys_exit_while_importing_is_a_usage_error(work: Path, capsys: Any) -> None:
    (work / "exits.py").write_text("import sys\n\nsys.exit(3)\n")
    code, _, err = cli(capsys, "graph", "exits.py")
    assert code == 2
    assert "exits.py called sys.exit(3) while being imported" in one_line(err)

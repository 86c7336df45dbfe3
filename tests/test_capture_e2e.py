"""Captured logs end to end: through ``fk.run`` and ``flowkit run``, in fresh interpreters.

Each scenario writes a workflow file, runs it in a new process (so the capture is installed
the way a user's process installs it, with no pytest streams or handlers), and reads what
the run recorded -- from the returned run and, in another new process, from the store.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from flowkit.cli.progress import ProgressLine
from flowkit.records import Run, TaskRecord

FLOWKIT = Path(sys.executable).parent / "flowkit"

ROUNDS = 40

CHATTY = f"""
import json, logging, sys, threading
import flowkit as fk

_both = threading.Barrier(2, timeout=60)  # both tasks run at once, line by line
log = logging.getLogger("chatty")


@fk.task
def chat(who: str, n: int) -> int:
    for i in range(n):
        _both.wait()
        print(f"{{who}} out {{i}}")
        print(f"{{who}} err {{i}}", file=sys.stderr)
        log.warning("%s log %d", who, i)
    return n


@fk.workflow
def two(n: int = {ROUNDS}) -> list[int]:
    return [chat("a", n), chat("b", n)]


if __name__ == "__main__":
    run = fk.run(two, backend="threads", store=sys.argv[1])
    logs = {{t.node: [a.logs for a in t.tries] for t in run.tasks}}
    print(json.dumps({{"id": run.id, "logs": logs}}))
"""

READ_BACK = """
import json, sys
import flowkit as fk
from flowkit.records import TaskRecord

header, tasks = fk.Store(sys.argv[1]).read_run(sys.argv[2])
records = [TaskRecord.from_dict(t) if isinstance(t, dict) else t for t in tasks]
print(json.dumps({t.node: [{"logs": a.logs, "traceback": a.traceback} for a in t.tries]
                  for t in records}))
"""


def python(script: Path, *args: str | Path, env: dict[str, str] | None = None) -> Any:
    proc = subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def write(path: Path, code: str) -> Path:
    path.write_text(textwrap.dedent(code))
    return path


def read_back(tmp_path: Path, store: Path, run_id: str) -> dict[str, list[dict[str, Any]]]:
    proc = python(write(tmp_path / "read_back.py", READ_BACK), store, run_id)
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def chatty_logs(who: str, rounds: int = ROUNDS) -> str:
    return "".join(
        f"{who} out {i}\n{who} err {i}\nWARNING chatty: {who} log {i}\n" for i in range(rounds)
    )


def test_two_chatty_tasks_on_threads_never_get_each_others_lines(tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = python(write(tmp_path / "chatty.py", CHATTY), store)
    *_, last = proc.stdout.splitlines()
    result = json.loads(last)
    assert result["logs"] == {"chat": [chatty_logs("a")], "chat_2": [chatty_logs("b")]}
    stored = read_back(tmp_path, store, result["id"])
    assert [a["logs"] for a in stored["chat"]] == [chatty_logs("a")]
    assert [a["logs"] for a in stored["chat_2"]] == [chatty_logs("b")]
    # live: every task line on stderr, whole, under its own node's prefix
    live = [line for line in proc.stderr.splitlines() if line.startswith("[chat")]
    assert len(live) == 2 * 3 * ROUNDS
    for line in live:
        prefix, _, text = line.partition("] ")
        who = {"[chat": "a", "[chat_2": "b"}[prefix]
        assert text.startswith(f"{who} ") or text.startswith(f"WARNING chatty: {who} ")


RETRIED = """
import json, os, sys
import flowkit as fk


@fk.task(retries=1, retry_delay=0)
def flaky(marker: str) -> int:
    first = not os.path.exists(marker)
    print("try", "1" if first else "2")
    if first:
        open(marker, "w").close()
        raise ValueError("first try fails")
    return 7


@fk.task
def square(x: int) -> int:
    print(f"squaring {x}")
    return x * x


@fk.task
def broken(x: int) -> int:
    print("about to break")
    raise RuntimeError("always")


@fk.workflow
def steps(marker: str) -> list[int]:
    return square.map(x=[1, 2, flaky(marker)])


@fk.workflow
def fails() -> int:
    return broken(1)


if __name__ == "__main__":
    store = sys.argv[1]
    run = fk.run(steps, backend="local", store=store, marker=sys.argv[2])
    try:
        fk.run(fails, backend="local", store=store)
    except fk.TaskFailedError as e:
        failed = e.run_id
    print(json.dumps({"ok": run.id, "failed": failed}))
"""


def test_each_attempt_keeps_its_own_logs_and_traceback(tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = python(write(tmp_path / "retried.py", RETRIED), store, tmp_path / "marker")
    ids = json.loads(proc.stdout.splitlines()[-1])
    ok = read_back(tmp_path, store, ids["ok"])
    first, second = ok["flaky"]
    assert first["logs"] == "try 1\n" and "ValueError: first try fails" in first["traceback"]
    assert second == {"logs": "try 2\n", "traceback": None}
    assert [ok[f"square[{i}]"][0]["logs"] for i in range(3)] == [
        "squaring 1\n",
        "squaring 2\n",
        "squaring 7\n",
    ]
    for i, x in enumerate([1, 2, 7]):
        assert f"[square[{i}]] squaring {x}\n" in proc.stderr  # live, under the item's id
    [failed] = read_back(tmp_path, store, ids["failed"])["broken"]
    assert failed["logs"] == "about to break\n"
    assert "RuntimeError: always" in failed["traceback"]


CLI_WF = """
import logging
import flowkit as fk


@fk.task
def noisy(n: int) -> int:
    print(f"noisy stdout {n}")
    logging.getLogger("noisy").warning("noisy log %d", n)
    return n + 1


@fk.workflow
def main(n: int = 1, m: int = 11) -> list[int]:
    return [noisy(n), noisy(m)]
"""


def flowkit_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWKIT_")}
    return subprocess.run(
        [str(FLOWKIT), "run", str(tmp_path / "wf.py"), "--store", str(tmp_path / "s"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def test_flowkit_run_prints_only_the_result_on_stdout(tmp_path: Path) -> None:
    write(tmp_path / "wf.py", CLI_WF)
    proc = flowkit_run(tmp_path, "--backend", "threads", "--n", "4", "--m", "14")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[5, 15]\n"
    lines = proc.stderr.splitlines()
    assert "[noisy] noisy stdout 4" in lines and "[noisy_2] noisy stdout 14" in lines
    assert "[noisy] WARNING noisy: noisy log 4" in lines
    assert not any(line.startswith("noisy") for line in lines)  # each line once, prefixed


def test_flowkit_run_quiet_shows_no_task_lines_but_keeps_them(tmp_path: Path) -> None:
    write(tmp_path / "wf.py", CLI_WF)
    proc = flowkit_run(tmp_path, "--quiet", "--backend", "threads")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[2, 12]\n"
    assert "noisy" not in proc.stderr
    run_id = proc.stderr.split()[1]  # "run <id> succeeded in ..."
    stored = read_back(tmp_path, tmp_path / "s", run_id)
    assert stored["noisy"][0]["logs"] == "noisy stdout 1\nWARNING noisy: noisy log 1\n"


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_lines_are_printed_above_the_progress_line() -> None:
    stream = FakeTTY()
    line = ProgressLine(stream, ticker=False, delay=0, width=80, clock=lambda: 100.0)
    line.print_above("[job] before the run\n")  # not started: nothing to erase or draw
    assert stream.getvalue() == "[job] before the run\n"
    run = Run(id="r", workflow="w")
    line.on_run_start(run)
    line.on_task_start(TaskRecord(name="job", node="job"))
    progress = "\r[0.00s] 0/1 done, 1 running, 0 cached\x1b[K"
    assert stream.getvalue() == "[job] before the run\n" + progress
    line.print_above("[job] a line\n")
    assert stream.getvalue().endswith(progress + "\r\x1b[K[job] a line\n" + progress)
    line.on_run_end(run)
    line.print_above("[job] after\n")  # ended: the line stays erased
    assert stream.getvalue().endswith("\r\x1b[K[job] after\n")

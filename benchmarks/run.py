#!/usr/bin/env python3
"""Run the standard workloads (W0-W6 + the 100k scale run) and print the table.

    python benchmarks/run.py                 # everything: ~10 minutes on 2 cores
    python benchmarks/run.py --only W3       # one workload (+ the floors/W0 it is compared with)
    python benchmarks/run.py --quick         # 1 run per entry, no warm-up: a sanity pass
    python benchmarks/run.py --list          # the entries

Every measurement is a fresh process (``python <script>``), timed from outside with
``os.wait4``: wall from a monotonic clock around fork..reap, cpu = user+sys of the child
and its reaped descendants, peak RSS = the largest of them; the process group is killed
afterwards. Per workload: each entry's state ($BENCH_STATE) is wiped, fill runs (W3, W4
hit) and 1 warm-up per entry run unmeasured, then the entries are interleaved round by
round (A B C A B C ...) so the drift of a shared machine hits all of them alike.
Results: ``benchmarks/results/`` (runs.jsonl, summary.json, table.txt, report.md, logs/).
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any, NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import matrix  # noqa: E402
import report  # noqa: E402
from common import disk_bytes, du  # noqa: E402
from matrix import Entry  # noqa: E402

TIMEOUT_S = float(os.environ.get("BENCH_TIMEOUT", 900))
NOT_INHERITED = ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONPROFILEIMPORTTIME")


def command(e: Entry, fill: bool = False) -> tuple[list[str], dict[str, str]]:
    argv = [sys.executable]
    argv += [os.path.join(HERE, e.script), *e.args] if e.script else ["-c", "pass"]
    env = dict(os.environ)
    # A user's interpreter writes .pyc files and buffers stdout; a sandbox's settings must
    # not make every measured run recompile numpy/sklearn/flowkit from source.
    for var in NOT_INHERITED:
        env.pop(var, None)
    env.update(e.env)
    env["BENCH_STATE"] = matrix.state_for(e)
    env.pop("BENCH_FILL", None)
    if fill:
        env["BENCH_FILL"] = "1"
    return argv, env


def run_once(argv: list[str], env: dict[str, str], cwd: str, log_path: str) -> dict[str, Any]:
    with open(log_path, "ab") as log:
        log.write(f"\n### {' '.join(argv[1:])}\n".encode())
        log.flush()
        t0 = time.perf_counter()
        p = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        killer = threading.Timer(TIMEOUT_S, _killpg, (p.pid,))
        killer.start()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        killer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
    _killpg(p.pid)  # whatever the run left behind in its own process group (Ray)
    return {
        "wall": wall,
        "cpu": ru.ru_utime + ru.ru_stime,
        "rss_mb": ru.ru_maxrss / 1024.0,
        "rc": p.returncode,
    }


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def phases_from(log_path: str, start: int) -> list[dict[str, Any]]:
    out = []
    with open(log_path, "rb") as f:
        f.seek(start)
        for line in f.read().decode("utf-8", "replace").splitlines():
            if line.startswith("BENCH {"):
                try:
                    out.append(json.loads(line[6:]))
                except ValueError:
                    pass
    return out


def tail(path: str, n: int = 15) -> str:
    with open(path, "rb") as f:
        return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])


def load_runs(path: str) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if "wall" in r:
                results.setdefault(r["id"], []).append(r)
            elif results.get(r["id"]):  # the harness's size of the entry's state dir
                results[r["id"]][-1].update(r)
    return results


def write_outputs(out: str, F: report.Figures, machine: dict[str, str], notes: str) -> str:
    table = report.text_table(F)
    with open(os.path.join(out, "table.txt"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(report.markdown(F, machine, notes))
    return table


def rebuild(out: str) -> None:
    """Tables of an earlier session from its raw runs (machine and notes from summary.json)."""
    meta: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        with open(os.path.join(out, "summary.json")) as f:
            meta = json.load(f)
    F = report.Figures(load_runs(os.path.join(out, "runs.jsonl")))
    print(write_outputs(out, F, meta.get("machine", {}), meta.get("notes", "")))


def select(patterns: list[str]) -> tuple[list[Entry], list[str]]:
    """Entries matching the patterns (ids, globs, or workload names like W3), plus what
    their figures are computed against; minus those whose requirements are missing."""
    pats = [p.lower() for p in patterns]
    chosen = {
        e.id
        for e in matrix.E
        if any(
            fnmatch.fnmatch(e.id, p) or e.w == p or fnmatch.fnmatch(e.id, p + "/*") for p in pats
        )
    }
    todo = list(chosen)
    while todo:
        for dep in matrix.BY_ID[todo.pop()].needs():
            if dep not in chosen and dep in matrix.BY_ID:
                chosen.add(dep)
                todo.append(dep)
    keep, skipped = [], []
    for e in matrix.E:
        if e.id not in chosen:
            continue
        missing = [m for m in e.requires if importlib.util.find_spec(m) is None]
        if missing:
            skipped.append(f"{e.id} ({', '.join(missing)} not importable)")
        else:
            keep.append(e)
    return keep, skipped


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--only",
        nargs="*",
        default=["*"],
        help="entry ids, globs or workload names (W0..W6, scale)",
    )
    ap.add_argument("--quick", action="store_true", help="1 run per entry, no warm-up")
    ap.add_argument("--reps", type=int, help="override the repetitions of every entry")
    ap.add_argument("--warmup", type=int, help="override the warm-up runs of every entry")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--keep-state", action="store_true", help="leave $BENCH_STATE dirs behind")
    ap.add_argument("--list", action="store_true")
    ap.add_argument(
        "--report",
        metavar="DIR",
        help="only rebuild table.txt and report.md from DIR/runs.jsonl (an earlier session)",
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    if a.quick:
        a.reps = 1 if a.reps is None else a.reps
        a.warmup = 0 if a.warmup is None else a.warmup
    if a.report:
        rebuild(a.report)
        return 0
    sel, skipped = select(a.only)
    if a.list:
        for e in sel:
            print(f"{e.id:28} {e.script or '-c pass'} {' '.join(e.args)}  reps={e.reps}")
        for s in skipped:
            print(f"# skipped {s}")
        return 0
    session = Session(a)
    for s in skipped:
        print(f"# skipped {s}", flush=True)
    for w in matrix.WORKLOADS:
        es = [e for e in sel if e.w == w]
        if es:
            session.run_workload(w, es)
    session.write(skipped)
    return 1 if any(r["rc"] for rs in session.results.values() for r in rs) else 0


class Job(NamedTuple):
    """One measured series: a result id, its entry, how many rounds it runs, its state dir
    and its log."""

    rid: str
    entry: Entry
    reps: int
    state: str
    log: str


class Session:
    """One harness session: its options, where raw runs go, and the results so far."""

    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.logs = os.path.join(a.out, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.raw_path = os.path.join(a.out, "runs.jsonl")
        open(self.raw_path, "w").close()
        self.machine = report.machine_info()
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.t_start = time.perf_counter()

    def run_workload(self, w: str, es: list[Entry]) -> None:
        """Fill and warm up, then measure the workload's entries round by round."""
        jobs = self.plan(w, es)
        for job in jobs:
            self.warm_up(job)
        rounds = max(job.reps for job in jobs)
        for i in range(rounds):
            for job in jobs:
                if i < job.reps:
                    self.measure(job, i)
            print(f"# {w} round {i + 1}/{rounds} done", flush=True)
        for job in jobs:
            self.record_state(job)

    def plan(self, w: str, es: list[Entry]) -> list[Job]:
        """The entries, plus each per-task entry's base (its implementation's W0)
        re-measured in the same rounds, so the difference is paired; fresh state and logs."""
        rounds = max(self.a.reps or e.reps for e in es)
        plan = [(e.id, e, self.a.reps or e.reps) for e in es]
        bases = dict.fromkeys(e.base for e in es if e.per and e.base in matrix.BY_ID)
        plan += [(f"{b}@{w}", matrix.BY_ID[b], rounds) for b in bases]
        jobs = []
        for rid, e, reps in plan:
            st = matrix.state_for(e)
            shutil.rmtree(st, ignore_errors=True)
            os.makedirs(st, exist_ok=True)
            log = os.path.join(self.logs, rid.replace("/", "_") + ".log")
            open(log, "wb").close()
            jobs.append(Job(rid, e, reps, st, log))
        return jobs

    def warm_up(self, job: Job) -> None:
        """The fill and warm-up runs of an entry, not counted."""
        e = job.entry
        if e.fill:
            r = run_once(*command(e, fill=True), job.state, job.log)
            print(f"# fill {job.rid}: {r['wall']:.2f}s rc={r['rc']}", flush=True)
            if r["rc"]:
                print(tail(job.log), flush=True)
        for _ in range(e.warmup if self.a.warmup is None else self.a.warmup):
            run_once(*command(e), job.state, job.log)

    def measure(self, job: Job, i: int) -> None:
        """One measured run of round ``i``, appended to the results and the raw runs."""
        start = os.path.getsize(job.log)
        r = run_once(*command(job.entry), job.state, job.log)
        r["phases"] = phases_from(job.log, start)
        r.update(id=job.rid, round=i)
        self.results.setdefault(job.rid, []).append(r)
        with open(self.raw_path, "a") as f:
            f.write(json.dumps(r) + "\n")
        if r["rc"]:
            print(
                f"# FAILED {job.rid} round {i + 1} rc={r['rc']} (log {job.log}):\n{tail(job.log)}",
                flush=True,
            )

    def record_state(self, job: Job) -> None:
        """What the entry left on disk (not timed); then its state dir goes."""
        size = {"id": job.rid, "state_bytes": du(job.state), "state_disk": disk_bytes(job.state)}
        if self.results.get(job.rid):
            self.results[job.rid][-1].update(size)
        with open(self.raw_path, "a") as f:
            f.write(json.dumps(size) + "\n")
        if not self.a.keep_state:
            shutil.rmtree(job.state, ignore_errors=True)

    def write(self, skipped: list[str]) -> None:
        """table.txt, report.md and summary.json."""
        out = self.a.out
        F = report.Figures(self.results)
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        notes = (
            f"Session: {time.perf_counter() - self.t_start:.0f} s, load average at the end "
            f"{load}; command: {' '.join(sys.argv)}"
        )
        if skipped:
            notes += "\n\nSkipped (not importable): " + "; ".join(skipped)
        print(write_outputs(out, F, self.machine, notes))
        summary = {
            "machine": self.machine,
            "notes": notes,
            "summaries": F.S,
            "targets": report.targets(F),
            "skipped": skipped,
        }
        with open(os.path.join(out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
        print(f"# wrote {out}/(runs.jsonl, summary.json, table.txt, report.md)")


if __name__ == "__main__":
    sys.exit(main())

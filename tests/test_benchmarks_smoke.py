"""Smoke test of benchmarks/: every workload script at tiny sizes, correctness only.

Each script runs in a subprocess exactly as the harness runs it (fresh interpreter,
``$BENCH_STATE`` in a temp dir, sizes shrunk through the BENCH_* environment variables).
The scripts assert their own results (W1 = N, W2/W3/W5 = sum of squares, W4 column sum,
W6 accuracy > 0.8); here we also check the cache workloads ran no task body on a hit.
No timing assertions.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
TINY = {
    "BENCH_N_W1": "5",
    "BENCH_N_W2": "20",
    "BENCH_N_W5": "10",
    "BENCH_N_SCALE": "300",
    "BENCH_W4_ROWS": "1000",
    "BENCH_WORKERS": "2",
}


def run_script(
    tmp_path: Path, script: str, *args: str, fill: bool = False, timeout: float = 120, **env: str
) -> list[dict[str, Any]]:
    """Run one benchmark script; return its ``run`` phase lines (fails on a non-zero exit)."""
    e = dict(os.environ)
    e.update(TINY)
    e["BENCH_STATE"] = str(tmp_path / "state")
    e.pop("BENCH_FILL", None)
    e.update(env)
    if fill:
        e["BENCH_FILL"] = "1"
    os.makedirs(e["BENCH_STATE"], exist_ok=True)
    p = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=e["BENCH_STATE"],  # as the harness runs it
        env=e,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert p.returncode == 0, f"{script} {args} failed:\n{p.stdout}\n{p.stderr}"
    lines = [json.loads(ln[6:]) for ln in p.stdout.splitlines() if ln.startswith("BENCH {")]
    return [ln for ln in lines if ln["phase"] == "run"]


@pytest.mark.parametrize("script", ["plain_w0.py", "flowkit_w0.py"])
def test_w0_imports_and_defines(tmp_path: Path, script: str) -> None:
    run_script(tmp_path, script)


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("plain_w1.py", ()),
        ("flowkit_w1.py", ()),
        ("plain_w2.py", ("threads",)),
        ("plain_w2.py", ("serial",)),
        ("flowkit_w2.py", ("threads",)),
        ("flowkit_w2.py", ("local",)),
    ],
)
def test_w1_w2_cold_and_warm_runs(tmp_path: Path, script: str, args: tuple[str, ...]) -> None:
    runs = run_script(tmp_path, script, *args, BENCH_REPEAT="2")
    assert [r["rep"] for r in runs] == [0, 1]


def test_w1_w2_flowkit_record_every_task(tmp_path: Path) -> None:
    assert run_script(tmp_path, "flowkit_w1.py")[0]["tasks"] == 5
    assert run_script(tmp_path, "flowkit_w2.py", "threads")[0]["tasks"] == 21


@pytest.mark.parametrize("mode", ["os", "fsspec"])
def test_w3_floor_hits_after_fill(tmp_path: Path, mode: str) -> None:
    assert run_script(tmp_path, "plain_w3.py", mode)[0]["executed"] == 21
    assert run_script(tmp_path, "plain_w3.py", mode)[0]["executed"] == 0


def test_w3_flowkit_hit_runs_execute_no_body(tmp_path: Path) -> None:
    fill = run_script(tmp_path, "flowkit_w3.py", fill=True)[0]
    assert fill["executed"] == 21 and fill["cached"] == 0 and fill["cache_bytes"] > 0
    for _ in range(2):  # every new process is all hits (the script asserts it too)
        hit = run_script(tmp_path, "flowkit_w3.py")[0]
        assert hit["executed"] == 0 and hit["cached"] == 21


@pytest.mark.parametrize("mode", ["inproc", "parquet", "feather", "feather_lz4", "pickle"])
def test_w4_floors(tmp_path: Path, mode: str) -> None:
    run = run_script(tmp_path, "plain_w4.py", mode)[0]
    assert (run["bytes"] > 0) == (mode != "inproc")


def test_w4_flowkit_cold_persists_and_hit_rerun_reads(tmp_path: Path) -> None:
    cold = run_script(tmp_path, "flowkit_w4.py", "cold")[0]
    assert cold["executed"] == 2 and cold["bytes"] > 1000 * 2 * 8
    hit_state = str(tmp_path / "hit-state")  # the harness gives each entry its own state
    fill = run_script(tmp_path, "flowkit_w4.py", "hit", fill=True, BENCH_STATE=hit_state)[0]
    assert fill["executed"] == 2
    hit = run_script(tmp_path, "flowkit_w4.py", "hit", BENCH_STATE=hit_state)[0]
    assert hit["executed"] == 0 and hit["cached"] == 2
    # cold wipes its store first: it writes again instead of hitting
    assert run_script(tmp_path, "flowkit_w4.py", "cold")[0]["executed"] == 2


@pytest.mark.parametrize("script", ["plain_w6.py", "flowkit_w6.py"])
def test_w6_pipeline(tmp_path: Path, script: str) -> None:
    assert run_script(tmp_path, script)[0]["test_acc"] > 0.8


def test_scale_run_reports_memory_per_node(tmp_path: Path) -> None:
    run = run_script(tmp_path, "flowkit_scale.py")[0]
    assert run["tasks"] == 301 and run["kb_per_node"] >= 0


@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None or importlib.util.find_spec("flowkit_ray") is None,
    reason="ray / flowkit-ray not installed",
)
def test_w5_flowkit_on_local_ray(tmp_path: Path) -> None:
    runs = run_script(tmp_path, "flowkit_w5.py", BENCH_RAY_CPUS="1", timeout=180)
    assert [r["rep"] for r in runs] == [0, 1]


def test_harness_runs_a_workload_and_reports_targets(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = dict(os.environ, **TINY, BENCH_STATE_ROOT=str(tmp_path / "state"))
    p = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--only", "W1", "--quick", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "W1 chain, per task" in p.stdout
    summary = json.loads((out / "summary.json").read_text())
    s = summary["summaries"]
    # the W0 entries the per-task figure is computed against were measured alongside
    for k in ("w0/pass", "w0/flowkit", "w1/plain", "w1/flowkit"):
        assert s[k]["n"] == 1 and s[k]["bad"] == 0, k
    target = next(t for t in summary["targets"] if t[0] == "W1 chain, per task")
    assert target[3] in ("met", "NOT MET")
    assert (out / "report.md").read_text().startswith("## Targets")

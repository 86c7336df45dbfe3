"""``fk.runs`` and ``flowkit runs`` on a run made on Ray: a driver process runs the workflow on
the two-node loopback cluster, then fresh processes read it back from the store alone.

The map items ask for the worker node's (fake) GPU, so their outputs, logs and the traceback
of a failed attempt come from a worker on the second node.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from raycluster import RayCluster

FLOWKIT = Path(sys.executable).parent / "flowkit"

FLOW = """
import os, sys
import flowkit as fk

FLAGS = sys.argv[2] if __name__ == "__main__" else ""

@fk.task
def load(n: int) -> list[int]:
    return list(range(n))

@fk.task(resources=fk.Resources(gpus=1), retries=1)
def square(x: int) -> int:
    print(f"square {x} in pid {os.getpid()}", flush=True)
    flag = os.path.join(FLAGS, f"failed-{x}")  # workers do not get the driver's environment
    if x == 1 and not os.path.exists(flag):
        open(flag, "w").close()
        raise RuntimeError(f"square({x}) fails once")
    return x * x

@fk.workflow
def pipeline(n: int) -> list[int]:
    return square.map(x=load(n))

run = fk.run(pipeline, n=3, store=sys.argv[1], backend="ray")
print("RUN", run.id)
"""


def test_a_ray_run_read_back_in_fresh_processes(tmp_path: Path, ray_cluster: RayCluster) -> None:
    flags = tmp_path / "flags"
    flags.mkdir()
    script = tmp_path / "flow.py"
    script.write_text(textwrap.dedent(FLOW))
    store = str(tmp_path / "store")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWKIT_")}
    env.update(RAY_ADDRESS=ray_cluster.address, FLOWKIT_QUIET="1")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
        )

    done = run(sys.executable, str(script), store, str(flags))
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RUN ")]
    assert lines, done.stdout + done.stderr
    run_id = lines[-1].split()[1]

    logs = run(str(FLOWKIT), "runs", "logs", run_id, "square[1]", "--store", store)
    assert logs.returncode == 0, logs.stderr
    first, second = logs.stdout.split("[square[1]] attempt 2\n")
    assert first.startswith("[square[1]] attempt 1 (failed)\nsquare 1 in pid ")
    assert "RuntimeError: square(1) fails once" in first and "Traceback" in first
    assert second.startswith("square 1 in pid ")
    assert str(os.getpid()) not in logs.stdout  # printed by a worker, not this process

    output = run(str(FLOWKIT), "runs", "output", run_id[:22], "--store", store)
    assert (output.returncode, output.stdout.split()) == (0, ["[", "0,", "1,", "4", "]"])

    read = run(
        sys.executable,
        "-c",
        "import sys; from flowkit import runs; r = runs.get(sys.argv[1], store=sys.argv[2]); "
        "t = r['square[1]']; print(r.status, r.backend, t.output, len(t.attempts), "
        "t.attempts[0].status, t.attempts[1].peak_rss is not None)",
        run_id,
        store,
    )
    assert read.stdout.split() == ["succeeded", "ray", "1", "2", "failed", "True"], read.stderr

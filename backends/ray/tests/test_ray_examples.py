"""The ML lifecycle example end to end on the two-node Ray test cluster, as a user runs it:
``python examples/ml_lifecycle.py --backend ray`` with ``RAY_ADDRESS`` pointing at the cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from raycluster import RayCluster, ray_env

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "ml_lifecycle.py"


def test_ml_lifecycle_example_on_the_cluster(ray_cluster: RayCluster, tmp_path: Path) -> None:
    env = ray_env()
    env["RAY_ADDRESS"] = ray_cluster.address
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--backend",
            "ray",
            "--store",
            str(tmp_path / "store"),
            "--tracking-uri",
            f"sqlite:///{tmp_path / 'mlflow.db'}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "on ray: succeeded" in proc.stdout, proc.stdout
    assert "action: promoted; production serves v2" in proc.stdout, proc.stdout
    assert "drift: yes" in proc.stdout, proc.stdout

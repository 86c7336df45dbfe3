"""The Ray test cluster's description and helpers, importable by the test modules.

(Kept out of ``conftest.py``: pytest may import another folder's ``conftest`` under the same
module name when this folder runs together with the project's ``tests/``.)
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

GiB = 2**30
MiB = 2**20


@dataclass(frozen=True)
class RayCluster:
    address: str  # "127.0.0.1:PORT" of the GCS
    client: str  # "ray://127.0.0.1:PORT" of the Ray Client server
    head_node_id: str
    worker_node_id: str
    cluster: Any
    temp_dir: str

    def logs(self, pattern: str, tail: int = 2000) -> str:
        """The ends of the cluster's log files matching ``pattern`` (for failure messages)."""
        import glob

        out = []
        for path in sorted(glob.glob(os.path.join(self.temp_dir, "session_*", "logs", pattern))):
            with open(path, errors="replace") as f:
                out.append(f"--- {os.path.basename(path)}\n{f.read()[-tail:]}")
        return "\n".join(out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_env() -> dict[str, str]:
    """Environment for a subprocess that talks to the cluster."""
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    return env

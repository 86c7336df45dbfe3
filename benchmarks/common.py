"""Shared helpers for the benchmark scripts (stdlib; numpy/pyarrow/sklearn imported lazily).

Adapted from the peer baseline's ``common.py`` (a study outside this repository): same
sizes, same result checks, same ``BENCH {json}`` phase lines, so figures are comparable with
the peer table. Every size can be shrunk through an environment variable (the smoke test
does), and ``$BENCH_STATE`` is the only place a script writes to.

The W0 scripts do not import this module (its import would be charged to W0).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import time
from typing import Any

perf = time.perf_counter

N_W1 = int(os.environ.get("BENCH_N_W1", 200))
N_W2 = int(os.environ.get("BENCH_N_W2", 1000))
N_W5 = int(os.environ.get("BENCH_N_W5", 500))
N_SCALE = int(os.environ.get("BENCH_N_SCALE", 100_000))
N_W4_ROWS = int(os.environ.get("BENCH_W4_ROWS", 10_000_000))
WORKERS = int(os.environ.get("BENCH_WORKERS", 4))
REPEAT = int(os.environ.get("BENCH_REPEAT", 1))
RAY_CPUS = int(os.environ.get("BENCH_RAY_CPUS", 2))
# Set by the harness (and the smoke test) for the one run that fills a cache (W3, W4 hit).
FILL = os.environ.get("BENCH_FILL", "") == "1"


def state_dir(peer: str, sub: str = "") -> str:
    """A directory under $BENCH_STATE (created); the harness gives each entry its own."""
    base = os.environ.get("BENCH_STATE") or os.path.join("/tmp", "flowkit-bench", "state", peer)
    d = os.path.join(base, sub) if sub else base
    os.makedirs(d, exist_ok=True)
    return d


def emit(peer: str, w: str, phase: str, s: float, mode: str = "", **extra: Any) -> None:
    """One in-process phase as a ``BENCH {json}`` line on stdout (the harness parses these)."""
    rec: dict[str, Any] = {"peer": peer, "w": w, "mode": mode, "phase": phase, "s": round(s, 6)}
    rec.update(extra)
    sys.stdout.write("BENCH " + json.dumps(rec) + "\n")
    sys.stdout.flush()


def mode_arg(default: str = "") -> str:
    return sys.argv[1] if len(sys.argv) > 1 else default


def expected_w2(n: int = N_W2) -> int:
    return sum(i * i for i in range(n))


def du(path: str) -> int:
    """Total bytes of regular files under path (apparent size)."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            fp = os.path.join(root, f)
            if not os.path.islink(fp):
                total += os.path.getsize(fp)
    return total


def disk_bytes(path: str) -> int:
    """Allocated bytes (st_blocks * 512) under path, like ``du -s``."""
    if os.path.isfile(path):
        return os.stat(path).st_blocks * 512
    total = 0
    for root, dirs, files in os.walk(path):
        for f in files + dirs:
            fp = os.path.join(root, f)
            if not os.path.islink(fp):
                total += os.stat(fp).st_blocks * 512
    return total


def wipe(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)


def mark_executed(path: str) -> None:
    """Count one task-body execution by appending a byte to a marker file.

    A file (not a global) so the count survives whatever process or thread the body ran in.
    """
    with open(path, "ab") as f:
        f.write(b"x")


def executed_count(path: str) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0


def make_table(n: int = N_W4_ROWS) -> Any:
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(0)
    return pa.table({"a": rng.random(n), "b": rng.random(n)})


def sum_a(table: Any) -> float:
    import pyarrow.compute as pc

    return float(pc.sum(table["a"]).as_py())


def check_w4(s: float, n: int = N_W4_ROWS) -> None:
    # n * 0.001 as in the peer scripts; 6 sigma of a sum of uniforms for tiny smoke sizes
    assert abs(s - n / 2) < max(n * 0.001, 6 * (n / 12) ** 0.5), s


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float:
    """Current resident set size of this process (MiB); falls back to the peak."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


# ---------------- W6 -----------------
GRID: list[dict[str, Any]] = [
    {"n_estimators": n, "max_depth": d} for n in (20, 50) for d in (4, 8, 12, None)
]


def w6_data() -> tuple[Any, Any, Any, Any, Any, Any]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_trv, X_te, y_trv, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    X_tr, X_va, y_tr, y_va = train_test_split(
        X_trv, y_trv, test_size=0.25, random_state=0, stratify=y_trv
    )
    return X_tr, y_tr, X_va, y_va, X_te, y_te


def w6_fit(params: dict[str, Any], X_tr: Any, y_tr: Any, X_va: Any, y_va: Any) -> tuple[float, Any]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import accuracy_score

    m = RandomForestClassifier(n_jobs=1, random_state=0, **params).fit(X_tr, y_tr)
    return float(accuracy_score(y_va, m.predict(X_va))), m


def w6_score(model: Any, X: Any, y: Any) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y, model.predict(X)))


def prefect_env() -> str:
    """Run Prefect fully locally: private PREFECT_HOME under $BENCH_STATE, no telemetry."""
    home = os.environ.get("PREFECT_HOME") or state_dir("prefect", "home")
    os.makedirs(home, exist_ok=True)
    os.environ["PREFECT_HOME"] = home
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", os.path.join(home, "storage"))
    return home

"""The benchmark matrix: every (workload, implementation, mode) entry and the targets.

An entry is one script run as a fresh process. Entries of one workload (``w``) are
interleaved round by round by ``run.py``. ``floor`` is the entry its wall is compared
with (ratio per round), ``per`` the task count of the per-task figure
``(wall - wall[base]) / per`` where ``base`` is the implementation's own W0 (import +
define 2 tasks), as in the peer baseline (a study outside this repository).
An entry whose ``requires`` modules are not importable is skipped (peers are optional).

Sizes follow the same environment variables as the scripts (``common.py``), so a smoke
run with tiny sizes divides by the right counts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from common import N_SCALE, N_W1, N_W2

FLOWKIT = ("flowkit",)


@dataclass(frozen=True)
class Entry:
    id: str  # "<workload>/<implementation>[/<mode>]"
    w: str
    script: str | None  # a file in benchmarks/; None = ``python -c pass``
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    floor: str | None = None
    reps: int = 5
    warmup: int = 1
    fill: bool = False  # one unmeasured BENCH_FILL=1 run first (fills a cache)
    per: int | None = None
    requires: tuple[str, ...] = ()
    also_needs: tuple[str, ...] = ()  # other entries a target compares this one with
    note: str = ""

    @property
    def impl(self) -> str:
        return self.id.split("/")[1]

    @property
    def base(self) -> str:
        return "w0/pass" if self.impl in ("pass", "plain") else f"w0/{self.impl}"

    def needs(self) -> set[str]:
        out = set(self.also_needs)
        if self.floor:
            out.add(self.floor)
        if self.per:
            out.add(self.base)
        return out


E: list[Entry] = []


def add(id: str, script: str | None, args: tuple[str, ...] = (), **kw: object) -> None:
    E.append(Entry(id=id, w=id.split("/")[0], script=script, args=args, **kw))  # type: ignore[arg-type]


PEER_REQ = {
    "plain": (),
    "flowkit": FLOWKIT,
    "joblib": ("joblib",),
    "dask": ("dask",),
    "prefect": ("prefect",),
    "ray": ("ray",),
}

# W0: import + define 2 tasks; floor = `python -c pass` of the same interpreter
add("w0/pass", None, reps=9)
for p, req in PEER_REQ.items():
    add(f"w0/{p}", f"{p}_w0.py", floor="w0/pass", reps=9, requires=req)

# W1: chain of 200 inc
P1 = N_W1
add("w1/plain", "plain_w1.py", per=P1)
add("w1/flowkit", "flowkit_w1.py", floor="w1/plain", per=P1, requires=FLOWKIT, note="local")
add("w1/joblib", "joblib_w1.py", floor="w1/plain", per=P1, requires=("joblib",))
for m in ("sync", "threads"):
    add(f"w1/dask/{m}", "dask_w1.py", (m,), floor="w1/plain", per=P1, requires=("dask",))
add("w1/prefect", "prefect_w1.py", floor="w1/plain", per=P1, requires=("prefect",))

# W1/W2 warm: 3 runs in one process (rep 0 cold, reps 1-2 warm); 3 repetitions as in the spec.
# Whole-process per task divides by the 3 x N tasks the process ran.
WARM = {"BENCH_REPEAT": "3"}
add("w1warm/plain", "plain_w1.py", env=WARM, reps=3, per=3 * P1)
add(
    "w1warm/flowkit",
    "flowkit_w1.py",
    env=WARM,
    floor="w1warm/plain",
    reps=3,
    per=3 * P1,
    requires=FLOWKIT,
)

# W2: 1000 square + total
P2 = N_W2 + 1
add("w2/plain/threads", "plain_w2.py", ("threads",), per=P2)
add("w2/plain/serial", "plain_w2.py", ("serial",), floor="w2/plain/threads", per=P2)
add(
    "w2/flowkit/threads",
    "flowkit_w2.py",
    ("threads",),
    floor="w2/plain/threads",
    per=P2,
    requires=FLOWKIT,
)
add(
    "w2/flowkit/local",
    "flowkit_w2.py",
    ("local",),
    floor="w2/plain/serial",
    per=P2,
    requires=FLOWKIT,
)
add("w2/joblib/threads", "joblib_w2.py", floor="w2/plain/threads", per=P2, requires=("joblib",))
for m in ("threads", "sync"):
    add(f"w2/dask/{m}", "dask_w2.py", (m,), floor="w2/plain/threads", per=P2, requires=("dask",))
add("w2/prefect/threads", "prefect_w2.py", floor="w2/plain/threads", per=P2, requires=("prefect",))
add("w2warm/plain/threads", "plain_w2.py", ("threads",), env=WARM, reps=3, per=3 * P2)
add(
    "w2warm/flowkit/threads",
    "flowkit_w2.py",
    ("threads",),
    env=WARM,
    floor="w2warm/plain/threads",
    reps=3,
    per=3 * P2,
    requires=FLOWKIT,
)

# W3: cache hits in a new process, after one fill run
for m in ("os", "fsspec"):
    add(f"w3/plain/{m}", "plain_w3.py", (m,), floor="w3/plain/os", fill=True, per=P2)
add(
    "w3/flowkit",
    "flowkit_w3.py",
    floor="w3/plain/os",
    fill=True,
    per=P2,
    requires=FLOWKIT,
    also_needs=("w3/plain/fsspec",),
)
add("w3/joblib", "joblib_w3.py", floor="w3/plain/os", fill=True, per=P2, requires=("joblib",))
add("w3/prefect", "prefect_w3.py", floor="w3/plain/os", fill=True, per=P2, requires=("prefect",))

# W4: big artifact
for m in ("inproc", "parquet", "feather", "feather_lz4", "pickle"):
    add(f"w4/plain/{m}", "plain_w4.py", (m,), floor=None if m == "inproc" else "w4/plain/inproc")
add(
    "w4/flowkit/cold",
    "flowkit_w4.py",
    ("cold",),
    floor="w4/plain/feather",
    requires=FLOWKIT,
    also_needs=("w4/plain/inproc",),
    note="persisted, empty store",
)
add(
    "w4/flowkit/hit",
    "flowkit_w4.py",
    ("hit",),
    floor="w4/plain/inproc",
    fill=True,
    requires=FLOWKIT,
    note="cache-hit rerun",
)
add("w4/joblib", "joblib_w4.py", floor="w4/plain/feather", requires=("joblib",))
add("w4/dask", "dask_w4.py", floor="w4/plain/inproc", requires=("dask",), note="in memory")
add("w4/prefect", "prefect_w4.py", floor="w4/plain/feather", requires=("prefect",))

# W5: Ray fan-out, two in-process runs (cold, warm); ray.init apart
R2 = {"BENCH_REPEAT": "2"}
add("w5/ray/raw", "ray_w5.py", env=R2, requires=("ray",))
add(
    "w5/flowkit",
    "flowkit_w5.py",
    env=R2,
    floor="w5/ray/raw",
    requires=(*FLOWKIT, "ray", "flowkit_ray"),
)
add(
    "w5/ray/joblib",
    "ray_w5_integrations.py",
    ("joblib",),
    env=R2,
    floor="w5/ray/raw",
    requires=("ray", "joblib"),
)
add(
    "w5/ray/dask",
    "ray_w5_integrations.py",
    ("dask",),
    env=R2,
    floor="w5/ray/raw",
    requires=("ray", "dask"),
)
add(
    "w5/prefect",
    "prefect_w5.py",
    env=R2,
    floor="w5/ray/raw",
    reps=3,
    warmup=0,
    requires=("prefect", "prefect_ray", "ray"),
    note="N=200",
)

# W6: scikit-learn pipeline
add("w6/plain/threads", "plain_w6.py", ("threads",))
add("w6/plain/serial", "plain_w6.py", ("serial",), floor="w6/plain/threads")
for p in ("flowkit", "joblib", "dask", "prefect"):
    add(f"w6/{p}", f"{p}_w6.py", floor="w6/plain/threads", requires=PEER_REQ[p])

# Scale: a 100k-item map on threads (floor: ThreadPoolExecutor(4) over the same items)
PS = N_SCALE
add("scale/plain/threads", "plain_w2.py", ("threads",), env={"BENCH_N_W2": str(PS)}, per=PS)
add(
    "scale/flowkit/threads",
    "flowkit_scale.py",
    floor="scale/plain/threads",
    per=PS,
    requires=FLOWKIT,
)

BY_ID = {e.id: e for e in E}
WORKLOADS = list(dict.fromkeys(e.w for e in E))


# ---------------- targets (whole-process medians unless said) ----------------


class FigureSource(Protocol):
    """What a target reads (implemented by ``report.Figures``). Figures of two entries of the
    same workload are paired by round (median of per-round differences or ratios)."""

    def wall(self, k: str) -> float | None: ...
    def diff(self, a: str, b: str, col: str = "wall") -> float | None: ...
    def ratio(self, a: str, b: str, col: str = "wall") -> float | None: ...
    def per_task_ms(self, k: str, col: str = "wall") -> float | None: ...
    def extra(self, k: str, key: str) -> float | None: ...
    def cpu(self, k: str) -> float | None: ...


Fig = Callable[[FigureSource], "float | None"]


@dataclass(frozen=True)
class Target:
    name: str
    limit: float
    unit: str
    figure: Fig
    how: str
    # the same figure from cpu seconds (user+sys): less sensitive to a loaded machine
    cpu_figure: Fig | None = None


def _per(k: str) -> tuple[Fig, Fig]:
    return (lambda f: f.per_task_ms(k)), (lambda f: f.per_task_ms(k, "cpu"))


def _rat(a: str, b: str) -> tuple[Fig, Fig]:
    return (lambda f: f.ratio(a, b)), (lambda f: f.ratio(a, b, "cpu"))


_W1, _W2, _W3 = _per("w1/flowkit"), _per("w2/flowkit/threads"), _per("w3/flowkit")
_W4, _W4H = _rat("w4/flowkit/cold", "w4/plain/feather"), _rat("w4/flowkit/hit", "w4/plain/inproc")
_W6 = _rat("w6/flowkit", "w6/plain/threads")
_PER = "(wall - wall of flowkit's W0 run in the same rounds) / "
TARGETS = [
    Target(
        "W0 import + 2 tasks, above `python -c pass`",
        0.10,
        "s",
        lambda f: f.diff("w0/flowkit", "w0/pass"),
        "wall(w0/flowkit) - wall(w0/pass)",
        lambda f: f.diff("w0/flowkit", "w0/pass", "cpu"),
    ),
    Target("W1 chain, per task", 0.05, "ms", _W1[0], _PER + "200", _W1[1]),
    Target("W2 fan-out on 4 threads, per task", 0.03, "ms", _W2[0], _PER + "1001", _W2[1]),
    Target("W3 cache hit (new process), per hit", 0.10, "ms", _W3[0], _PER + "1001", _W3[1]),
    Target(
        "W4 persisted run vs Arrow IPC write+read",
        1.3,
        "x",
        _W4[0],
        "wall(w4/flowkit/cold) / wall(w4/plain/feather)",
        _W4[1],
    ),
    Target(
        "W4 peak RSS vs in-process",
        1.3,
        "x",
        lambda f: f.ratio("w4/flowkit/cold", "w4/plain/inproc", "rss"),
        "rss(w4/flowkit/cold) / rss(w4/plain/inproc)",
    ),
    Target(
        "W4 cache-hit rerun vs in-process",
        1.0,
        "x",
        _W4H[0],
        "wall(w4/flowkit/hit) / wall(w4/plain/inproc)",
        _W4H[1],
    ),
    Target(
        "W5 Ray, warm run vs raw ray.remote",
        1.2,
        "x",
        lambda f: f.ratio("w5/flowkit", "w5/ray/raw", "warm"),
        "in-process warm run(w5/flowkit) / warm run(w5/ray/raw)",
    ),
    Target(
        "W6 sklearn pipeline vs plain threads",
        1.05,
        "x",
        _W6[0],
        "wall(w6/flowkit) / wall(w6/plain/threads)",
        _W6[1],
    ),
    Target(
        "100k map on threads, whole process",
        10.0,
        "s",
        lambda f: f.wall("scale/flowkit/threads"),
        "wall(scale/flowkit/threads)",
        lambda f: f.cpu("scale/flowkit/threads"),
    ),
    Target(
        "100k map, driver memory per node",
        2.0,
        "KB",
        lambda f: f.extra("scale/flowkit/threads", "kb_per_node"),
        "(peak RSS - RSS before tracing) / N, in the script",
    ),
]


def group_of(k: str) -> str:
    """The workload whose rounds a result id was measured in (``w0/flowkit@w1`` -> w1)."""
    return k.split("@", 1)[1] if "@" in k else k.split("/", 1)[0]


def state_root() -> str:
    return os.environ.get("BENCH_STATE_ROOT") or os.path.join("/tmp", "flowkit-bench", "state")


def state_for(e: Entry) -> str:
    return os.path.join(state_root(), e.id.replace("/", "_"))

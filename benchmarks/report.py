"""Figures from raw runs: per-entry summaries, paired figures, targets, tables, markdown.

Policy: every figure is a median over the measured runs of an entry that exited 0 (failed
runs are counted in ``bad`` and left out); min-max is shown next to wall medians.
Entries of one workload run interleaved round by round, so two of them are compared
*paired*: the median over rounds of the per-round ratio (the "x floor" column, ratio
targets) or difference (W0 above ``python -c pass``; per-task figures, whose base, the
implementation's own W0, is re-measured inside every workload's rounds as
``w0/<impl>@<workload>``). Entries of different workloads fall back to the ratio or
difference of their medians.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from typing import Any

from matrix import BY_ID, TARGETS, group_of

Run = dict[str, Any]
STD_KEYS = {"peer", "w", "mode", "phase", "s", "rep", "n"}


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def summarize(runs: list[Run]) -> dict[str, float]:
    ok = [r for r in runs if r["rc"] == 0]
    s: dict[str, float] = {"n": len(ok), "bad": len(runs) - len(ok)}
    if not ok:
        return s
    wall = [r["wall"] for r in ok]
    s.update(
        wall=med(wall),
        wmin=min(wall),
        wmax=max(wall),
        cpu=med([r["cpu"] for r in ok]),
        rss=med([r["rss_mb"] for r in ok]),
    )
    runs_ph = [p for r in ok for p in r["phases"] if p["phase"] == "run"]
    s["cold"] = med([p["s"] for p in runs_ph if p.get("rep", 0) == 0])
    s["warm"] = med([p["s"] for p in runs_ph if p.get("rep", 0) >= 1])
    extras: dict[str, list[float]] = {}
    for r in ok:
        last_run = [p for p in r["phases"] if p["phase"] == "run"][-1:]
        for p in last_run:
            for k, v in p.items():
                if k not in STD_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool):
                    extras.setdefault("x_" + k, []).append(float(v))
        for p in r["phases"]:
            if p["phase"] != "run":
                extras.setdefault("ph_" + p["phase"], []).append(float(p["s"]))
    s.update({k: med(v) for k, v in extras.items()})
    for k in ("state_bytes", "state_disk"):  # measured by the harness after the last round
        vals = [r[k] for r in runs if r.get(k)]
        if vals:
            s["x_" + k] = float(vals[-1])
    return s


def _col(r: Run, col: str) -> float | None:
    if col in ("cold", "warm"):
        xs = [
            p["s"]
            for p in r["phases"]
            if p["phase"] == "run" and (p.get("rep", 0) == 0) == (col == "cold")
        ]
        return med(xs) if xs else None
    return float(r["rss_mb" if col == "rss" else col])


class Figures:
    """Summaries plus paired comparisons of one session's results (see the module policy)."""

    def __init__(self, results: dict[str, list[Run]]) -> None:
        self.results = results
        self.S = {k: summarize(v) for k, v in results.items()}

    def _by_round(self, k: str, col: str) -> dict[int, float]:
        out = {}
        for r in self.results.get(k, []):
            v = _col(r, col) if r["rc"] == 0 else None
            if v is not None:
                out[r["round"]] = v
        return out

    def _median(self, k: str, col: str) -> float | None:
        vals = list(self._by_round(k, col).values())
        return med(vals) if vals else None

    def _paired(self, a: str, b: str, col: str, ratio: bool) -> list[float]:
        if group_of(a) != group_of(b):
            return []
        va, vb = self._by_round(a, col), self._by_round(b, col)
        rounds = sorted(set(va) & set(vb))
        if ratio:
            return [va[i] / vb[i] for i in rounds if vb[i]]
        return [va[i] - vb[i] for i in rounds]

    def ratio_range(self, a: str, b: str, col: str = "wall") -> tuple[float, float, float] | None:
        xs = self._paired(a, b, col, ratio=True)
        return (med(xs), min(xs), max(xs)) if xs else None

    def ratio(self, a: str, b: str, col: str = "wall") -> float | None:
        xs = self._paired(a, b, col, ratio=True)
        if xs:
            return med(xs)
        x, y = self._median(a, col), self._median(b, col)
        return None if x is None or not y else x / y

    def diff(self, a: str, b: str, col: str = "wall") -> float | None:
        xs = self._paired(a, b, col, ratio=False)
        if xs:
            return med(xs)
        x, y = self._median(a, col), self._median(b, col)
        return None if x is None or y is None else x - y

    def base_of(self, k: str) -> str:
        e = BY_ID[k]
        local = f"{e.base}@{e.w}"
        return local if local in self.results else e.base

    def per_task_ms(self, k: str, col: str = "wall") -> float | None:
        e = BY_ID.get(k)
        if e is None or not e.per:
            return None
        d = self.diff(k, self.base_of(k), col)
        return None if d is None else 1000 * d / e.per

    def wall(self, k: str) -> float | None:
        return self.S.get(k, {}).get("wall")

    def cpu(self, k: str) -> float | None:
        return self.S.get(k, {}).get("cpu")

    def extra(self, k: str, key: str) -> float | None:
        return self.S.get(k, {}).get("x_" + key)


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "-" if x is None or x != x else format(x, fmt)


def row(k: str, F: Figures) -> list[str]:
    s = F.S[k]
    e = BY_ID.get(k)
    ratio = ""
    if e and e.floor:
        pw = F.ratio_range(k, e.floor)
        ratio = f"{pw[0]:.2f} ({pw[1]:.2f}-{pw[2]:.2f})" if pw else ""
    extra = ", ".join(f"{n[2:]}={_g(v)}" for n, v in s.items() if n.startswith("x_"))
    phases = ", ".join(f"{n[3:]}={v:.3g}s" for n, v in s.items() if n.startswith("ph_"))
    extra = "; ".join(x for x in (extra, phases) if x)
    if "wall" not in s:
        return [k, "FAILED", *[""] * 7, f"{s['n']:.0f}/{s['bad']:.0f}", ""]
    return [
        k,
        f"{s['wall']:.3f} ({s['wmin']:.3f}-{s['wmax']:.3f})",
        ratio or "-",
        f"{s['cpu']:.2f}",
        f"{s['rss']:.0f}",
        _f(s.get("cold")),
        _f(s.get("warm")),
        _f(F.per_task_ms(k)),
        _f(F.per_task_ms(k, "cpu")),
        f"{s['n']:.0f}/{s['bad']:.0f}",
        extra,
    ]


def _g(v: float) -> str:
    return f"{v:.0f}" if v.is_integer() else f"{v:.4g}"


HEAD = [
    "id",
    "wall s med (min-max)",
    "x floor med (min-max)",
    "cpu s",
    "peak MiB",
    "run s (cold)",
    "warm s",
    "ms/task",
    "cpu ms/task",
    "ok/bad",
    "extra",
]


def targets(F: Figures) -> list[tuple[str, str, str, str, str, str]]:
    """(name, figure, limit, verdict, how, the same figure from cpu seconds) per target."""
    out = []
    for t in TARGETS:
        v = t.figure(F)
        fmt = ".4f" if t.unit == "ms" else ".3f"
        c = t.cpu_figure(F) if t.cpu_figure else None
        cpu = "-" if c is None or c != c else f"{c:{fmt}} {t.unit}"
        lim = f"<= {t.limit:g} {t.unit}"
        if v is None or v != v:
            out.append((t.name, "-", lim, "not measured", t.how, cpu))
        else:
            verdict = "met" if v <= t.limit else "NOT MET"
            out.append((t.name, f"{v:{fmt}} {t.unit}", lim, verdict, t.how, cpu))
    return out


def text_table(F: Figures) -> str:
    rows = [HEAD] + [row(k, F) for k in F.S]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEAD) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    ]
    lines += ["", "Targets (flowkit; in parentheses the same figure from cpu seconds):"]
    for name, val, lim, verdict, _how, cpu in targets(F):
        lines.append(f"  {name:44} {val:>11}  {lim:>11}  {verdict:8}  (cpu: {cpu})")
    return "\n".join(lines)


def markdown(F: Figures, machine: dict[str, str], notes: str = "") -> str:
    out = [
        "## Targets",
        "",
        "| target | flowkit | limit | verdict | figure | same from cpu s |",
        "|---" * 6 + "|",
    ]
    out += [
        f"| {n} | {v} | {lim} | {verdict} | {how} | {cpu} |"
        for n, v, lim, verdict, how, cpu in targets(F)
    ]
    groups: dict[str, list[str]] = {}
    for k in F.S:
        groups.setdefault(group_of(k), []).append(k)
    out += ["", "## Per workload", ""]
    for w, ks in groups.items():
        out += [f"### {w}", "", "| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
        out += ["| " + " | ".join(row(k, F)) + " |" for k in ks]
        out.append("")
    out += ["## Machine", ""] + [f"* {k}: {v}" for k, v in machine.items()]
    if notes:
        out += ["", notes]
    return "\n".join(out) + "\n"


def machine_info() -> dict[str, str]:
    info: dict[str, str] = {"date": time.strftime("%Y-%m-%d %H:%M %Z")}
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?"
            )
        with open("/proc/meminfo") as f:
            mem_kb = int(next(ln.split()[1] for ln in f if ln.startswith("MemTotal")))
        info["cpu"] = f"{cpu}, {os.cpu_count()} logical CPUs"
        info["memory"] = f"{mem_kb / 2**20:.1f} GiB"
        info["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (OSError, StopIteration, ValueError):
        info["cpu"] = f"{cpu}, {os.cpu_count()} logical CPUs"
    info["os"] = platform.platform()
    info["python"] = sys.version.split()[0] + f" ({sys.executable})"
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(
            ["git", "-C", here, "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = "?"
    info["flowkit commit"] = rev or "?"
    vers = []
    for d in (
        "flowkit",
        "flowkit-ray",
        "pyarrow",
        "numpy",
        "fsspec",
        "cloudpickle",
        "ray",
        "scikit-learn",
        "joblib",
        "dask",
        "prefect",
    ):
        try:
            vers.append(f"{d} {metadata.version(d)}")
        except metadata.PackageNotFoundError:
            pass
    info["versions"] = ", ".join(vers)
    return info

"""Figures from raw runs: per-entry summaries, ratios, targets, the text table and markdown.

Policy: every figure is a median over the measured runs of an entry that exited 0 (failed
runs are counted in ``bad`` and left out); min-max is shown next to wall medians. The
"x floor" column is the median (min-max) of per-round ratios wall(entry)/wall(floor):
entries are interleaved round by round, so round i of both ran side by side.
Targets use the ratio of the medians (whole-process figures unless the target says).
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

from matrix import BY_ID, TARGETS, Summaries, per_task_ms

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
        vals = [r[k] for r in runs if k in r]
        if vals:
            s["x_" + k] = float(vals[-1])
    return s


def pairwise(results: dict[str, list[Run]], a: str, b: str) -> tuple[float, float, float] | None:
    """Median, min and max of wall(a)/wall(b) over rounds where both ran fine."""
    rb = {r["round"]: r["wall"] for r in results.get(b, []) if r["rc"] == 0}
    xs = [
        r["wall"] / rb[r["round"]]
        for r in results.get(a, [])
        if r["rc"] == 0 and rb.get(r["round"])
    ]
    return (med(xs), min(xs), max(xs)) if xs else None


def summaries(results: dict[str, list[Run]]) -> Summaries:
    return {k: summarize(v) for k, v in results.items()}


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "-" if x is None or x != x else format(x, fmt)


def row(k: str, s: dict[str, float], results: dict[str, list[Run]], S: Summaries) -> list[str]:
    e = BY_ID.get(k)
    ratio = ""
    if e and e.floor and e.floor in results:
        pw = pairwise(results, k, e.floor)
        ratio = f"{pw[0]:.2f} ({pw[1]:.2f}-{pw[2]:.2f})" if pw else ""
    per = per_task_ms(S, k) if e and e.per else None
    per_cpu = per_task_ms(S, k, "cpu") if e and e.per else None
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
        _f(per),
        _f(per_cpu),
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


def targets(S: Summaries) -> list[tuple[str, str, str, str, str, str]]:
    """(name, figure, limit, verdict, how, the same figure from cpu seconds) per target."""
    out = []
    for t in TARGETS:
        v = t.figure(S)
        fmt = ".4f" if t.unit == "ms" else ".3f"
        c = t.cpu_figure(S) if t.cpu_figure else None
        cpu = "-" if c is None or c != c else f"{c:{fmt}} {t.unit}"
        lim = f"<= {t.limit:g} {t.unit}"
        if v is None or v != v:
            out.append((t.name, "-", lim, "not measured", t.how, cpu))
        else:
            verdict = "met" if v <= t.limit else "NOT MET"
            out.append((t.name, f"{v:{fmt}} {t.unit}", lim, verdict, t.how, cpu))
    return out


def text_table(results: dict[str, list[Run]]) -> str:
    S = summaries(results)
    rows = [HEAD] + [row(k, s, results, S) for k, s in S.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEAD) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    ]
    lines += ["", "Targets (flowkit; in parentheses the same figure from cpu seconds):"]
    for name, val, lim, verdict, _how, cpu in targets(S):
        lines.append(f"  {name:44} {val:>11}  {lim:>11}  {verdict:8}  (cpu: {cpu})")
    return "\n".join(lines)


def markdown(results: dict[str, list[Run]], machine: dict[str, str], notes: str = "") -> str:
    S = summaries(results)
    out = [
        "## Targets",
        "",
        "| target | flowkit | limit | verdict | figure | same from cpu s |",
        "|---" * 6 + "|",
    ]
    out += [
        f"| {n} | {v} | {lim} | {verdict} | {how} | {cpu} |"
        for n, v, lim, verdict, how, cpu in targets(S)
    ]
    groups: dict[str, list[str]] = {}
    for k in S:
        groups.setdefault(k.split("/")[0], []).append(k)
    out += ["", "## Per workload", ""]
    for w, ks in groups.items():
        out += [f"### {w}", "", "| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
        out += ["| " + " | ".join(row(k, S[k], results, S)) + " |" for k in ks]
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

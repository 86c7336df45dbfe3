"""flowkit ui on big runs: the run page of a 10,000-call run, the runs page of 1,000 runs,
and the server's memory across page loads.

Standalone (not part of ``run.py``)::

    .venv/bin/python benchmarks/flowkit_ui.py                 # everything, ~5 min
    .venv/bin/python benchmarks/flowkit_ui.py --profile       # + where the handlers' time goes
    .venv/bin/python benchmarks/flowkit_ui.py --calls 500 --runs 60 --loads 10 --repeats 3

The store is filled by real runs in a new process: one ``total(square.map(x=range(N)))``
run of N + 1 calls (``--calls``, default 10,000) on 4 threads, then ``--runs`` - 1 runs of a
one-call workflow (so the store holds 1,000 runs). Then ``flowkit ui`` serves it in its own
process (``python -m flowkit ui`` on a free loopback port, stopped by its PID), and:

(a) the run page of the big run over HTTP (urllib, one connection per request): time to the
    first byte and to the last byte, and its size. The first request is reported apart
    (cold: nothing read yet); then the median (min-max) of ``--repeats`` more.
(b) the same page in headless Chromium (Debian's ``/usr/bin/chromium`` through Selenium and
    ``/usr/bin/chromedriver``): first paint, first contentful paint and DOMContentLoaded from
    the page's own ``performance`` entries (milliseconds from the navigation's start), median
    of ``--repeats`` loads (one unmeasured load first).
(c) the runs page (``/``, 50 of the 1,000 runs) over HTTP, as (a).
(e) the task page of one of the map's items and the status JSON a running run's page polls
    every 2 s (``/api/runs/<id>/status``), as (a); no target, for context.
(d) the server's resident memory (``VmRSS`` of ``/proc/<pid>/status``) after the 1st, the
    ``loads / 2``-th and the ``loads``-th load of the run page (``--loads``, default 100).

Targets (issue 12): (a) and (b) <= 1 s, (c) <= 0.5 s, (d) flat. ``--profile`` also runs the
two handlers in this process under cProfile (the app's own route endpoints, called with a
request) and prints the functions that take the time. The figures go in
``benchmarks/RESULTS.md`` ("flowkit ui on big runs").
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

WORKLOAD = """
import os, sys, time
import flowkit as fk

N = int(os.environ["UI_BENCH_CALLS"])
RUNS = int(os.environ["UI_BENCH_RUNS"])


@fk.task
def square(x: int) -> int:
    return x * x


@fk.task
def total(xs: list[int]) -> int:
    return sum(xs)


@fk.workflow
def big() -> int:
    return total(square.map(x=list(range(N))))


@fk.workflow
def small(x: int) -> int:
    return square(x)


store = sys.argv[1]
started = time.perf_counter()
run = fk.run(big, backend=fk.backends.ThreadsBackend(max_workers=4), store=store)
assert run.output == sum(i * i for i in range(N)), run.output
big_seconds = time.perf_counter() - started
for i in range(RUNS - 1):
    fk.run(small, x=i, store=store)
print(run.id, round(big_seconds, 2), round(time.perf_counter() - started, 2))
"""


def fill(folder: Path, calls: int, runs: int) -> tuple[str, str]:
    """Fill a store in ``folder`` by real runs (in a new process); its URL and the big run's id."""
    store = folder / "store"
    script = folder / "fill.py"
    script.write_text(WORKLOAD)
    env = {**os.environ, "UI_BENCH_CALLS": str(calls), "UI_BENCH_RUNS": str(runs)}
    done = subprocess.run(
        [sys.executable, str(script), str(store)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"filling the store failed:\n{done.stdout}\n{done.stderr}")
    run_id, big_s, all_s = done.stdout.split()[-3:]
    say(f"store: {calls + 1} calls in {big_s} s, {runs} runs in {all_s} s ({store})")
    return str(store), run_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """``flowkit ui`` in its own process (ours: stopped by its PID)."""

    def __init__(self, store: str, log: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        cmd = [sys.executable, "-m", "flowkit", "ui", "--store", store]
        cmd += ["--port", self.url.rsplit(":", 1)[1]]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        self.log = log
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"flowkit ui exited:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/static/flowkit.css", timeout=5):
                    return
            except OSError as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    message = f"flowkit ui did not answer in 60 s:\n{log.read_text()}"
                    raise RuntimeError(message) from exc
                time.sleep(0.2)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def get(url: str) -> dict[str, float]:
    """One GET: seconds to the first byte (headers read) and to the last byte, and bytes."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        first = time.perf_counter() - started
        body = response.read()
        status = response.status
    last = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"GET {url}: {status}")
    return {"first_byte": first, "last_byte": last, "bytes": len(body)}


def http_figures(url: str, repeats: int) -> dict[str, Any]:
    cold = get(url)
    warm = [get(url) for _ in range(repeats)]
    return {"cold": cold, **{k: spread([w[k] for w in warm]) for k in warm[0]}}


def browser_figures(url: str, repeats: int) -> dict[str, Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    script = """
        const paint = {};
        for (const e of performance.getEntriesByType('paint')) paint[e.name] = e.startTime;
        const nav = performance.getEntriesByType('navigation')[0];
        return {first_paint: paint['first-paint'], fcp: paint['first-contentful-paint'],
                response_end: nav.responseEnd, dcl: nav.domContentLoadedEventEnd,
                load: nav.loadEventEnd, nodes: document.getElementsByTagName('*').length};
    """
    try:
        samples = []
        for i in range(repeats + 1):
            driver.get("about:blank")
            driver.get(url)
            deadline = time.monotonic() + 30
            found = driver.execute_script(script)
            while found["first_paint"] is None and time.monotonic() < deadline:
                time.sleep(0.05)
                found = driver.execute_script(script)
            if i:  # the first load warms the browser
                samples.append(found)
    finally:
        driver.quit()
    figures = {
        k: spread([s[k] / 1000 for s in samples if s[k] is not None])
        for k in ("first_paint", "fcp", "response_end", "dcl", "load")
    }
    figures["dom_elements"] = samples[-1]["nodes"]
    return figures


def rss_figures(server: Server, url: str, loads: int) -> dict[str, int]:
    marks = {1, max(1, loads // 2), loads}
    found = {}
    for i in range(1, loads + 1):
        get(url)
        if i in marks:
            found[f"load_{i}"] = server.rss_kb()
    return found


def spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def profile(store: str, run_id: str, top: int) -> dict[str, str]:
    """The two handlers under cProfile in this process: the app's route endpoints (as the
    server calls them, in one thread here) with a request for the page."""
    from starlette.requests import Request
    from starlette.routing import Route

    from flowkit.ui.app import create_app

    app = create_app(store)
    endpoints = {r.path: r.endpoint for r in app.routes if isinstance(r, Route)}
    found = {}
    for name, path, route, params in (
        ("run page", f"/runs/{run_id}", "/runs/{run_id}", {"run_id": run_id}),
        ("runs page", "/", "/", {}),
    ):
        scope = {
            "type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
            "query_string": b"", "headers": [], "path_params": params, "app": app,
            "server": ("127.0.0.1", 80), "scheme": "http", "root_path": "",
        }  # fmt: skip
        call: Callable[[Request], Any] = endpoints[route]
        call(Request(scope))  # warm: imports, the template cache
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        response = call(Request(scope))
        profiler.disable()
        seconds = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
        found[name] = f"{seconds:.3f} s in-process (under cProfile)\n" + out.getvalue()
    return found


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "chromium": _version([CHROMIUM, "--version"]),
    }


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return "-"


def markdown(results: dict[str, Any]) -> str:
    a, b, c, d = (results[k] for k in ("run_page", "browser", "runs_page", "rss_kb"))

    def s(x: dict[str, float]) -> str:
        return f"{x['median']:.3f} s ({x['min']:.3f}-{x['max']:.3f})"

    rss = " / ".join(f"{v / 1024:.0f}" for v in d.values())
    rows = [
        "| what | figure | target |",
        "|---|---|---|",
        f"| (a) run page HTML, cold (first GET) | {a['cold']['last_byte']:.3f} s, "
        f"{a['cold']['bytes'] / 1024:.0f} KB | ≤ 1 s |",
        f"| (a) run page HTML, last byte | {s(a['last_byte'])} | ≤ 1 s |",
        f"| (a) run page HTML, first byte | {s(a['first_byte'])} | |",
        f"| (a) run page size | {a['bytes']['median'] / 1024:.0f} KB | |",
        f"| (b) first paint (Chromium) | {s(b['first_paint'])} | ≤ 1 s |",
        f"| (b) first contentful paint | {s(b['fcp'])} | |",
        f"| (b) DOMContentLoaded | {s(b['dcl'])} | |",
        f"| (b) load event | {s(b['load'])} | |",
        f"| (b) DOM elements | {b['dom_elements']} | |",
        f"| (c) runs page HTML, cold | {c['cold']['last_byte']:.3f} s, "
        f"{c['cold']['bytes'] / 1024:.0f} KB | ≤ 0.5 s |",
        f"| (c) runs page HTML, last byte | {s(c['last_byte'])} | ≤ 0.5 s |",
        f"| (e) task page of one item, last byte | {s(results['task_page']['last_byte'])} | |",
        f"| (e) status JSON (live polling), last byte | {s(results['status_json']['last_byte'])}, "
        f"{results['status_json']['bytes']['median']:.0f} bytes | |",
        f"| (d) server RSS after load {' / '.join(k[5:] for k in d)} | {rss} MB | flat |",
    ]
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=10_000, help="items of the big run's map")
    p.add_argument("--runs", type=int, default=1_000, help="runs in the store")
    p.add_argument("--repeats", type=int, default=9, help="measured loads per figure")
    p.add_argument("--loads", type=int, default=100, help="run-page loads for the RSS")
    p.add_argument("--profile", action="store_true", help="profile the two handlers")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--keep", action="store_true", help="keep the store (its path is said)")
    ns = p.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="flowkit-ui-bench-"))
    results: dict[str, Any] = {"machine": machine(), "calls": ns.calls + 1, "runs": ns.runs}
    try:
        store, run_id = fill(folder, ns.calls, ns.runs)
        server = Server(store, folder / "server.log")
        try:
            run_url = f"{server.url}/runs/{run_id}"
            results["rss_kb_start"] = server.rss_kb()
            results["run_page"] = http_figures(run_url, ns.repeats)
            results["runs_page"] = http_figures(server.url + "/", ns.repeats)
            item = f"{run_url}/tasks/square%5B{ns.calls // 2}%5D"
            results["task_page"] = http_figures(item, ns.repeats)
            results["status_json"] = http_figures(
                f"{server.url}/api/runs/{run_id}/status", ns.repeats
            )
            results["browser"] = browser_figures(run_url, min(ns.repeats, 5))
            results["rss_kb"] = rss_figures(server, run_url, ns.loads)
        finally:
            server.stop()
        if ns.profile:
            results["profile"] = profile(store, run_id, 25)
    finally:
        results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        if ns.keep:
            say(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    if ns.json:
        print(json.dumps({k: v for k, v in results.items() if k != "profile"}, indent=1))
    print(markdown(results))
    for name, text in results.get("profile", {}).items():
        print(f"\n## profile: {name}\n{text}")


if __name__ == "__main__":
    main()

"""flowkit serve against its floor and ``mlflow models serve``: latency, throughput, and the
time a promote takes to reach the answers.

Standalone (not part of ``run.py``)::

    .venv/bin/python benchmarks/serve_latency.py                  # everything, ~5 min
    .venv/bin/python benchmarks/serve_latency.py --seconds 2 --rounds 1 --clients 1,8
    .venv/bin/python benchmarks/serve_latency.py --no-mlflow      # without (b)

A scikit-learn model (StandardScaler + LogisticRegression on 16 named float columns) is
registered twice (v1: production, v2: its opposite labels) with ``ml.register`` in a sqlite
registry in a temp folder. Three servers run at once, each in its own process on a free
loopback port, started and stopped (by PID) here:

* ``flowkit`` -- ``python -m flowkit serve clf@production --tracking-uri ... --follow F``;
* ``floor`` -- this file with ``--floor``: a bare Starlette app whose one async handler parses
  the JSON body, builds the DataFrame, calls ``model.predict`` inline and answers JSON, under
  the same ``uvicorn.run`` call as ``flowkit serve`` (log level warning, no access log);
* ``mlflow`` -- ``mlflow models serve -m models:/clf/1 --env-manager local`` as a user runs it
  (its defaults: one uvicorn worker, access log on).

(a)/(b) Each request scores one row (``dataframe_split``). The load comes from this process:
asyncio, one keep-alive HTTP/1.1 connection per client, each client sending its next request
when the previous answer is read; at 1, 8 and 32 clients (``--clients``), 1 s of warm-up
then ``--seconds`` measured; every answer is checked (status 200, the right predictions).
The servers are measured in turn within a round, ``--rounds`` rounds; figures are medians
over rounds of each round's median and p99 latency and requests/s. Ratios are per round,
then the median: flowkit's median latency / the floor's (target <= 1.15) and flowkit's
requests/s / mlflow's (target >= 2).

(c) With 8 clients on flowkit serve, ``ml.promote`` moves production to v2, then
``ml.rollback`` moves it back, ``--moves`` times in all: for each move, the seconds from just
before the registry call to the first answer from the new version (read from the
``X-Model-Version`` header; target <= the follow interval + 1 s), and the failed requests
over the whole run (target 0). The figures go in ``benchmarks/RESULTS.md`` ("flowkit serve").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

COLUMNS = [f"f{i}" for i in range(16)]
MODEL = "clf"
STARTUP_TIMEOUT = 180.0


# -- the model and the registry -------------------------------------------------------------


def rows(n: int, seed: int) -> list[list[float]]:
    import numpy as np

    return np.random.default_rng(seed).normal(size=(n, len(COLUMNS))).round(4).tolist()


def register(uri: str) -> Any:
    """Register v1 (production) and v2 (the opposite labels); the v1 model."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from flowkit import ml

    x = pd.DataFrame(rows(500, 0), columns=COLUMNS)
    y = (x["f0"] + x["f1"] > 0).astype(int)
    v1 = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    v2 = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, 1 - y)
    ml.register(v1, MODEL, tracking_uri=uri, alias="production")
    ml.register(v2, MODEL, tracking_uri=uri)
    return v1


# -- the servers ------------------------------------------------------------------------------


def floor_server(uri: str, port: int) -> None:
    """The floor: one bare Starlette handler calling model.predict (run with --floor)."""
    import pandas as pd
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from flowkit import ml

    model = ml.load(MODEL, tracking_uri=uri)

    async def invocations(request: Request) -> JSONResponse:
        split = (await request.json())["dataframe_split"]
        frame = pd.DataFrame(split["data"], columns=split["columns"])
        return JSONResponse({"predictions": model.predict(frame).tolist()})

    async def ping(request: Request) -> Response:
        return Response("ok")

    app = Starlette(
        routes=[Route("/invocations", invocations, methods=["POST"]), Route("/ping", ping)]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """One server process of ours (its own session: stopped with its children by PID)."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.port = int(cmd[-1])  # every command ends with its port
        self.cmd = cmd
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.started = time.monotonic()

    def wait_ready(self) -> float:
        """Seconds from the start until ``/ping`` answers 200."""
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/ping", timeout=2
                ) as resp:
                    if resp.status == 200:
                        return time.monotonic() - self.started
            except OSError:
                pass
            if time.monotonic() - self.started > STARTUP_TIMEOUT:
                raise RuntimeError(f"{self.name} not ready after {STARTUP_TIMEOUT} s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def start_servers(folder: Path, uri: str, follow: float, with_mlflow: bool) -> list[Server]:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_TRACKING_URI": uri}
    # mlflow models serve runs `uvicorn` by name: the venv's scripts must be on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    py = sys.executable
    specs = {
        "flowkit": [py, "-m", "flowkit", "serve", f"{MODEL}@production", "--tracking-uri", uri,
                    "--follow", f"{follow:g}", "--port", str(free_port())],
        "floor": [py, __file__, "--floor", uri, str(free_port())],
    }  # fmt: skip
    if with_mlflow:
        mlflow = str(Path(py).parent / "mlflow")
        specs["mlflow"] = [mlflow, "models", "serve", "-m", f"models:/{MODEL}/1", "--env-manager",
                           "local", "-h", "127.0.0.1", "-p", str(free_port())]  # fmt: skip
    servers = [Server(n, c, env, folder / f"{n}.log") for n, c in specs.items()]
    for s in servers:
        say(f"{s.name}: ready in {s.wait_ready():.1f} s on port {s.port}")
    return servers


# -- the load ---------------------------------------------------------------------------------


class Tally:
    """What the clients saw: per answer its latency, end time and version; failures."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.answers: list[tuple[float, int]] = []  # (perf_counter at the answer, version)
        self.failures: list[str] = []


def request_bytes(port: int, body: bytes) -> bytes:
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status = int((await reader.readline()).split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, await reader.readexactly(int(headers["content-length"]))


async def client(
    port: int, payload: bytes, expected: dict[int, Any], until: float, tally: Tally, since: float
) -> None:
    """One keep-alive connection sending requests until ``until``; answers after ``since``
    are counted."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (started := time.perf_counter()) < until:
            writer.write(payload)
            try:
                status, headers, body = await read_answer(reader)
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                tally.failures.append(repr(exc))
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            done = time.perf_counter()
            version = int(headers.get("x-model-version", 1))
            if status != 200 or json.loads(body)["predictions"] != expected.get(version):
                tally.failures.append(f"{status} v{version} {body[:200]!r}")
            elif started >= since:
                tally.latencies.append(done - started)
                tally.answers.append((done, version))
    finally:
        writer.close()


async def load(
    port: int, payload: bytes, expected: dict[int, Any], clients: int, warmup: float, seconds: float
) -> Tally:
    tally = Tally()
    since = time.perf_counter() + warmup
    until = since + seconds
    await asyncio.gather(
        *(client(port, payload, expected, until, tally, since) for _ in range(clients))
    )
    return tally


def figures(tally: Tally, seconds: float) -> dict[str, float]:
    lat = sorted(tally.latencies)
    return {
        "median_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "rps": len(lat) / seconds,
        "failed": float(len(tally.failures)),
    }


async def promote_under_load(
    port: int, payload: bytes, expected: dict[int, Any], uri: str, moves: int, follow: float
) -> dict[str, Any]:
    """(c): promote and roll back under 8 clients; seconds to the new version's first answer."""
    from flowkit import ml

    tally = Tally()
    start = time.perf_counter()
    until = start + 3600.0
    clients = [
        asyncio.create_task(client(port, payload, expected, until, tally, start)) for _ in range(8)
    ]
    switches = []
    try:
        await asyncio.sleep(1.0)
        for i in range(moves):
            target = 2 if i % 2 == 0 else 1
            t0 = time.perf_counter()
            if target == 2:
                await asyncio.to_thread(ml.promote, MODEL, 2, "production", uri)
            else:
                await asyncio.to_thread(ml.rollback, MODEL, "production", uri)
            while not any(t > t0 and v == target for t, v in tally.answers[-50:]):
                if time.perf_counter() - t0 > follow + 60:
                    raise RuntimeError(f"version {target} never answered")
                await asyncio.sleep(0.005)
            first = min(t for t, v in tally.answers if t > t0 and v == target)
            switches.append(round(first - t0, 3))
            say(f"  move {i + 1} (-> v{target}): first answer after {first - t0:.2f} s")
            await asyncio.sleep(1.0)
    finally:
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
    return {
        "follow_s": follow,
        "switch_s": switches,
        "max_switch_s": max(switches),
        "requests": len(tally.answers),
        "failed": len(tally.failures),
        "failures": tally.failures[:5],
    }


# -- report -----------------------------------------------------------------------------------


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def markdown(results: dict[str, Any]) -> str:
    out = [
        "| clients | server | median ms | p99 ms | req/s |",
        "|---|---|---|---|---|",
    ]
    for level, by_server in results["latency"].items():
        for name, f in by_server.items():
            out.append(
                f"| {level} | {name} | {f['median_ms']:.2f} | {f['p99_ms']:.2f} | {f['rps']:.0f} |"
            )
    out += [
        "",
        "| clients | flowkit / floor median latency | flowkit / mlflow req/s |",
        "|---|---|---|",
    ]
    for level, r in results["ratios"].items():
        mlflow = "-" if r.get("vs_mlflow_rps") is None else f"{r['vs_mlflow_rps']:.2f}"
        out.append(f"| {level} | {r['vs_floor_latency']:.2f} | {mlflow} |")
    return "\n".join(out)


def measure(
    servers: list[Server], payload_of: Any, expected: dict[int, Any], args: argparse.Namespace
) -> dict[str, Any]:
    levels = [int(c) for c in args.clients.split(",")]
    per_round: dict[int, dict[str, list[dict[str, float]]]] = {
        n: {s.name: [] for s in servers} for n in levels
    }
    for r in range(args.rounds):
        for n in levels:
            for s in servers:
                tally = asyncio.run(
                    load(s.port, payload_of(s.port), expected, n, 1.0, args.seconds)
                )
                f = figures(tally, args.seconds)
                per_round[n][s.name].append(f)
                say(
                    f"round {r + 1} clients {n:>2} {s.name:>7}: median {f['median_ms']:.2f} ms, "
                    f"p99 {f['p99_ms']:.2f} ms, {f['rps']:.0f} req/s, {f['failed']:.0f} failed"
                )
                if tally.failures:
                    raise RuntimeError(f"{s.name} failed: {tally.failures[:3]}")
    latency: dict[int, dict[str, dict[str, float]]] = {}
    ratios: dict[int, dict[str, float | None]] = {}
    for n in levels:
        latency[n] = {
            name: {k: statistics.median(f[k] for f in fs) for k in fs[0]}
            for name, fs in per_round[n].items()
        }
        fk, floor = per_round[n]["flowkit"], per_round[n]["floor"]
        mlflow = per_round[n].get("mlflow")
        ratios[n] = {
            "vs_floor_latency": statistics.median(
                a["median_ms"] / b["median_ms"] for a, b in zip(fk, floor, strict=True)
            ),
            "vs_mlflow_rps": None
            if mlflow is None
            else statistics.median(a["rps"] / b["rps"] for a, b in zip(fk, mlflow, strict=True)),
        }
    return {"latency": latency, "ratios": ratios}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", default="1,8,32", help="concurrent clients, comma-separated")
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per level")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--follow", type=float, default=10.0, help="flowkit serve --follow")
    p.add_argument("--moves", type=int, default=4, help="promotes and rollbacks in (c)")
    p.add_argument("--no-mlflow", action="store_true", help="leave out mlflow models serve")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (logs, registry)")
    p.add_argument("--floor", nargs=2, metavar=("URI", "PORT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.floor:
        floor_server(args.floor[0], int(args.floor[1]))
        return

    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    folder = Path(tempfile.mkdtemp(prefix="fk-serve-bench-"))
    os.chdir(folder)  # MLflow leaves nothing in the repository
    servers: list[Server] = []
    try:
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        started = time.perf_counter()
        v1 = register(uri)
        say(f"registered v1 and v2 in {time.perf_counter() - started:.1f} s ({uri})")
        import pandas as pd

        row = rows(1, 1)
        v1_answer = v1.predict(pd.DataFrame(row, columns=COLUMNS)).tolist()
        expected = {1: v1_answer, 2: [1 - p for p in v1_answer]}
        body = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": row}}).encode()
        servers = start_servers(folder, uri, args.follow, not args.no_mlflow)

        def payload_of(port: int) -> bytes:
            return request_bytes(port, body)

        results: dict[str, Any] = {"machine": machine(), "args": vars(args)}
        results.update(measure(servers, payload_of, expected, args))
        fk = next(s for s in servers if s.name == "flowkit")
        if args.moves:
            say(f"(c) {args.moves} moves under 8 clients, follow {args.follow:g} s")
            results["promote"] = asyncio.run(
                promote_under_load(
                    fk.port, payload_of(fk.port), expected, uri, args.moves, args.follow
                )
            )
        results["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(results, indent=1, default=str))
        print(markdown(results))
    finally:
        for s in servers:
            s.stop()
        if args.keep:
            say(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Store cost (format 3): disk bytes and S3 requests per cached call, run-record size, put cost.

Standalone (not part of ``run.py``)::

    .venv/bin/python benchmarks/flowkit_store_cost.py            # everything, ~1 min
    .venv/bin/python benchmarks/flowkit_store_cost.py --n 50 --records 2000 --json   # a smoke run

(a) W3's workload (``square.map`` over N ints + ``total``, both ``cache=True``, 4 threads) on
    a local store, filled in a new process: ``du -sk --apparent-size`` and ``du -sk``
    (allocated) of the store after that run over the N + 1 cached calls, and per top-level
    folder (the store as W3 measures it: one run's records included).
(b) The same on a moto S3 server on 127.0.0.1 that counts every HTTP request it serves (a
    WSGI wrapper around moto's app): requests by method and by what they touch, for the
    filling run and for an all-hit run, each in a new process. Entry and object requests are
    per call; the marker check, bucket checks, fingerprints and run records are per run.
(c) 100k task records shaped like a ``square.map`` item, written as batches of 1000 through
    ``Store.write_task_records``: total bytes of the batch files.
(d) ``Store.put`` of small and large values (timeit, best of 5): microseconds per call.

The figures go in ``benchmarks/RESULTS.md`` ("Store cost (format 3)"). Set ``PYTHONPATH`` to
another flowkit tree to measure it the same way (the children inherit it).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CREDENTIALS = {"username": "flowkit-bench", "secret": "flowkit-bench"}

WORKLOAD = """
import json, os, sys
import flowkit as fk

N = int(os.environ["STORE_COST_N"])


@fk.task(cache=True)
def square(x: int) -> int:
    return x * x


@fk.task(cache=True)
def total(xs: list[int]) -> int:
    return sum(xs)


@fk.workflow
def fanout() -> int:
    return total(square.map(x=list(range(N))))


store = fk.Store(sys.argv[1], **json.loads(sys.argv[2]))
run = fk.run(fanout, backend=fk.backends.ThreadsBackend(max_workers=4), store=store)
assert run.output == sum(i * i for i in range(N)), run.output
print(json.dumps({"cached": sum(1 for t in run.tasks if t.cached), "calls": len(run.tasks)}))
"""


def run_workload(folder: Path, url: str, n: int, options: dict[str, Any]) -> dict[str, Any]:
    """One W3 run in a new process; returns its count of calls and cache hits."""
    script = folder / "w3_store.py"
    script.write_text(WORKLOAD)
    env = {**os.environ, "STORE_COST_N": str(n), "RAY_ADDRESS": "local"}
    done = subprocess.run(
        [sys.executable, str(script), url, json.dumps(options)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=folder,
    )
    if done.returncode != 0:
        raise RuntimeError(f"workload failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- (a) a local store ------------------------------------------------------------------------


def du_kib(path: Path, apparent: bool) -> int:
    """``du -sk`` of ``path`` (``--apparent-size`` when asked), in KiB."""
    args = ["du", "-sk", *(["--apparent-size"] if apparent else []), str(path)]
    return int(subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()[0])


def local_cost(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fk-store-cost-") as tmp:
        folder = Path(tmp)
        store = folder / "store"
        fill = run_workload(folder, str(store), n, {})
        calls = n + 1
        out: dict[str, Any] = {
            "calls": calls,
            "fill_cached": fill["cached"],
            "files": sum(1 for p in store.rglob("*") if p.is_file()),
            "apparent_kib": du_kib(store, apparent=True),
            "allocated_kib": du_kib(store, apparent=False),
            "folders": {},
        }
        out["apparent_per_call"] = out["apparent_kib"] / calls
        out["allocated_per_call"] = out["allocated_kib"] / calls
        for sub in sorted(p for p in store.iterdir() if p.is_dir()):
            sizes = [p.stat().st_size for p in sub.rglob("*") if p.is_file()]
            out["folders"][sub.name] = {
                "files": len(sizes),
                "largest_file": max(sizes, default=0),
                "apparent_kib": du_kib(sub, apparent=True),
                "allocated_kib": du_kib(sub, apparent=False),
            }
        out["hit_cached"] = run_workload(folder, str(store), n, {})["cached"]  # after measuring
        return out


# -- (b) S3, counted at the server ------------------------------------------------------------


class CountingS3:
    """A moto S3 server on 127.0.0.1 that records (method, path, query) of every request."""

    def __init__(self) -> None:
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on stderr
        app = DomainDispatcherApplication(create_backend_app)
        self.requests: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

        def counting(environ: dict[str, Any], start_response: Any) -> Any:
            with self._lock:
                self.requests.append(
                    (
                        environ["REQUEST_METHOD"],
                        environ.get("PATH_INFO", ""),
                        environ.get("QUERY_STRING", ""),
                    )
                )
            return app(environ, start_response)

        self._server = make_server(
            "127.0.0.1", 0, counting, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.endpoint = f"http://{host}:{port}"

    def take(self) -> list[tuple[str, str, str]]:
        """The requests recorded since the last call."""
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


@contextlib.contextmanager
def counting_s3() -> Iterator[CountingS3]:
    server = CountingS3()
    try:
        yield server
    finally:
        server.stop()


def what(path: str, bucket: str) -> str:
    """What a request touches: a cache entry, an object, a fingerprint, a run record, the
    marker, or the bucket itself (existence checks, listings)."""
    rel = path.removeprefix(f"/{bucket}").removeprefix("/prefix").lstrip("/")
    for prefix, name in (
        ("cache/", "entry"),
        ("objects/", "object"),
        ("fingerprints/", "fingerprint"),
        ("runs/", "run record"),
        ("flowkit-store.json", "marker"),
        ("index/", "entry"),  # format 2
        ("tasks/", "entry"),
    ):
        if rel.startswith(prefix):
            return name
    return "bucket"


def tally(requests: list[tuple[str, str, str]], bucket: str) -> dict[str, dict[str, int]]:
    """Requests by what they touch, then by method."""
    counts: dict[str, Counter[str]] = {}
    for method, path, _ in requests:
        counts.setdefault(what(path, bucket), Counter())[method] += 1
    return {k: dict(v) for k, v in sorted(counts.items())}


def s3_cost(n: int) -> dict[str, Any]:
    import s3fs

    with counting_s3() as server, tempfile.TemporaryDirectory(prefix="fk-s3-cost-") as tmp:
        bucket = f"fk-cost-{os.urandom(4).hex()}"
        fs = s3fs.S3FileSystem(
            key=CREDENTIALS["username"],
            secret=CREDENTIALS["secret"],
            client_kwargs={"endpoint_url": server.endpoint},
            skip_instance_cache=True,
        )
        fs.mkdir(bucket)
        server.take()
        options = {**CREDENTIALS, "endpoint_url": server.endpoint}
        url = f"s3://{bucket}/prefix"
        out: dict[str, Any] = {"calls": n + 1}
        for phase in ("fill", "hit"):
            result = run_workload(Path(tmp), url, n, options)
            counts = tally(server.take(), bucket)
            per_call = Counter[str]()
            for kind in ("entry", "object"):
                per_call.update(counts.get(kind, {}))
            out[phase] = {
                "cached": result["cached"],
                "by_what": counts,
                "per_call": {m: c / (n + 1) for m, c in sorted(per_call.items())},
            }
        return out


# -- (c) task records ---------------------------------------------------------------------------


def map_records(n: int, variant: str) -> list[dict[str, Any]]:
    """``n`` records shaped like a ``square.map`` item (as the brief of issue 11 gives them)."""
    rng = random.Random(0)
    t = time.time()
    out = []
    for i in range(n):
        t += rng.random() * 2e-5
        started, ended = t, t + 1.2e-4 + rng.random() * 1e-4
        rec: dict[str, Any] = {
            "name": "square",
            "node": f"square[{i}]",
            "status": "succeeded",
            "attempts": 1,
            "started": started,
            "ended": ended,
            "key": hashlib.sha256(b"%d" % i).hexdigest(),
            "outputs": {"0": {"format": "json", "inline": str(i * i)}},
            "tries": [
                {"n": 1, "started": started, "ended": ended, "cpu": 1.3e-05, "peak_rss": 123456789}
            ],
        }
        if variant == "no attempt times":  # an only attempt's times are the record's
            del rec["tries"][0]["started"], rec["tries"][0]["ended"]
        elif variant == "key of 40 hex":
            rec["key"] = rec["key"][:40]
        elif variant == "no key":
            del rec["key"]
        out.append(rec)
    return out


def records_cost(n: int) -> dict[str, Any]:
    import flowkit as fk

    out: dict[str, Any] = {"records": n}
    with tempfile.TemporaryDirectory(prefix="fk-records-") as tmp:
        store = fk.Store(Path(tmp) / "store")
        store.check()
        for variant in ("as specified", "no attempt times", "key of 40 hex", "no key"):
            records = map_records(n, variant)
            run_id = f"r-{len(out)}"
            t = time.perf_counter()
            for b in range(0, n, 1000):
                store.write_task_records(run_id, b // 1000, records[b : b + 1000])
            dt = time.perf_counter() - t
            folder = Path(store.root) / "runs" / run_id
            size = sum(p.stat().st_size for p in folder.iterdir())
            raw = sum(len(json.dumps(r, separators=(",", ":"))) for r in records)
            out[variant] = {
                "bytes": size,
                "mb": round(size / 1e6, 3),
                "uncompressed_mb": round(raw / 1e6, 3),
                "write_us_per_record": round(dt / n * 1e6, 2),
            }
    return out


# -- (d) put ----------------------------------------------------------------------------------


def put_cost() -> dict[str, float]:
    import flowkit as fk

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="fk-put-") as tmp:
        plain = fk.Store(Path(tmp) / "plain")
        signed = fk.Store(Path(tmp) / "signed", key="bench key")
        for s in (plain, signed):
            s.check()
        cases: list[tuple[str, Any, Any, int]] = [
            ("int", plain, 12345, 20_000),
            ("str", plain, "hello", 20_000),
            ("dict of 3", plain, {"a": [1, 2, 3], "b": "x", "c": None}, 20_000),
            ("int, signed store", signed, 12345, 20_000),
            ("2 KB str (an object)", plain, "x" * 2000, 2_000),
        ]
        for name, store, value, number in cases:
            store.put(value)
            best = min(timeit.repeat(lambda s=store, v=value: s.put(v), number=number, repeat=5))
            out[name] = round(best / number * 1e6, 2)
    return out


# -- report -----------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    lines = []
    local = results.get("local")
    if local:
        lines += [
            f"(a) local store, {local['calls']} cached calls ({local['files']} files):",
            "",
            "| | apparent | allocated |",
            "|---|---|---|",
            f"| whole store | {local['apparent_kib']} KiB | {local['allocated_kib']} KiB |",
            f"| per cached call | {local['apparent_per_call']:.2f} KiB | "
            f"{local['allocated_per_call']:.2f} KiB |",
        ]
        for name, f in local["folders"].items():
            lines.append(
                f"| {name}/ ({f['files']} files) | {f['apparent_kib']} KiB | "
                f"{f['allocated_kib']} KiB |"
            )
        lines.append("")
    s3 = results.get("s3")
    if s3:
        lines += [f"(b) S3 (moto on 127.0.0.1), {s3['calls']} calls, counted at the server:", ""]
        lines += ["| run | per call (entries + objects) | everything, by what it touches |"]
        lines += ["|---|---|---|"]
        for phase in ("fill", "hit"):
            p = s3[phase]
            per_call = ", ".join(f"{m} {c:.3f}" for m, c in p["per_call"].items())
            by_what = "; ".join(
                f"{k}: " + ", ".join(f"{m} {c}" for m, c in sorted(v.items()))
                for k, v in p["by_what"].items()
            )
            lines.append(f"| {phase} ({p['cached']} hits) | {per_call} | {by_what} |")
        lines.append("")
    recs = results.get("records")
    if recs:
        lines += [f"(c) {recs['records']} task records in batches of 1000:", ""]
        lines += [
            "| record shape | stored | uncompressed | write per record |",
            "|---|---|---|---|",
        ]
        for variant, r in recs.items():
            if isinstance(r, dict):
                lines.append(
                    f"| {variant} | {r['mb']} MB | {r['uncompressed_mb']} MB | "
                    f"{r['write_us_per_record']} µs |"
                )
        lines.append("")
    puts = results.get("put")
    if puts:
        lines += ["(d) `Store.put`, local store, best of 5:", "", "| value | µs per put |"]
        lines += ["|---|---|"] + [f"| {k} | {v} |" for k, v in puts.items()] + [""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="map items (W3: 1000)")
    p.add_argument("--records", type=int, default=100_000, help="task records for (c)")
    p.add_argument("--skip-s3", action="store_true", help="leave out (b)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON line")
    args = p.parse_args()
    results: dict[str, Any] = {"local": local_cost(args.n)}
    if not args.skip_s3:
        results["s3"] = s3_cost(args.n)
    results["records"] = records_cost(args.records)
    results["put"] = put_cost()
    print(json.dumps(results) if args.json else markdown(results))


if __name__ == "__main__":
    main()

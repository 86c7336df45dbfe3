"""Fill a store with real runs of ``tests/ui/ui_workflows.py``, each in a fresh process.

Roles (the keys of :attr:`FilledStore.runs`):

* ``succeeded`` -- ``pipeline`` on threads (load, a map of 3 ``train`` calls, best);
* ``cached`` -- the same run again in another process: ``load`` and ``train`` hit the cache;
* ``changed`` -- ``pipeline`` again with another ``n``: ``load`` and ``train`` miss the
  cache, and say why (``input `n` changed``);
* ``failed`` -- ``breaks``: ``explode`` prints :data:`FAILED_LOG_LINE` and raises;
* ``map`` -- ``squares`` over 1,000 items on threads;
* ``cards`` -- ``carded``: markdown, table and image cards and hostile text (``evaluate``),
  then a 300 KB output (``bulk``);
* ``secret`` -- ``with_secret`` with an ``fk.Secret`` token (:data:`SECRET_VALUE`);
* ``running`` -- ``waits``: its task waits for :attr:`FilledStore.wait_file`, so the run
  stays ``running`` until :meth:`FilledStore.finish` creates it (or stops it by PID).

Used by ``tests/ui/conftest.py`` and ``docs/img/make_screenshots.py``; ``python
tests/ui/fill_store.py STORE`` fills a store by hand (and leaves the running run waiting for
``STORE/../ui-wait``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
START_TIMEOUT = 120.0  # seconds for a run to finish, or for the running one to appear

# role -> (workflow, inputs, backend); inputs as JSON, the token is made in the child.
ROLES: Mapping[str, tuple[str, dict[str, Any], str]] = {
    "succeeded": ("pipeline", {"n": 200, "depths": [2, 4, 8]}, "threads"),
    "failed": ("breaks", {}, "local"),
    "map": ("squares", {"xs": list(range(1000))}, "threads"),
    "cards": ("carded", {}, "local"),
    "secret": ("with_secret", {"url": "https://example.invalid/data"}, "local"),
}
# After ``succeeded``: the same inputs, so its cached calls hit.
RERUN = ("cached", "succeeded")
# After ``cached`` (one pipeline run at a time: a role finds its run as the newest)
CHANGED = ("changed", {"n": 150, "depths": [2, 4, 8]})


@dataclass
class FilledStore:
    """A store holding one run per role, and the process of the one still running."""

    path: Path
    wait_file: Path
    runs: dict[str, str] = field(default_factory=dict)  # role -> run id
    running: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return str(self.path)

    def finish(self, timeout: float = 30.0) -> None:
        """Let the running run succeed (create the file it waits for); stop it by PID if it
        has not ended within ``timeout``."""
        self.wait_file.touch()
        proc, self.running = self.running, None
        if proc is None:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        finally:
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()


def fill(root: Path) -> FilledStore:
    """Fill ``root/store`` with a run per role (see the module docstring); the ``running``
    run is left running."""
    filled = FilledStore(path=root / "store", wait_file=root / "ui-wait")
    filled.wait_file.unlink(missing_ok=True)
    try:
        # two at a time: the machine is shared
        first = {role: _start(role, filled.path) for role in ("succeeded", "map")}
        filled.runs.update(_collect(first))
        rest = {role: _start(role, filled.path) for role in ("failed", "cards")}
        rest[RERUN[0]] = _start(RERUN[0], filled.path)
        filled.runs.update(_collect(rest))
        last = {role: _start(role, filled.path) for role in ("secret", CHANGED[0])}
        filled.runs.update(_collect(last))
        filled.running = _start("running", filled.path, filled.wait_file)
        filled.runs["running"] = _wait_until_running(filled.running)
    except BaseException:
        filled.finish(timeout=5)
        raise
    return filled


def _start(role: str, store: Path, wait_file: Path | None = None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--role", role, "--store", str(store)]
    if wait_file is not None:
        cmd += ["--wait-file", str(wait_file)]
    env = {**os.environ, "FLOWKIT_QUIET": "1"}
    env.pop("FLOWKIT_STORE", None)
    # the running run's stderr goes to a file: nobody drains a pipe while it waits
    err = subprocess.PIPE if wait_file is None else (store.parent / f"{role}.log").open("wb")
    try:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env)
    finally:
        if err is not subprocess.PIPE:
            err.close()


def _collect(procs: Mapping[str, subprocess.Popen[bytes]]) -> dict[str, str]:
    ids = {}
    for role, proc in procs.items():
        out, err = proc.communicate(timeout=START_TIMEOUT)
        if proc.returncode != 0:
            raise RuntimeError(f"filling the UI store: role {role} exited {proc.returncode}:\n"
                               f"{err.decode(errors='replace')}")  # fmt: skip
        ids[role] = json.loads(out.decode().strip().splitlines()[-1])["run_id"]
    return ids


def _wait_until_running(proc: subprocess.Popen[bytes]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the child prints the id once the header says running
    if not line:
        raise RuntimeError("filling the UI store: the running run did not start (see running.log)")
    run_id: str = json.loads(line)["run_id"]
    return run_id


# -- in the child process -------------------------------------------------------------------


def _run_role(role: str, store: str, wait_file: str | None) -> None:
    sys.path.insert(0, str(HERE))
    import ui_workflows as wf

    import flowkit as fk

    if role == "running":
        _run_waiting(store, wait_file or "")
        return
    name, inputs, backend = ROLES[RERUN[1] if role in (RERUN[0], CHANGED[0]) else role]
    kwargs = dict(CHANGED[1] if role == CHANGED[0] else inputs)
    if role == "secret":
        kwargs["token"] = fk.Secret(wf.SECRET_VALUE)
    try:
        fk.run(getattr(wf, name), backend=backend, store=store, **kwargs)
    except fk.TaskFailedError:
        if role != "failed":
            raise
    print(json.dumps({"run_id": fk.runs.latest(name, store=store).id}))


def _run_waiting(store: str, wait_file: str) -> None:
    """Start ``waits`` on a thread of this process; print its id once it is running."""
    import threading

    import ui_workflows as wf

    import flowkit as fk

    thread = threading.Thread(
        target=fk.run, args=(wf.waits,), kwargs={"store": store, "path": wait_file}, daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            run = fk.runs.latest("waits", store=store, status="running")
            break
        except Exception:  # no store or no run yet
            if time.monotonic() > deadline or not thread.is_alive():
                raise
            time.sleep(0.05)
    print(json.dumps({"run_id": run.id}), flush=True)
    thread.join()


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("store", nargs="?")
    parser.add_argument("--role", choices=[*ROLES, RERUN[0], CHANGED[0], "running"])
    parser.add_argument("--store", dest="store_opt")
    parser.add_argument("--wait-file")
    args = parser.parse_args(argv)
    if args.role:
        _run_role(args.role, args.store_opt, args.wait_file)
        return
    if not args.store:
        parser.error("give the store's folder")
    root = Path(args.store).resolve().parent
    filled = fill(root) if Path(args.store).name == "store" else None
    if filled is None:
        parser.error("the store's folder must be named 'store' (its parent holds the wait file)")
    print(
        json.dumps({"store": filled.url, "runs": filled.runs, "wait_file": str(filled.wait_file)})
    )


if __name__ == "__main__":
    main(sys.argv[1:])

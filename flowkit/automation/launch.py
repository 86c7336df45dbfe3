"""How the scheduler starts a run: a :class:`Launch` says what to run and how.

Schedules and triggers decide *that* a run is due and describe it as a ``Launch``; the
scheduler loop starts it (``start``: a ``flowkit run`` process of its own, or a Ray Job
when ``address`` is set), so a long run never holds up the next tick.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
from collections.abc import Mapping

from flowkit.store import Store


@dataclasses.dataclass(frozen=True)
class Launch:
    """One run to start.

    ``target``: ``FILE.py:WORKFLOW`` (a path the scheduler's machine can read).
    ``params``: workflow inputs as command-line texts (``{"n": "5"}`` is ``--n 5``; a
    ``fk.FireTime`` / ``fk.Event`` parameter gets its ISO time / event JSON).
    ``tags``: kept in the run's header (``schedule``, ``fire_time``, ``trigger``...).
    ``run_id``: chosen up front, so the fire's record names the run before it starts.
    ``store``: the store URL the run uses (the scheduler's own store).
    ``backend``: the run's backend name (None: the default).
    ``address``: a Ray dashboard address (``http://HEAD:8265``): submit as a Ray Job.
    ``notify``: webhook URLs told when the run ends (``flowkit run --notify``).
    """

    target: str
    run_id: str
    store: str
    params: Mapping[str, str] = dataclasses.field(default_factory=dict)
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    backend: str | None = None
    address: str | None = None
    notify: tuple[str, ...] = ()


# The names ``flowkit run`` uses for its own options: an input of one of these names is
# given as --input-NAME (the same set as flowkit.cli.params.RESERVED, which this layer may
# not import; a test keeps the two equal).
RUN_OWN_NAMES = frozenset(
    {
        "help",
        "h",
        "backend",
        "store",
        "no_cache",
        "refresh",
        "traceback",
        "quiet",
        "q",
        "resume",
        "read_only",
        "tag",
        "run_id",
        "secret",
        "notify",
        "notify_on",
        "pool_limit",
        "callback",
    }
)

#: Where a started run's process writes what it prints (one ``<run id>.log`` per fire): read
#: it when a fire never shows up in ``flowkit runs list`` (the workflow file failed to load).
LOG_DIR_ENV = "FLOWKIT_SCHEDULER_LOGS"


def default_log_dir() -> str:
    """``$FLOWKIT_SCHEDULER_LOGS``, else ``$XDG_STATE_HOME/flowkit/scheduler-logs`` (default
    ``~/.local/state/flowkit/scheduler-logs``)."""
    given = os.environ.get(LOG_DIR_ENV)
    if given:
        return given
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(state, "flowkit", "scheduler-logs")


def option(name: str) -> str:
    """The ``flowkit run`` option of workflow input ``name``."""
    if name in RUN_OWN_NAMES:
        return f"--input-{name}".replace("_", "-")
    return f"--{name}"


def run_command(launch: Launch) -> list[str]:
    """The ``python -m flowkit run ...`` command line that starts ``launch`` here (inputs
    as ``--NAME=TEXT``, so a text starting with ``-`` is never read as an option)."""
    argv = [sys.executable, "-m", "flowkit", "run", launch.target, "--store", launch.store]
    argv += ["--run-id", launch.run_id, "--quiet"]
    if launch.backend:
        argv += ["--backend", launch.backend]
    for key, value in sorted(launch.tags.items()):
        argv += ["--tag", f"{key}={value}"]
    for url in launch.notify:
        argv += ["--notify", url]
    argv += [f"{option(name)}={text}" for name, text in sorted(launch.params.items())]
    return argv


def start(launch: Launch, *, log_dir: str | os.PathLike[str] | None = None) -> None:
    """Start ``launch`` and return at once: a Ray Job when ``launch.address`` is set
    (``flowkit.automation.raysubmit``), else a ``flowkit run`` process in a session of its
    own (a scheduler stopped with Ctrl-C or by systemd leaves it running), writing to
    ``<log_dir>/<run id>.log``, announced first in the store (:mod:`.announce`: a process
    that dies before it starts the run shows as ``lost``, with its log named). Raises
    OSError if the process cannot be started (the announced run is marked failed)."""
    if launch.address:
        from flowkit.automation import raysubmit  # here: it imports this module

        raysubmit.submit(launch)
        return
    from flowkit.automation import announce  # here: it imports this module

    folder = os.fspath(log_dir) if log_dir is not None else default_log_dir()
    os.makedirs(folder, exist_ok=True)
    log_path = os.path.join(os.path.abspath(folder), f"{launch.run_id}.log")
    store = Store(launch.store)
    announced = announce.announce_local(store, launch, log_path)
    try:
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                run_command(launch),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    except OSError as exc:
        if announced:
            announce.not_started(store, launch.run_id, f"could not start flowkit run: {exc}")
        raise
    if announced:
        announce.started(store, launch.run_id, process.pid)
    # reaped when it ends, so a long-lived scheduler leaves no zombies behind
    threading.Thread(target=process.wait, name=f"flowkit-run-{process.pid}", daemon=True).start()


__all__ = [
    "LOG_DIR_ENV",
    "RUN_OWN_NAMES",
    "Launch",
    "default_log_dir",
    "option",
    "run_command",
    "start",
]

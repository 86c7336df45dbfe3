"""Following a run submitted as a Ray Job: what Ray says of it, and waiting for its end.

The store says how the run went once ``fk.run`` has started in the job; before that, only
Ray knows (the job is pending, or its entrypoint failed: a package missing on the cluster, a
workflow file that does not import there). :func:`job_note` asks Ray for a run still
``submitted``; :func:`wait` watches both and, when the job ended without starting the run,
writes the run as ``failed`` with Ray's message (the submitter owns that header until the run
adopts it), so every reader sees why.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from flowkit.automation import rayjobs
from flowkit.automation.raysubmit import ADDRESS_TAG, ENDED, JOB_TAG
from flowkit.store import Store

_MESSAGE_CHARS = 2000


def job_of(header: Mapping[str, Any]) -> tuple[str, str] | None:
    """(job id, job server) of a run submitted as a Ray Job, from its tags; else None."""
    tags = header.get("tags")
    if not isinstance(tags, Mapping):
        return None
    job, address = tags.get(JOB_TAG), tags.get(ADDRESS_TAG)
    if isinstance(job, str) and isinstance(address, str) and job and address:
        return job, address
    return None


def logs_hint(job: str, address: str) -> str:
    return f"ray job logs {job} --address {address}"


def job_note(header: Mapping[str, Any]) -> str | None:
    """One line on the Ray job of a ``submitted`` run: its status and message, or why Ray
    could not be asked; None for other runs."""
    found = job_of(header)
    if found is None or header.get("status") != "submitted":
        return None
    job, address = found
    try:
        state = rayjobs.state(address, job)
    except rayjobs.RayJobError as exc:
        return f"{job}: cannot ask Ray ({exc}); later: {logs_hint(job, address)}"
    message = _ends(" ".join(state.message.split()))
    note = f"{job} {state.status}" + (f": {message}" if message else "")
    return f"{note} (logs: {logs_hint(job, address)})"


def _ends(text: str, head: int = 120, tail: int = 240) -> str:
    """``text``, or its start and its end when long (Ray's message ends with the job's last
    log lines: the error that stopped it)."""
    return text if len(text) <= head + tail + 5 else f"{text[:head]} ... {text[-tail:]}"


def wait(
    store: Store,
    run_id: str,
    *,
    poll: float = 1.0,
    ask_ray_every: float = 5.0,
    timeout: float | None = None,
) -> dict[str, Any]:
    """The run's header once it has ended (as readers see it), following its Ray job: the
    store is read every ``poll`` seconds, Ray asked every ``ask_ray_every`` seconds (and at
    once). TimeoutError after ``timeout`` seconds (None: no limit)."""
    start = time.monotonic()
    asked: float | None = None
    while True:
        now = time.monotonic()
        if timeout is not None and now - start > timeout:
            raise TimeoutError(f"run {run_id} has not ended after {timeout:g} s")
        header = store.read_run(run_id)[0]
        if header.get("status") in ENDED:
            return header
        found = job_of(header)
        if found is not None and (asked is None or now - asked >= ask_ray_every):
            asked = now
            state = _state(found)
            if state is not None and state.ended:
                return _after_job(store, run_id, state)
        time.sleep(poll)


def _state(found: tuple[str, str]) -> rayjobs.JobState | None:
    try:
        return rayjobs.state(found[1], found[0])
    except rayjobs.RayJobError:  # the laptop lost the cluster for a while: the store decides
        return None


def _after_job(store: Store, run_id: str, state: rayjobs.JobState) -> dict[str, Any]:
    """The job ended: the run's final header (the job may end just after its last write)."""
    header = store.read_run(run_id)[0]
    if header.get("status") in ENDED:
        return header
    found = job_of(header)
    job = found[0] if found else "?"
    if header.get("status") == "submitted":
        why = f"Ray job {job} {state.status} before the run started: {state.message}"
        header = {
            **header,
            "status": "failed",
            "ended": time.time(),
            "error": why[:_MESSAGE_CHARS],
        }
        store.write_run(run_id, header)
        return header
    # "running" with its job over: the driver died without writing its end
    return {**header, "status": "lost", "error": f"Ray job {job} {state.status}: {state.message}"}


__all__ = ["job_note", "job_of", "logs_hint", "wait"]

"""Runs submitted to a Ray cluster as Ray Jobs: ``flowkit submit``, and schedules with an address.

:func:`submit` hands a :class:`~flowkit.automation.launch.Launch` to the cluster's job server
and returns at once; the cluster runs it while the submitting machine may go to sleep. In
order, so that no step can leave a run nobody can see:

1. the job server is asked whether it is there (:func:`flowkit.automation.rayjobs.check`);
2. the run's header is written with status ``submitted``, tagged with the Ray job's id
   (``ray_job``, chosen here: ``flowkit-<run id>``) and the job server (``ray_address``), so
   ``flowkit runs list/show`` see the run at once, before the job starts;
3. the job is submitted: its entrypoint is ``python -m flowkit run FILE:WF --store S
   --run-id ID --backend B --PARAM TEXT ...``; the workflow's folder is its ``working_dir``
   (:mod:`flowkit.automation.shipdir`), so sibling modules import on the cluster.
   ``fk.run`` in the job adopts the ``submitted`` header (and its tags). A refused submission
   turns the header to ``failed`` with Ray's answer.

The job's driver runs on the head; its tasks run on the cluster through the ``ray`` backend
(the default here): in a job, ``RAY_ADDRESS`` names the cluster, and the job's runtime env
reaches every worker. The store must be one the cluster reaches: a local path is made
absolute, and is only right when the cluster runs on this machine (or shares the path), which
is warned about when the job server is not on a loopback address.

A job that fails before ``fk.run`` starts (an import error on the cluster, a missing package)
leaves the header ``submitted``; :func:`describe` asks Ray why, and :func:`wait` turns such a
run to ``failed`` with Ray's message.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shlex
import time
from collections.abc import Mapping
from typing import Any

from flowkit.automation import rayjobs, shipdir
from flowkit.automation.announce import announcement, file_stem, split_target
from flowkit.automation.launch import Launch, option
from flowkit.automation.rayjobs import RayJobError
from flowkit.errors import FlowkitError
from flowkit.runstore import is_run_id, run_dir
from flowkit.store import Store

log = logging.getLogger(__name__)

JOB_TAG = "ray_job"
ADDRESS_TAG = "ray_address"
DEFAULT_BACKEND = "ray"
#: Statuses after which a run changes no more.
ENDED = frozenset({"succeeded", "failed", "interrupted", "lost"})


def job_id_for(run_id: str) -> str:
    """The Ray job id ``flowkit submit`` gives run ``run_id``'s job."""
    return f"flowkit-{run_id}"


def submit(
    launch: Launch,
    *,
    working_dir: str | None = None,
    runtime_env: Mapping[str, Any] | None = None,
    workflow: str | None = None,
    python: str = "python",
) -> str:
    """Submit ``launch`` as a Ray Job to the job server at ``launch.address``; return the job
    id once its ``submitted`` header is in the store (see the module docstring).

    ``working_dir``: the folder to ship (default: the workflow file's); the file must be in
    it. ``runtime_env``: more of the job's runtime env (``pip``, ``env_vars``...; its
    ``excludes`` are added to flowkit's). ``workflow``: the workflow's name for the header
    until the run starts (default: the target's ``:WF``, else the file's stem). ``python``:
    the interpreter the cluster runs the entrypoint with.
    """
    if not launch.address:
        raise FlowkitError(f"run {launch.run_id}: no Ray job server address to submit to")
    path, wf = split_target(launch.target)
    given = working_dir or (runtime_env or {}).get("working_dir")
    if given is not None and (not isinstance(given, str) or "://" in given):
        raise FlowkitError(
            f"working_dir={given!r}: give a local folder holding the workflow file (flowkit "
            "uploads it; a package already uploaded cannot be checked)"
        )
    folder = os.path.abspath(given or os.path.dirname(os.path.abspath(path)))
    inside = os.path.relpath(os.path.abspath(path), folder)
    if not os.path.isfile(path) or inside.startswith(os.pardir):
        raise FlowkitError(
            f"{path}: not a file inside the folder shipped to the cluster ({folder})"
        )
    store = _store_for_cluster(launch.store, launch.address)
    _check_new(store, launch.run_id)
    jobs = rayjobs.client(launch.address)
    job_id = job_id_for(launch.run_id)
    backend = launch.backend or DEFAULT_BACKEND
    shipment = shipdir.plan(folder, keep_out=(store.root,) if store.local else ())
    target = inside.replace(os.sep, "/") + (f":{wf}" if wf else "")
    tags = {**launch.tags, JOB_TAG: job_id, ADDRESS_TAG: rayjobs.dashboard_url(launch.address)}
    header = announcement(launch, workflow or wf or file_stem(path), backend, tags)
    store.write_run(launch.run_id, header)
    try:
        jobs.submit_job(
            entrypoint=entrypoint(launch, target, store.url, backend, python=python),
            submission_id=job_id,
            runtime_env=_runtime_env(shipment, runtime_env),
            metadata={"flowkit_run": launch.run_id, "flowkit_store": store.url},
        )
    except Exception as exc:  # the job server refused it: say so in the run, then raise
        header.update(status="failed", ended=time.time(), error=f"Ray job not submitted: {exc}")
        store.write_run(launch.run_id, header)
        raise RayJobError(
            f"the Ray job server at {launch.address} refused run {launch.run_id}: {exc}"
        ) from exc
    log.info("run %s submitted as Ray job %s to %s", launch.run_id, job_id, launch.address)
    return job_id


def entrypoint(
    launch: Launch, target: str, store_url: str, backend: str, *, python: str = "python"
) -> str:
    """The shell command the job runs: ``flowkit run`` with the launch's options, quoted
    (tags are not among them: ``fk.run`` adopts them from the ``submitted`` header)."""
    args = [python, "-m", "flowkit", "run", target, "--store", store_url]
    args += ["--run-id", launch.run_id, "--backend", backend]
    for url in launch.notify:
        args += ["--notify", url]
    # --NAME=TEXT: a text starting with "-" is never read as an option
    args += [f"{option(name)}={text}" for name, text in launch.params.items()]
    return shlex.join(args)


def _store_for_cluster(url: str, address: str) -> Store:
    """The store as the cluster must name it: a local path made absolute (checked here)."""
    store = Store(url)
    if store.url.startswith("memory://"):
        raise FlowkitError(
            f"store {store.url} lives in this process; a Ray job needs a store the cluster "
            "reaches (s3://..., gs://..., or a path shared with the cluster)"
        )
    if store.local and not _is_loopback(rayjobs.host_of(address)):
        log.warning(
            "store %s is a local path: the job on %s writes to that path on the cluster, "
            "not here; use a store both reach (s3://..., a shared file system)",
            store.url,
            address,
        )
    store.check()
    return store


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_new(store: Store, run_id: str) -> None:
    if not is_run_id(run_id):
        raise FlowkitError(
            f"run id {run_id!r}: use letters, digits, '.', '_' and '-', starting with a "
            "letter or digit"
        )
    if store.list_dir(run_dir(run_id)):
        raise FlowkitError(f"a run {run_id} is already in the store {store.url}; choose a new id")


def _runtime_env(shipment: shipdir.Shipment, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    env: dict[str, Any] = {**dict(extra or {}), **shipment.runtime_env()}
    more = (extra or {}).get("excludes") or []
    env["excludes"] = [*shipment.excludes, *more]
    return env


__all__ = [
    "ADDRESS_TAG",
    "DEFAULT_BACKEND",
    "JOB_TAG",
    "entrypoint",
    "job_id_for",
    "submit",
]

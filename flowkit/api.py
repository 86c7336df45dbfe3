"""``fk.run``: wire a workflow, its inputs, a backend, a store and callbacks to the engine."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flowkit import lifecycle
from flowkit import workflow as workflow_module
from flowkit.backend import Backend, check_store, get_backend
from flowkit.callbacks import Callback, CallbackGroup
from flowkit.engine import CacheMode, execute
from flowkit.errors import FlowkitError, TaskFailedError
from flowkit.header_inputs import record_inputs
from flowkit.limits import check_limits, check_pools
from flowkit.records import Run, new_run_id
from flowkit.resume import Reuse
from flowkit.runstore import is_run_id, run_dir
from flowkit.secret import mask
from flowkit.store import Store, resolve_store
from flowkit.workflow import WorkflowDef, bind_inputs

log = logging.getLogger(__name__)


def run(
    workflow: WorkflowDef[..., Any],
    /,
    *,
    backend: str | Backend | None = None,
    store: str | Store | None = None,
    cache: CacheMode = True,
    callbacks: Sequence[Callback] = (),
    inputs: Mapping[str, Any] | None = None,
    keep: bool = True,
    resume: str | Run | None = None,
    run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    limits: Mapping[str, int] | None = None,
    **kwargs: Any,
) -> Run:
    """Run a workflow and return its :class:`~flowkit.records.Run` record.

    Example::

        run = fk.run(pipeline, n=500, backend="threads", store="file:///data/fk")
        run.output, run.id, run.status, run.tasks

    ``backend``: a name (``"local"``, ``"threads"``, ``"ray"`` or any registered one) or an
    instance; default ``$FLOWKIT_BACKEND`` or ``"local"``. ``store``: an fsspec URL, a path,
    or an :class:`~flowkit.store.Store`; default ``$FLOWKIT_STORE`` or ``./.flowkit``.
    ``cache``: ``True`` (look up and record tasks declared ``cache=True``), ``False``
    (neither), or ``"refresh"`` (recompute and overwrite). A task that still fails after its
    retries raises :class:`~flowkit.errors.TaskFailedError`; the run record is saved first.
    ``keep``: every task output is kept in the store (``fk.runs`` reads them back; a task's
    own ``keep=False`` opts it out); ``False`` keeps only cached outputs and the workflow's
    output. ``resume``: a run (or its id, or a unique prefix of one) whose succeeded calls
    are reused where their keys still match; the others run. ``run_id``: the id to give
    the run (one chosen before it starts, as ``flowkit submit`` does; it must not name a run
    already in the store, unless ``flowkit submit`` announced it: that ``submitted`` run is
    adopted, its tags kept); default a new sortable id. ``tags``: short strings kept in the
    run's header (``{"schedule": "nightly"}``), shown by ``flowkit runs`` and the UI.
    ``limits``: calls in flight at once per pool (``{"api": 2}``), shared by the tasks
    declared ``@fk.task(pool="api")``; a pool a task names must be given here.

    Workflow inputs are keyword arguments; an input whose name clashes with one of these
    options (``store``, ``backend``, ``cache``, ``callbacks``, ``inputs``, ``keep``,
    ``resume``, ``run_id``, ``tags``, ``limits``) goes in ``inputs={"store": ...}``.
    """
    _check_arguments(workflow, cache, keep, resume)
    the_tags = _check_tags(tags)
    the_limits = check_limits(limits)
    check_pools((node.task for node in workflow.graph.nodes.values()), the_limits)
    values = bind_inputs(workflow, (), {**(inputs or {}), **kwargs})
    the_store = resolve_store(store)
    the_store.check()
    if run_id is not None:
        # a run `flowkit submit` announced keeps the tags it was given there
        the_tags = {**_check_new_run_id(the_store, run_id), **the_tags}
    reuse = None if resume is None else _reuse(the_store, resume, workflow)
    the_backend = get_backend(backend or os.environ.get("FLOWKIT_BACKEND") or "local")
    group = CallbackGroup(callbacks)
    record = _start(workflow, values, the_backend, the_store, group, keep, reuse, run_id, the_tags)
    try:
        with lifecycle.sigterm_interrupts(), lifecycle.Heartbeat(_beat(record, the_store)):
            _execute(
                workflow, values, the_backend, the_store, cache, group, record, reuse, the_limits
            )
        record.status = "succeeded"
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (lifecycle.RunInterrupted)
        record.status = "interrupted"
        record.error = mask(f"{type(e).__name__}: {e}") if str(e) else type(e).__name__
        raise
    except BaseException as e:
        record.status = "failed"
        record.error = mask(f"{type(e).__name__}: {e}")
        raise
    finally:
        _finish(record, the_store, group)
    return record


def _start(
    workflow: WorkflowDef[..., Any],
    values: dict[str, Any],
    backend: Backend,
    store: Store,
    group: CallbackGroup,
    keep: bool,
    reuse: Reuse | None,
    run_id: str | None,
    tags: dict[str, str],
) -> Run:
    """The run's record, its header written (who runs it, a first heartbeat), callbacks told."""
    record = Run(
        id=run_id or new_run_id(),
        workflow=workflow.name,
        inputs=values,
        recorded_inputs=record_inputs(values, store),
        backend=backend.name,
        host=lifecycle.this_host(),
        pid=os.getpid(),
        keep=keep,
        resumed_from=None if reuse is None else reuse.run_id,
        graph=workflow.graph.shape(),
        tags=tags,
    )
    record.heartbeat = record.started
    store.write_run(record.id, record.to_dict())
    group.emit("on_run_start", record)
    return record


def _beat(record: Run, store: Store) -> Callable[[], None]:
    """Rewrite the run's header with a fresh heartbeat (readers tell a live run from a lost one)."""

    def beat() -> None:
        record.heartbeat = time.time()
        store.write_run(record.id, record.to_dict())

    return beat


def _check_arguments(workflow: Any, cache: Any, keep: Any, resume: Any) -> None:
    if not isinstance(workflow, WorkflowDef):
        raise FlowkitError(
            f"fk.run expects a workflow (a function decorated with @fk.workflow), got {workflow!r}"
        )
    if not (cache is True or cache is False or cache == "refresh"):  # 1 == True: be exact
        raise FlowkitError(f"cache={cache!r}: use True, False or 'refresh'")
    if not (keep is True or keep is False):
        raise FlowkitError(f"keep={keep!r}: use True or False")
    if resume is not None and not isinstance(resume, (str, Run)):
        raise FlowkitError(f"resume={resume!r}: pass a run id (or a unique prefix) or a Run")
    if resume is not None and cache == "refresh":
        raise FlowkitError(
            "resume= and cache='refresh' contradict each other (reuse calls, or recompute "
            "them); pass one of them"
        )


def _check_tags(tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise FlowkitError(f"tags={tags!r}: pass a mapping of str to str")
    return dict(tags)


def _check_new_run_id(store: Store, run_id: Any) -> dict[str, str]:
    """A chosen run id must name a folder and no run already there (one run per id), except
    a run announced as ``submitted`` (``flowkit submit`` writes that header before the Ray
    job starts this run): it is adopted, and its tags are returned."""
    if not isinstance(run_id, str) or not is_run_id(run_id):
        raise FlowkitError(
            f"run_id={run_id!r}: use letters, digits, '.', '_' and '-', starting with a "
            "letter or digit"
        )
    names = store.list_dir(run_dir(run_id))
    if not names:
        return {}
    header = store.read_run(run_id)[0] if names == ["run.json"] else {}
    if header.get("status") != "submitted":
        raise FlowkitError(
            f"run_id={run_id!r}: a run with this id is already in the store {store.url}; "
            "choose a new id (or leave run_id unset)"
        )
    tags = header.get("tags")
    if not isinstance(tags, dict):
        return {}
    return {k: v for k, v in tags.items() if isinstance(k, str) and isinstance(v, str)}


def _reuse(store: Store, resume: str | Run, workflow: WorkflowDef[..., Any]) -> Reuse:
    """The calls of the run being resumed (StoreError naming the id if there is none)."""
    reuse = Reuse.load(store, resume.id if isinstance(resume, Run) else resume)
    if reuse.workflow and reuse.workflow != workflow.name:
        log.warning(
            "resuming run %s of workflow `%s` with workflow `%s`: only calls whose keys match "
            "are reused",
            reuse.run_id,
            reuse.workflow,
            workflow.name,
        )
    return reuse


def _execute(
    workflow: WorkflowDef[..., Any],
    values: dict[str, Any],
    backend: Backend,
    store: Store,
    cache: CacheMode,
    group: CallbackGroup,
    record: Run,
    reuse: Reuse | None,
    limits: Mapping[str, int],
) -> None:
    """Run the workflow on the backend (entered and left here) into ``record.output``."""
    with backend:
        if record.keep or reuse is not None or (cache is not False and _uses_cache(workflow)):
            check_store(backend, store.url)  # workers use the store themselves
        record.output = execute(
            workflow.graph,
            values,
            backend,
            store,
            cache,
            group,
            record,
            keep=record.keep,
            reuse=reuse,
            limits=limits,
        )


def _finish(record: Run, store: Store, group: CallbackGroup) -> None:
    """Stamp the end, save the record (its failure is logged, not raised), tell callbacks."""
    record.ended = time.time()
    try:
        store.write_run(record.id, record.to_dict())
    except Exception:  # the run's own outcome matters more than its record
        log.exception("could not write the record of run %s", record.id)
    group.emit("on_run_end", record)


def _uses_cache(workflow: WorkflowDef[..., Any]) -> bool:
    return any(node.task.options.cache for node in workflow.graph.nodes.values())


workflow_module.set_default_runner(run)

__all__ = ["TaskFailedError", "run"]

"""``MLflowTracker``: one MLflow run per flowkit run, with no MLflow code inside tasks.

What is logged (names are made MLflow-safe: ``[`` ``]`` and other characters become ``/``/``_``):

* **params** — the workflow inputs (lists/dicts as JSON, other objects by type and a short repr);
* **tags** — ``flowkit.run_id``, ``flowkit.workflow``, ``flowkit.backend``, and at the end
  ``flowkit.status``, ``flowkit.tasks_run`` / ``flowkit.tasks_cached`` / ``flowkit.tasks_failed``
  and ``flowkit.error`` for a failed run, plus any ``tags=`` given;
* **metrics from tasks** — every output whose declared type is :data:`flowkit.ml.Metrics`
  (``dict[str, float]``, also as an element of a tuple / NamedTuple return). If exactly one task
  call produced metrics they are logged under their own names (``accuracy``); otherwise each is
  prefixed with its node (``evaluate/accuracy``), and the calls of a mapped node become the
  *steps* of one metric (``evaluate[3]`` → ``evaluate/accuracy`` at step 3), which MLflow plots
  as a curve over the fan-out. Non-numeric values are skipped.
* **per-task metrics** — ``flowkit/<node>/duration_s`` and ``flowkit/<node>/cached`` (1 for a
  cache hit), stepped the same way; run-level ``flowkit/duration_s``.
* **drift scores** — every output typed :class:`~flowkit.ml.DriftReport` (what ``ml.drift``
  returns): ``<node>/<column>/score`` (and ``/pvalue`` for the ``"ks"`` method) per compared
  column and ``<node>/drifted`` (1 or 0), stepped like the task metrics.
* **status** — the MLflow run ends ``FINISHED`` or ``FAILED`` with the flowkit run.

* **HPO trials** — when the workflow body made settings with ``ml.grid`` / ``ml.random_search``
  and a mapped node's ``Metrics`` have exactly as many steps as one such list has settings,
  each trial is a child run (``trial-<i>``, tag ``flowkit.trial``; ``flowkit.run_id`` stays
  the tag of the one run tracking the flowkit run) holding setting ``i`` as
  params and step ``i``'s metrics (the fan-out lines up item by item, as in
  ``evaluate.map(model=fit.map(params=ml.grid(...)))``). Several lists of that length are
  ambiguous: no trial runs then. ``log_trials=False`` turns this off.

Lineage: while a tracked run is active, :func:`active_run` tells code in the same process (a
task on the ``threads`` backend, e.g. ``ml.register``) the flowkit run id and the MLflow run id,
when exactly one tracked run is active (several concurrent runs are ambiguous: None).

Policy: everything goes through one explicit ``MlflowClient`` (never MLflow's global active
run), and a run's state lives in thread-local storage, so one tracker can observe concurrent
``fk.run`` calls made from different threads (each run's hooks come from its own thread).
Metrics are buffered in the driver and sent with ``log_batch`` (per-task timings every
``flush_every`` task ends, task metrics at the end, when their names can be decided). A failing
MLflow call is logged by flowkit's callback machinery and never fails the run.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import re
import threading
import time
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowkit.callbacks import Callback, Output
from flowkit.ml import search, uris
from flowkit.ml.drift import DriftReport
from flowkit.records import Run, TaskRecord

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

_MAX_PARAM = 6000  # MLflow's limit on a param value
_MAX_TAG = 8000
_BATCH_METRICS = 1000
_BATCH_PARAMS = 100
_ACTIVE_LOCK = threading.Lock()
# flowkit run id -> (MLflow run id, tracking URI) of every tracked run active in this process.
_ACTIVE_RUNS: dict[str, tuple[str, str]] = {}
_MAP_ITEM = re.compile(r"^(.*)\[(\d+)\]$")
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")


def is_metrics_type(tp: Any) -> bool:
    """True for ``dict[str, float]`` (``ml.Metrics``), also behind ``Annotated``/``typing.Dict``."""
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return typing.get_origin(tp) is dict and typing.get_args(tp) == (str, float)


def metrics_in(tp: Any, value: Any) -> list[Mapping[str, Any]]:
    """The ``Metrics`` parts of an output: the output itself, or elements of a tuple return."""
    if is_metrics_type(tp):
        return [value] if isinstance(value, Mapping) else []
    if hasattr(tp, "_fields"):  # NamedTuple
        fields = _field_types(tp)
    elif typing.get_origin(tp) is tuple:
        fields = list(typing.get_args(tp))
    else:
        return []
    if not isinstance(value, tuple) or len(value) != len(fields):
        return []
    pairs = zip(fields, value, strict=True)
    return [v for t, v in pairs if is_metrics_type(t) and isinstance(v, Mapping)]


def _field_types(tp: Any) -> list[Any]:
    try:
        return list(typing.get_type_hints(tp).values())
    except Exception:  # unresolvable forward references: no metrics to find
        return []


def has_metrics(tp: Any) -> bool:
    """Whether an output of declared type ``tp`` can hold ``Metrics`` (checked before fetching)."""
    if is_metrics_type(tp):
        return True
    if hasattr(tp, "_fields"):
        return any(is_metrics_type(t) for t in _field_types(tp))
    return typing.get_origin(tp) is tuple and any(is_metrics_type(t) for t in typing.get_args(tp))


def metric_key(*parts: str) -> str:
    """An MLflow-valid metric name from parts (bad characters → ``_``, no empty segments)."""
    text = "/".join(p for p in parts if p)
    segments = [_BAD_KEY_CHARS.sub("_", s) for s in text.split("/")]
    return "/".join(s if s not in ("", ".", "..") else "_" for s in segments)


def node_base_and_step(node: str) -> tuple[str, int]:
    """``train[3]`` → ``("train", 3)``; ``evaluate`` → ``("evaluate", 0)``."""
    m = _MAP_ITEM.match(node)
    return (m.group(1), int(m.group(2))) if m else (node, 0)


def param_value(value: Any) -> str:
    """A workflow input as an MLflow param value (short, readable, never huge)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        text = str(value)
    elif isinstance(value, (list, tuple, dict)):
        try:
            text = json.dumps(value, default=repr)
        except (TypeError, ValueError):
            text = repr(value)
    else:
        shape = getattr(value, "shape", None)
        text = f"<{type(value).__name__}{' shape=' + str(shape) if shape is not None else ''}>"
    return text if len(text) <= _MAX_PARAM else text[: _MAX_PARAM - 3] + "..."


def _trial_metrics(state: _State) -> dict[int, dict[str, float]]:
    """Step → metrics of the mapped nodes whose calls produced metrics, when their steps are
    exactly 0..n-1 (one per trial); empty otherwise. Names are prefixed with the node when
    several mapped nodes produced metrics."""
    items = [m for m in state.task_metrics if m[0] != m[1]]  # map items only
    prefix = len({base for _node, base, _step, _values in items}) > 1
    per_step: dict[int, dict[str, float]] = {}
    for _node, base, step, values in items:
        for name, value in values.items():
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                if math.isfinite(float(value)):
                    key = metric_key(base, str(name)) if prefix else metric_key(str(name))
                    per_step.setdefault(step, {})[key] = float(value)
    if sorted(per_step) != list(range(len(per_step))):
        return {}
    return per_step


@dataclass(frozen=True)
class ActiveRun:
    """The tracked run code is running under: ids of the flowkit run and its MLflow run."""

    flowkit_run_id: str
    mlflow_run_id: str
    tracking_uri: str


def active_run() -> ActiveRun | None:
    """The one tracked run active in this process, or None (none, or several at once)."""
    with _ACTIVE_LOCK:
        if len(_ACTIVE_RUNS) != 1:
            return None
        ((flowkit_id, (mlflow_id, uri)),) = _ACTIVE_RUNS.items()
    return ActiveRun(flowkit_id, mlflow_id, uri)


def drift_metrics(value: Any) -> dict[str, float]:
    """A drift report's scores as metric names (relative to the node) and values."""
    if not isinstance(value, DriftReport):
        return {}
    found = {"drifted": float(value.drifted)}
    for column, entry in value.features.items():
        for name in ("score", "pvalue"):
            if isinstance(entry.get(name), (int, float)):
                found[metric_key(str(column), name)] = float(entry[name])
    return found


def _is_drift_type(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, DriftReport)


@dataclass
class _State:
    """One flowkit run's MLflow run and what is still to be sent."""

    run_id: str
    flowkit_run_id: str = ""
    experiment_id: str = ""
    trials: list[list[dict[str, Any]]] = field(default_factory=list)  # traced HPO settings
    metrics: list[tuple[str, float, int]] = field(default_factory=list)
    task_metrics: list[tuple[str, str, int, Mapping[str, Any]]] = field(default_factory=list)
    pending_since: int = 0

    def add_duration(self, record: TaskRecord) -> tuple[str, int]:
        """Queue the task's duration (when known) as ``flowkit.<task>.duration_s`` at its map
        step; returns the task's name and step."""
        base, step = node_base_and_step(record.node)
        if record.duration is not None:
            self.metrics.append((metric_key("flowkit", base, "duration_s"), record.duration, step))
        return base, step


class MLflowTracker(Callback):
    """Log each flowkit run as an MLflow run (see the module docs for what is logged).

    Example::

        tracker = ml.MLflowTracker(tracking_uri="http://127.0.0.1:5000", experiment="digits")
        run = fk.run(pipeline, backend="threads", callbacks=[tracker])
        tracker.last_run_id            # the MLflow run id

    ``tracking_uri=None`` uses ``$MLFLOW_TRACKING_URI`` or the embedded sqlite registry under
    the flowkit store; ``experiment=None`` uses the workflow name.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        flush_every: int = 200,
        log_trials: bool = True,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.flush_every = max(1, int(flush_every))
        self.log_trials = bool(log_trials)
        #: The MLflow run id of the latest run this tracker started (from any thread).
        self.last_run_id: str | None = None
        self._local = threading.local()
        self._active: dict[str, _State] = {}  # flowkit run id -> state, for the fallback below
        self._client: MlflowClient | None = None
        self._uri = ""
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MLflowTracker(tracking_uri={self.tracking_uri!r}, experiment={self.experiment!r})"

    # -- plumbing -------------------------------------------------------------------------

    def _mlflow(self) -> MlflowClient:
        with self._lock:
            if self._client is None:
                self._client, self._uri = uris.client(self.tracking_uri)
            return self._client

    @property
    def _state(self) -> _State | None:
        state: _State | None = getattr(self._local, "state", None)
        if state is None and not getattr(self._local, "started", False):
            # Hooks of a run normally come from the thread that started it; if an engine ever
            # calls them from a thread that started no run, the one active run is unambiguous.
            with self._lock:
                if len(self._active) == 1:
                    state = next(iter(self._active.values()))
        return state

    def _send_metrics(self, state: _State, items: Iterable[tuple[str, float, int]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, step) for k, v, step in items]
        for i in range(0, len(batch), _BATCH_METRICS):
            self._mlflow().log_batch(state.run_id, metrics=batch[i : i + _BATCH_METRICS])

    def _flush(self, state: _State) -> None:
        if state.metrics:
            items, state.metrics = state.metrics, []
            self._send_metrics(state, items)
        state.pending_since = 0

    # -- hooks ----------------------------------------------------------------------------

    def on_run_start(self, run: Run) -> None:
        from mlflow.entities import Param

        self._local.state = None
        self._local.started = True  # even if MLflow fails below: this thread's run is untracked
        c = self._mlflow()
        experiment_id = uris.ensure_experiment(c, self._uri, self.experiment or run.workflow)
        tags = {
            "flowkit.run_id": run.id,
            "flowkit.workflow": run.workflow,
            "flowkit.backend": run.backend,
            **self.tags,
        }
        mlrun = c.create_run(
            experiment_id,
            start_time=int(run.started * 1000),
            tags=tags,
            run_name=f"{run.workflow}-{run.id}",
        )
        trials = search.traced_settings(run.workflow) if self.log_trials else []
        state = _State(mlrun.info.run_id, run.id, experiment_id, trials)
        self._local.state = state
        with self._lock:
            self._active[run.id] = state
        with _ACTIVE_LOCK:
            _ACTIVE_RUNS[run.id] = (state.run_id, self._uri)
        self.last_run_id = state.run_id
        params = [Param(metric_key(str(k)), param_value(v)) for k, v in run.inputs.items()]
        for i in range(0, len(params), _BATCH_PARAMS):
            c.log_batch(state.run_id, params=params[i : i + _BATCH_PARAMS])
        log.info("MLflow run %s tracks flowkit run %s (%s)", state.run_id, run.id, self._uri)

    def on_task_end(self, record: TaskRecord, output: Output) -> None:
        state = self._state
        if state is None:
            return
        base, step = state.add_duration(record)
        state.metrics.append((metric_key("flowkit", base, "cached"), float(record.cached), step))
        if has_metrics(output.type):  # fetch the value only when it can hold metrics
            for part in metrics_in(output.type, output.value):
                state.task_metrics.append((record.node, base, step, dict(part)))
        if _is_drift_type(output.type):
            for name, value in drift_metrics(output.value).items():
                if math.isfinite(value):
                    state.metrics.append((metric_key(base, name), value, step))
        state.pending_since += 1
        if state.pending_since >= self.flush_every:
            self._flush(state)

    def on_task_error(self, record: TaskRecord, error: BaseException) -> None:
        state = self._state
        if state is None:
            return
        state.add_duration(record)

    def _log_trials(self, state: _State) -> None:
        """One child run per HPO trial: its setting as params, its metrics (module docs)."""
        from mlflow.entities import Metric, Param

        per_step = _trial_metrics(state)
        if not per_step or not state.trials:
            return
        lists = [t for t in state.trials if len(t) == len(per_step)]
        if len(lists) != 1:
            log.info(
                "MLflow: %d settings lists match %d trials: no trial runs",
                len(lists),
                len(per_step),
            )
            return
        c, now = self._mlflow(), int(time.time() * 1000)
        for step, setting in enumerate(lists[0]):
            child = c.create_run(
                state.experiment_id,
                tags={
                    "mlflow.parentRunId": state.run_id,  # not flowkit.run_id: the parent's
                    "flowkit.trial": str(step),
                },
                run_name=f"trial-{step}",
            )
            params = [Param(metric_key(str(k)), param_value(v)) for k, v in setting.items()]
            metrics = [Metric(k, v, now, 0) for k, v in per_step[step].items()]
            c.log_batch(child.info.run_id, metrics=metrics, params=params[:_BATCH_PARAMS])
            c.set_terminated(child.info.run_id, "FINISHED")

    def on_run_end(self, run: Run) -> None:
        from mlflow.entities import RunTag

        state = self._state
        self._local.started = False
        if state is None:
            return
        self._local.state = None
        with self._lock:
            self._active.pop(state.flowkit_run_id, None)
        with _ACTIVE_LOCK:
            _ACTIVE_RUNS.pop(state.flowkit_run_id, None)
        c = self._mlflow()
        try:
            prefix = len(state.task_metrics) != 1
            for _node, base, step, values in state.task_metrics:
                for name, value in values.items():
                    if isinstance(value, bool) or not isinstance(value, numbers.Real):
                        continue
                    v = float(value)
                    if math.isnan(v) or math.isinf(v):
                        continue  # MLflow stores them, but no plot or comparison can use them
                    key = metric_key(base, str(name)) if prefix else metric_key(str(name))
                    state.metrics.append((key, v, step))
            if run.duration is not None:
                state.metrics.append(("flowkit/duration_s", run.duration, 0))
            self._flush(state)
            self._log_trials(state)
            summary = run.summary()
            end_tags = {
                "flowkit.status": run.status,
                "flowkit.tasks_run": str(summary["run"]),
                "flowkit.tasks_cached": str(summary["cached"]),
                "flowkit.tasks_failed": str(summary["failed"]),
            }
            if run.error:
                end_tags["flowkit.error"] = run.error[:_MAX_TAG]
            c.log_batch(state.run_id, tags=[RunTag(k, v) for k, v in end_tags.items()])
        finally:
            status = "FINISHED" if run.status == "succeeded" else "FAILED"
            end = int((run.ended or time.time()) * 1000)
            c.set_terminated(state.run_id, status, end_time=end)


__all__ = [
    "ActiveRun",
    "MLflowTracker",
    "active_run",
    "drift_metrics",
    "has_metrics",
    "is_metrics_type",
    "metrics_in",
]

"""Model deployment on an MLflow registry: register versions, point aliases, roll back.

Aliases (``production``, ``staging``, ...) name the deployed version; MLflow's deprecated stages
are not used. MLflow keeps only an alias's current version, so flowkit keeps each alias's
history in a registered-model tag, ``flowkit.alias_history.<alias>``: a JSON list of the
versions that held it, oldest first, the current one last. :func:`promote` appends,
:func:`rollback` pops, so repeated rollbacks walk back through earlier deployments. Each move
is also logged, with its kind and time, in ``flowkit.alias_events.<alias>`` (what ``flowkit
ui`` shows as the alias's promote/rollback history). An alias
moved by other tools is reconciled (its current version is appended) before use; versions
deleted since they were deployed are skipped.

Concurrency: promote and rollback read the history, move the alias and write the history back
under one process-wide lock, so concurrent calls from threads (e.g. tasks on the threads backend)
serialise. Separate processes changing the same alias at the same moment can still interleave;
give each alias one writer (the deploying workflow).

Lineage: :func:`register` tags the new version with ``flowkit.run_id`` and
``flowkit.training_run_id`` when it runs inside a run tracked by :class:`~flowkit.ml.MLflowTracker`
in the same process, and makes the run that logs the model a child of that training run (it
does not carry ``flowkit.run_id``: that tag names the one MLflow run tracking a flowkit run);
plus any ``tags=`` given; with ``input_example=`` the model gets an MLflow
signature inferred from the example and its predictions, and the example itself.

Failure policy: every argument and every version involved is checked *before* anything is
written, so bad input (unknown model, version or alias, nothing to roll back to) raises a
:class:`RegistryError` and leaves the registry as it was. When the alias moved but the history
tag could not be written, the alias is moved back before the error is raised.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowkit.capture import current_run_id
from flowkit.ml import modelio, uris
from flowkit.ml.errors import ModelNotFoundError, NoEarlierVersionError, RegistryError
from flowkit.ml.tracking import active_run, param_value

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

HISTORY_TAG = "flowkit.alias_history."
# Every move of an alias by promote or rollback, oldest first (the history above is a stack a
# rollback pops, so it cannot say that a rollback happened): a JSON list of
# {"do": "promote"|"rollback", "v": version, "from": previous or null, "at": Unix seconds}.
EVENTS_TAG = "flowkit.alias_events."
_MAX_EVENTS = 50  # about 60 characters each: well inside MLflow's tag value limit
FLAVOR_TAG = "flowkit.flavor"
RUN_ID_TAG = "flowkit.run_id"
TRAINING_RUN_TAG = "flowkit.training_run_id"
_EXAMPLE_ROWS = 5  # rows kept as the input example (and read to infer the signature)
DEFAULT_EXPERIMENT = "flowkit-models"
_MAX_HISTORY = 200  # keeps the tag well inside MLflow's tag value limit
_ALIAS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_ALIAS_LOCK = threading.RLock()  # read-modify-write of alias + history tag, per process


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model: ``uri`` loads it (``models:/<name>/<version>``)."""

    name: str
    version: int
    uri: str

    @classmethod
    def of(cls, name: str, version: int | str) -> ModelVersion:
        return cls(name, int(version), f"models:/{name}/{int(version)}")


# -- checks ---------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise RegistryError(f"model name must be a non-empty string, got {name!r}")


def _check_alias(alias: str) -> None:
    # MLflow reserves "latest" and v<digits> (they read as versions in models:/ URIs).
    if (
        not isinstance(alias, str)
        or not _ALIAS_RE.match(alias)
        or alias.lower() == "latest"
        or re.fullmatch(r"[vV]\d+", alias)
    ):
        raise RegistryError(
            f"alias {alias!r} is not valid: use letters, digits, '_' and '-', starting with a "
            "letter, and not 'latest' or v<number> (e.g. 'production', 'staging')"
        )


def _registered_model(c: MlflowClient, name: str, uri: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return c.get_registered_model(name)
    except MlflowException as exc:
        if uris.error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
            raise
        known = [m.name for m in c.search_registered_models(max_results=10)]
        hint = f" Registered models: {', '.join(known)}." if known else " The registry is empty."
        raise ModelNotFoundError(
            f"no registered model {name!r} in the MLflow registry at {uri}.{hint} "
            "Register one with ml.register(model, name)."
        ) from exc


def _model_version(c: MlflowClient, name: str, version: int | str, uri: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return c.get_model_version(name, str(version))
    except MlflowException as exc:
        if uris.error_code(exc) not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        raise ModelNotFoundError(
            f"model {name!r} has no version {version!r} in the MLflow registry at {uri}"
        ) from exc


def _version_exists(c: MlflowClient, name: str, version: int) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        c.get_model_version(name, str(version))
    except MlflowException:
        return False
    return True


def _aliases(rm: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in (rm.aliases or {}).items()}


def _history(rm: Any, alias: str) -> list[int]:
    """The alias's recorded history, reconciled so that its current version is last."""
    raw = (rm.tags or {}).get(HISTORY_TAG + alias)
    try:
        history = [int(v) for v in json.loads(raw)] if raw else []
    except (ValueError, TypeError):
        log.warning("ignoring a damaged %s%s tag on model %r", HISTORY_TAG, alias, rm.name)
        history = []
    current = _aliases(rm).get(alias)
    if current is not None and (not history or history[-1] != current):
        history.append(current)  # moved outside flowkit (or first seen): record it
    return history


def _events(rm: Any, alias: str) -> list[Any]:
    """The alias's recorded moves (a damaged tag starts a new list)."""
    raw = (rm.tags or {}).get(EVENTS_TAG + alias)
    try:
        found = json.loads(raw) if raw else []
    except (ValueError, TypeError):
        found = None
    if not isinstance(found, list):
        log.warning("ignoring a damaged %s%s tag on model %r", EVENTS_TAG, alias, rm.name)
        return []
    return found


def _move_alias(
    c: MlflowClient,
    rm: Any,
    alias: str,
    move: tuple[str, int, int | None],
    history: list[int],
) -> None:
    """Make ``move`` (action, version, previous version) of ``alias`` of registered model
    ``rm``, recording ``history`` and the move; undo the move if recording fails."""
    name = rm.name
    action, version, previous = move
    event = {"do": action, "v": version, "from": previous, "at": round(time.time(), 3)}
    before = _events(rm, alias)
    c.set_registered_model_alias(name, alias, str(version))
    logged = False
    try:
        events = [*before, event][-_MAX_EVENTS:]
        c.set_registered_model_tag(name, EVENTS_TAG + alias, json.dumps(events))
        logged = True
        c.set_registered_model_tag(name, HISTORY_TAG + alias, json.dumps(history[-_MAX_HISTORY:]))
    except Exception:
        if previous is None:
            c.delete_registered_model_alias(name, alias)
        else:
            c.set_registered_model_alias(name, alias, str(previous))
        if logged:  # best effort: the move did not happen
            with contextlib.suppress(Exception):
                c.set_registered_model_tag(name, EVENTS_TAG + alias, json.dumps(before))
        raise


# -- public API -----------------------------------------------------------------------------


def register(
    model: Any,
    name: str,
    tracking_uri: str | None = None,
    metrics: Mapping[str, float] | None = None,
    alias: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    tags: Mapping[str, str] | None = None,
    input_example: Any = None,
) -> ModelVersion:
    """Log ``model`` in an MLflow run and register it as a new version of ``name``.

    ``metrics`` (and ``params``, e.g. the winning hyper-parameters) are logged on that run, in
    the experiment ``experiment``; ``alias`` (e.g. ``"production"``) is then pointed at the new
    version, as :func:`promote` does. ``tags`` go on the version (with the lineage tags, see
    the module docs); ``input_example`` (a few rows: an Arrow table, a DataFrame or an array)
    gives the model an MLflow signature and input example.

    Example::

        mv = ml.register(model, "digits", metrics={"accuracy": 0.97}, alias="staging",
                         input_example=test.slice(0, 5))
        mv.version, mv.uri        # 3, 'models:/digits/3'
    """
    _check_name(name)
    if alias is not None:
        _check_alias(alias)
    numbers = {str(k): float(v) for k, v in (metrics or {}).items()}
    c, uri = uris.client(tracking_uri)
    lineage = _lineage(uri)
    experiment_id = uris.ensure_experiment(c, uri, experiment)
    run_tags = {"flowkit.model": name}
    if TRAINING_RUN_TAG in lineage:  # the training run is in this tracking store
        run_tags["mlflow.parentRunId"] = lineage[TRAINING_RUN_TAG]
    run = c.create_run(experiment_id, tags=run_tags, run_name=f"register-{name}")
    flavor = _log_model(c, run.info.run_id, model, numbers, params or {}, input_example)
    version_tags = {**lineage, **{str(k): str(v) for k, v in (tags or {}).items()}}
    result = _new_version(c, name, run, flavor, version_tags)
    log.info("registered %s (run %s)", result.uri, run.info.run_id)
    if alias is not None:
        promote(name, result.version, alias=alias, tracking_uri=uri)
    return result


def _lineage(uri: str) -> dict[str, str]:
    """The lineage tags of a version registered now: the tracked run this code runs under."""
    active = active_run()
    if active is None:  # untracked: still the flowkit run whose task registers it, if any
        run_id = current_run_id()
        return {} if run_id is None else {RUN_ID_TAG: run_id}
    tags = {RUN_ID_TAG: active.flowkit_run_id}
    if active.tracking_uri == uri:  # a run id names a run of one tracking store only
        tags[TRAINING_RUN_TAG] = active.mlflow_run_id
    return tags


def _example_frame(example: Any) -> Any:
    """The first rows of an input example, as MLflow takes them (a DataFrame or an array)."""
    import pyarrow as pa

    if isinstance(example, (pa.Table, pa.RecordBatch)):
        return example.slice(0, _EXAMPLE_ROWS).to_pandas()
    if hasattr(example, "iloc"):
        return example.iloc[:_EXAMPLE_ROWS]
    return example[:_EXAMPLE_ROWS]


def _describe(path: str, model: Any, example: Any) -> None:
    """Give the saved model in ``path`` a signature (inferred from ``example`` and the model's
    predictions on it) and the example, in its MLmodel file (written if the flavour has none)."""
    from mlflow.models import Model, infer_signature

    # MLflow's own helper behind save_model(input_example=...): no public call adds an example
    # to a saved model, and modelio saves without one (a test pins this MLflow version's API)
    from mlflow.models.utils import _save_example

    mlmodel = os.path.join(path, "MLmodel")
    frame = _example_frame(example)
    try:
        output = model.predict(frame) if hasattr(model, "predict") else None
    except Exception as exc:
        raise RegistryError(
            f"input_example: the model cannot predict on it ({type(exc).__name__}: {exc}); "
            "give rows with the columns and types the model was trained on"
        ) from exc
    described = Model.load(mlmodel) if os.path.exists(mlmodel) else Model()
    described.signature = infer_signature(frame, output)
    with warnings.catch_warnings():
        # MLflow compares the columns with a range, which pandas 3 deprecates: not ours to fix
        warnings.filterwarnings("ignore", message="Operation with range is deprecated")
        _save_example(described, frame, path)
    described.save(mlmodel)


def _log_model(
    c: MlflowClient,
    run_id: str,
    model: Any,
    metrics: Mapping[str, float],
    params: Mapping[str, Any],
    input_example: Any = None,
) -> str:
    """Log ``model``, ``metrics`` and ``params`` on the run and end it; returns the flavor."""
    from mlflow.entities import Metric, Param

    workdir = tempfile.mkdtemp(prefix="flowkit-model-")
    try:
        flavor = modelio.save(model, f"{workdir}/model")
        if input_example is not None:
            _describe(f"{workdir}/model", model, input_example)
        now = int(time.time() * 1000)
        if metrics or params:
            c.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                params=[Param(str(k), param_value(v)) for k, v in params.items()],
            )
        c.log_artifacts(run_id, f"{workdir}/model", "model")
    except BaseException:
        c.set_terminated(run_id, "FAILED")
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    c.set_terminated(run_id, "FINISHED")
    return flavor


def _new_version(
    c: MlflowClient, name: str, run: Any, flavor: str, tags: Mapping[str, str] | None = None
) -> ModelVersion:
    """Register the run's model as a new version of ``name`` (created on first use)."""
    from mlflow.exceptions import MlflowException

    try:
        c.create_registered_model(name)
    except MlflowException as exc:
        if uris.error_code(exc) != "RESOURCE_ALREADY_EXISTS":
            raise
    mv = c.create_model_version(
        name,
        source=f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags={**(tags or {}), FLAVOR_TAG: flavor},
    )
    _wait_ready(c, name, mv)
    return ModelVersion.of(name, mv.version)


def _wait_ready(c: MlflowClient, name: str, mv: Any, timeout: float = 120.0) -> None:
    """Remote registries may register asynchronously: wait for the version to be READY."""
    deadline = time.monotonic() + timeout
    while mv.status == "PENDING_REGISTRATION" and time.monotonic() < deadline:
        time.sleep(0.2)
        mv = c.get_model_version(name, mv.version)
    if mv.status != "READY":
        raise RegistryError(
            f"model {name!r} version {mv.version} is {mv.status}, not READY: "
            f"{mv.status_message or 'no message'}"
        )


def promote(
    name: str,
    version: int,
    alias: str = "production",
    tracking_uri: str | None = None,
) -> ModelVersion:
    """Point ``alias`` of model ``name`` at ``version`` (recorded for :func:`rollback`).

    Example::

        ml.promote("digits", 3)                     # production -> v3
        ml.promote("digits", 4, alias="staging")
    """
    _check_name(name)
    _check_alias(alias)
    c, uri = uris.client(tracking_uri)
    with _ALIAS_LOCK:
        rm = _registered_model(c, name, uri)
        mv = _model_version(c, name, version, uri)
        target = int(mv.version)
        previous = _aliases(rm).get(alias)
        history = _history(rm, alias)
        if previous == target:
            log.info("model %r: %s already points at version %d", name, alias, target)
            return ModelVersion.of(name, target)
        _move_alias(c, rm, alias, ("promote", target, previous), [*history, target])
    log.info("model %r: %s -> version %d (was %s)", name, alias, target, previous)
    return ModelVersion.of(name, target)


def rollback(
    name: str,
    alias: str = "production",
    tracking_uri: str | None = None,
) -> ModelVersion:
    """Move ``alias`` back to the version that held it before; return that version.

    Raises :class:`NoEarlierVersionError` (registry unchanged) when no earlier version held it.

    Example::

        ml.promote("digits", 4)      # production: 3 -> 4
        ml.rollback("digits")        # production: 4 -> 3, returns ModelVersion(..., 3, ...)
    """
    _check_name(name)
    _check_alias(alias)
    c, uri = uris.client(tracking_uri)
    with _ALIAS_LOCK:
        rm = _registered_model(c, name, uri)
        current = _aliases(rm).get(alias)
        if current is None:
            raise ModelNotFoundError(_no_alias_message(name, alias, rm, uri))
        history = _history(rm, alias)[:-1]
        while history and (history[-1] == current or not _version_exists(c, name, history[-1])):
            history.pop()  # skip the current version and versions deleted since
        if not history:
            raise NoEarlierVersionError(
                f"model {name!r}: alias {alias!r} points at version {current} and no earlier "
                "version held it, so there is nothing to roll back to (registry unchanged). "
                f"Point it at a version with ml.promote({name!r}, VERSION, alias={alias!r})."
            )
        target = history[-1]
        _move_alias(c, rm, alias, ("rollback", target, current), history)
    log.info("model %r: %s rolled back from version %d to %d", name, alias, current, target)
    return ModelVersion.of(name, target)


def _no_alias_message(name: str, alias: str, rm: Any, uri: str) -> str:
    aliases = _aliases(rm)
    have = ", ".join(f"{a} -> v{v}" for a, v in sorted(aliases.items())) or "none"
    return (
        f"model {name!r} has no alias {alias!r} in the MLflow registry at {uri} "
        f"(its aliases: {have}). Point it at a version with ml.promote({name!r}, VERSION, "
        f"alias={alias!r})."
    )


def get_version(
    name: str,
    alias: str = "production",
    tracking_uri: str | None = None,
) -> ModelVersion:
    """The version ``alias`` points at (:class:`ModelNotFoundError` when unset)."""
    _check_name(name)
    c, uri = uris.client(tracking_uri)
    rm = _registered_model(c, name, uri)
    current = _aliases(rm).get(alias)
    if current is None:
        raise ModelNotFoundError(_no_alias_message(name, alias, rm, uri))
    return ModelVersion.of(name, current)


def alias_history(
    name: str,
    alias: str = "production",
    tracking_uri: str | None = None,
) -> list[int]:
    """The versions that held ``alias``, oldest first, the current one last."""
    _check_name(name)
    c, uri = uris.client(tracking_uri)
    return _history(_registered_model(c, name, uri), alias)


def alias_moves(
    name: str,
    alias: str = "production",
    tracking_uri: str | None = None,
) -> list[dict[str, Any]]:
    """Every move of ``alias`` by :func:`promote` and :func:`rollback` (the last 50), oldest
    first: ``{"do": "promote" | "rollback", "v": version, "from": previous version or None,
    "at": Unix seconds}``."""
    _check_name(name)
    c, uri = uris.client(tracking_uri)
    return [e for e in _events(_registered_model(c, name, uri), alias) if well_formed_move(e)]


def well_formed_move(event: Any) -> bool:
    """Whether a recorded move has its fields, of their types (a tag anyone could write)."""
    return (
        isinstance(event, dict)
        and event.get("do") in ("promote", "rollback")
        and type(event.get("v")) is int
        and (event.get("from") is None or type(event.get("from")) is int)
        and isinstance(event.get("at"), (int, float))
        and not isinstance(event.get("at"), bool)
    )


def load(
    name: str,
    alias: str = "production",
    tracking_uri: str | None = None,
    *,
    version: int | None = None,
) -> Any:
    """The model ``alias`` (or the explicit ``version``) of ``name`` points at.

    Example::

        model = ml.load("digits")                 # what production serves
        model = ml.load("digits", version=2)
    """
    _check_name(name)
    c, uri = uris.client(tracking_uri)
    rm = _registered_model(c, name, uri)
    if version is None:
        current = _aliases(rm).get(alias)
        if current is None:
            raise ModelNotFoundError(_no_alias_message(name, alias, rm, uri))
        version = current
    mv = _model_version(c, name, version, uri)
    flavor = (mv.tags or {}).get(FLAVOR_TAG)
    workdir = tempfile.mkdtemp(prefix="flowkit-load-")
    if flavor is None:
        # Registered by other tools: the source may be any artifact or logged-model URI, and a
        # pyfunc model may read its folder lazily, so the download is kept.
        import mlflow.artifacts

        path = mlflow.artifacts.download_artifacts(
            artifact_uri=mv.source, dst_path=workdir, tracking_uri=uri
        )
        return modelio.load(path, None)
    try:
        return modelio.load(c.download_artifacts(mv.run_id, "model", workdir), flavor)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


__all__ = [
    "ModelVersion",
    "alias_history",
    "get_version",
    "load",
    "promote",
    "register",
    "rollback",
]

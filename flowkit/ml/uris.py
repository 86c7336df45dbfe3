"""Which MLflow tracking server / registry to talk to, and explicit clients for it.

Policy for ``tracking_uri=None``: ``$MLFLOW_TRACKING_URI`` if set, else the embedded default: a
sqlite registry at ``<flowkit store>/mlflow.db`` with artifacts in ``<flowkit store>/mlartifacts``
(the store is ``$FLOWKIT_STORE`` or ``./.flowkit``; a remote store cannot hold a sqlite file, so
then ``./.flowkit`` is used). Any MLflow URI works the same (``http://host:5000``,
``sqlite:///path.db``, ``databricks``, ...).

Everything goes through an explicit ``MlflowClient`` built for that URI, never MLflow's global
"active run" / ``set_tracking_uri`` state, so concurrent tasks and runs do not interfere. For
``sqlite:`` URIs, new experiments put their artifacts in ``mlartifacts/`` next to the database
file (MLflow's own default is ``./mlruns`` under whatever the working directory is).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowkit.config import DEFAULT_STORE, default_store_url
from flowkit.store import Store

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

DB_NAME = "mlflow.db"
ARTIFACTS_NAME = "mlartifacts"


def default_tracking_uri() -> str:
    """The embedded registry: a sqlite file under the (local) flowkit store."""
    store = Store(default_store_url())
    if not store.local:
        log.warning(
            "the flowkit store %s is not a local folder, so the embedded MLflow registry lives "
            "in %s instead; set MLFLOW_TRACKING_URI to share one registry",
            store.url,
            DEFAULT_STORE,
        )
        store = Store(DEFAULT_STORE)
    store.check()  # marker first: the folder must stay a valid flowkit store
    return f"sqlite:///{Path(store.root) / DB_NAME}"


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else :func:`default_tracking_uri`."""
    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def sqlite_artifact_root(uri: str) -> str | None:
    """``file://.../mlartifacts`` next to a ``sqlite:`` database, else None (server decides)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path).resolve().parent.joinpath(ARTIFACTS_NAME).as_uri()


_import_lock = threading.Lock()
_imported: set[str] = set()


def import_mlflow(models: bool = False) -> None:
    """Import the MLflow modules flowkit uses, once, without their import-time warnings.

    MLflow 3 warns while importing itself (SQLAlchemy 2.1 deprecations in its sqlite store,
    "Any type hint" notes from its pyfunc types); they are about MLflow, not about the user's
    code, and would break test suites that turn warnings into errors. ``models=True`` also
    imports the model flavours (seconds more), which only saving and loading models need.
    """
    part = "models" if models else "client"
    if part in _imported:
        return
    with _import_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow
        import mlflow.store.model_registry.sqlalchemy_store
        import mlflow.store.tracking.sqlalchemy_store

        if models:
            import mlflow.pyfunc
            import mlflow.sklearn  # noqa: F401
        _imported.add(part)


def client(tracking_uri: str | None = None) -> tuple[MlflowClient, str]:
    """An ``MlflowClient`` for the resolved URI (tracking and registry), and that URI."""
    import_mlflow()
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    registry = os.environ.get("MLFLOW_REGISTRY_URI") if not tracking_uri else None
    return MlflowClient(tracking_uri=uri, registry_uri=registry or uri), uri


def error_code(exc: BaseException) -> str:
    """The MLflow error code of an exception (``"RESOURCE_DOES_NOT_EXIST"``, ...) or ``""``."""
    return str(getattr(exc, "error_code", "") or "")


def ensure_experiment(mlflow_client: MlflowClient, uri: str, name: str) -> str:
    """The id of experiment ``name``, created if missing (safe against a concurrent create)."""
    from mlflow.exceptions import MlflowException

    exp: Any = mlflow_client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            mlflow_client.restore_experiment(exp.experiment_id)
        return str(exp.experiment_id)
    root = sqlite_artifact_root(uri)
    location = f"{root}/{re.sub(r'[^A-Za-z0-9._-]', '_', name)}" if root else None
    try:
        return str(mlflow_client.create_experiment(name, artifact_location=location))
    except MlflowException as exc:
        if error_code(exc) != "RESOURCE_ALREADY_EXISTS":
            raise
        exp = mlflow_client.get_experiment_by_name(name)
        if exp is None:
            raise
        return str(exp.experiment_id)


__all__ = [
    "client",
    "default_tracking_uri",
    "ensure_experiment",
    "error_code",
    "resolve_tracking_uri",
    "sqlite_artifact_root",
]

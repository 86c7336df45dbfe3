"""flowkit.ml — the ML lifecycle as typed flowkit tasks, plus an MLflow tracking callback.

    import flowkit as fk
    from flowkit import ml

* Data: :func:`validate`, :func:`split`, :func:`as_of_join`.
* Training and validation: :func:`grid`, :func:`random_search` (with :func:`uniform`,
  :func:`loguniform`, :func:`randint`), :func:`gate` raising :class:`GateFailed`, the
  :data:`Metrics` return type.
* Tracking: :class:`MLflowTracker` for ``fk.run(..., callbacks=[...])``.
* Deployment: :func:`register`, :func:`promote`, :func:`rollback`, :func:`load` on an MLflow
  registry (aliases, with history), returning :class:`ModelVersion`; :func:`batch_predict`
  scores a table with a registered version, one task call per partition.
* Monitoring: :func:`drift` → :class:`DriftReport`; :func:`annotation_queue`;
  :func:`prediction_log` (what a served model was asked and answered, as an Arrow table).

The steps are flowkit tasks: called outside a workflow they run the plain function; inside a
workflow they are graph nodes. Needs the ``flowkit[ml]`` extra; ``import flowkit`` never imports
this package, and MLflow / scipy are imported only when a step that needs them runs.
"""

from __future__ import annotations

from flowkit.ml.annotation import read_annotation_queue
from flowkit.ml.batch import batch_predict_task as batch_predict
from flowkit.ml.drift import DriftReport
from flowkit.ml.errors import (
    DataValidationError,
    GateFailed,
    ModelNotFoundError,
    NoEarlierVersionError,
    ParameterError,
    RegistryError,
)
from flowkit.ml.gate import Metrics
from flowkit.ml.predictions import prediction_log_task as prediction_log
from flowkit.ml.registry import ModelVersion, alias_history, alias_moves, get_version
from flowkit.ml.search import grid, loguniform, randint, random_search, uniform
from flowkit.ml.tasks import (
    annotation_queue_task as annotation_queue,
)
from flowkit.ml.tasks import (
    as_of_join_task as as_of_join,
)
from flowkit.ml.tasks import (
    drift_task as drift,
)
from flowkit.ml.tasks import (
    gate_task as gate,
)
from flowkit.ml.tasks import (
    load_task as load,
)
from flowkit.ml.tasks import (
    promote_task as promote,
)
from flowkit.ml.tasks import (
    register_task as register,
)
from flowkit.ml.tasks import (
    rollback_task as rollback,
)
from flowkit.ml.tasks import (
    split_task as split,
)
from flowkit.ml.tasks import (
    validate_task as validate,
)
from flowkit.ml.tracking import MLflowTracker
from flowkit.ml.uris import resolve_tracking_uri

__all__ = [
    "DataValidationError",
    "DriftReport",
    "GateFailed",
    "MLflowTracker",
    "Metrics",
    "ModelNotFoundError",
    "ModelVersion",
    "NoEarlierVersionError",
    "ParameterError",
    "RegistryError",
    "alias_history",
    "alias_moves",
    "annotation_queue",
    "as_of_join",
    "batch_predict",
    "drift",
    "gate",
    "get_version",
    "grid",
    "load",
    "loguniform",
    "prediction_log",
    "promote",
    "randint",
    "random_search",
    "read_annotation_queue",
    "register",
    "resolve_tracking_uri",
    "rollback",
    "split",
    "uniform",
    "validate",
]

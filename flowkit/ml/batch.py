"""Batch scoring: a registered model over a whole table, one task call per partition.

``ml.batch_predict(model_uri, table)`` is a dynamic task: at run time it pins the version the
URI names (an alias is read once, so every partition is scored by the same version even when the
alias moves during the run), cuts the table into partitions of ``partition_rows`` rows and maps
``ml.predict_partition`` over them, so partitions run in parallel on any backend, each a task
call that retries and records like any other. The scored partitions are concatenated back in
order. Outside a workflow the same steps run in the calling process.

URIs: ``models:/<name>@<alias>``, ``models:/<name>/<version>``, or a bare ``<name>`` /
``<name>@<alias>`` (no alias: ``production``).

Policy: the model sees the ``features`` columns (default: every column) as a pandas DataFrame,
as ``mlflow models serve`` would pass them; its output must have one entry per row (a row of a
2-D output becomes a list). The prediction is added as ``column``, which must not exist yet.
A process loads each version once (versions are immutable, so the cache is never stale).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from flowkit.ml import registry
from flowkit.ml.errors import DataValidationError, ParameterError
from flowkit.task import dynamic, task

_URI = re.compile(r"^(?:models:/)?(?P<name>[^@/]+?)(?:@(?P<alias>[^@/]+)|/(?P<version>\d+))?$")
_MODELS: dict[tuple[str | None, str, int], Any] = {}
_MODELS_LOCK = threading.Lock()


def parse_model_uri(model_uri: str) -> tuple[str, str | None, int | None]:
    """``(name, alias, version)`` of a model URI (exactly one of alias and version is set)."""
    m = _URI.match(model_uri.strip()) if isinstance(model_uri, str) else None
    if m is None:
        raise ParameterError(
            f"batch_predict: model_uri {model_uri!r} is not models:/<name>@<alias>, "
            "models:/<name>/<version>, <name> or <name>@<alias>"
        )
    version = m.group("version")
    if version is not None:
        return m.group("name"), None, int(version)
    return m.group("name"), m.group("alias") or "production", None


def _model(name: str, version: int, tracking_uri: str | None) -> Any:
    key = (tracking_uri, name, version)
    with _MODELS_LOCK:  # one load per version and process, even from threads
        if key not in _MODELS:
            _MODELS[key] = registry.load(name, tracking_uri=tracking_uri, version=version)
        return _MODELS[key]


def predict_partition(
    part: pa.Table,
    name: str,
    version: int,
    tracking_uri: str | None = None,
    features: list[str] | None = None,
    column: str = "prediction",
) -> pa.Table:
    """``part`` with ``column`` holding version ``version`` of model ``name``'s predictions."""
    if part.num_rows == 0:
        return part.append_column(column, pa.nulls(0))
    inputs = part.select(features) if features is not None else part
    model = _model(name, version, tracking_uri)
    out = model.predict(inputs.to_pandas())
    values = out.tolist() if hasattr(out, "tolist") else list(out)
    if len(values) != part.num_rows:
        raise DataValidationError(
            f"batch_predict: model {name!r} version {version} returned {len(values)} "
            f"predictions for {part.num_rows} rows",
            {column: f"{len(values)} values for {part.num_rows} rows"},
        )
    return part.append_column(column, pa.array(values))


def concat_partitions(parts: list[pa.Table]) -> pa.Table:
    """The scored partitions as one table, in order."""
    return pa.concat_tables(parts, promote_options="permissive")


def _check(
    table: pa.Table, features: Sequence[str] | None, column: str, partition_rows: int
) -> None:
    if not isinstance(table, pa.Table):
        raise ParameterError(f"batch_predict: table must be a pyarrow Table, got {type(table)}")
    if (
        isinstance(partition_rows, bool)
        or not isinstance(partition_rows, int)
        or partition_rows < 1
    ):
        raise ParameterError(
            f"batch_predict: partition_rows must be a positive integer, got {partition_rows!r}"
        )
    if column in table.column_names:
        raise ParameterError(
            f"batch_predict: the table already has a column {column!r}; "
            "name the prediction column with column=..."
        )
    missing = [f for f in features or () if f not in table.column_names]
    if missing:
        raise DataValidationError(
            f"batch_predict: feature column(s) {', '.join(map(repr, missing))} are not in the "
            f"table (its columns: {', '.join(table.column_names)})",
            {f: "missing from the table" for f in missing},
        )


def batch_predict(
    model_uri: str,
    table: pa.Table,
    tracking_uri: str | None = None,
    *,
    features: list[str] | None = None,
    column: str = "prediction",
    partition_rows: int = 10_000,
) -> pa.Table:
    """Score ``table`` with the model ``model_uri`` names; returns it with ``column`` added.

    Example::

        scored = ml.batch_predict("models:/digits@production", todays_rows)
        scored = ml.batch_predict("models:/digits/3", rows, features=["age", "income"])
    """
    _check(table, features, column, partition_rows)
    tracking_uri = tracking_uri or None  # "" (an unset workflow input): the default registry
    name, alias, version = parse_model_uri(model_uri)
    if version is None:
        assert alias is not None
        version = registry.get_version(name, alias, tracking_uri).version
    n = table.num_rows
    parts = [table.slice(i, partition_rows) for i in range(0, n, partition_rows)] or [table]
    scored = predict_partition_task.map(
        part=parts,
        name=name,
        version=version,
        tracking_uri=tracking_uri,
        features=features,
        column=column,
    )
    result: pa.Table = concat_partitions_task(scored)
    return result


# Not cached: a partition's score depends on a registry the cache key cannot see (a version
# deleted and registered again under the same number).
predict_partition_task = task(name="ml.predict_partition")(predict_partition)
concat_partitions_task = task(name="ml.concat_partitions")(concat_partitions)
batch_predict_task = dynamic(name="ml.batch_predict")(batch_predict)

__all__ = [
    "batch_predict",
    "batch_predict_task",
    "concat_partitions",
    "parse_model_uri",
    "predict_partition",
]

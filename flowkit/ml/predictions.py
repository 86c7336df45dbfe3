"""The prediction log: what a served model was asked and answered, as Parquet on the store.

Layout (written by :class:`flowkit.serve.predlog.PredictionLog`, read by :func:`prediction_log`)::

    predictions/<model>/date=YYYY-MM-DD/part-<UTC time>-<random>.parquet

One row per prediction: the log's own columns (:data:`LOG_COLUMNS`: ``request_id``, ``time``
(UTC), ``model``, ``version``, ``alias``, ``latency_s``), then the request's input columns as
they came, then ``prediction`` (a scalar or a list). An input column named like one of the log's
own columns is stored as ``input.<name>``. The model name is percent-encoded in the path, so any
registry name is one folder.

Policy: the log is monitoring data, not a ledger. A damaged or unreadable part file is skipped
with a warning naming it, so one bad file never hides a day of traffic; parts being written are
dot-named and never read; in a local store, nothing is read or written through a symbolic link
(the store is data, as :mod:`flowkit.store` says), and a folder named like an impossible date is
ignored. Files written at different times may disagree on a column's type (an
input sent as ``1`` then ``1.5``): tables are combined with Arrow's permissive promotion.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import urllib.parse
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.parquet as pq

from flowkit.ml.errors import DataValidationError, ParameterError
from flowkit.store import Store
from flowkit.task import task

log = logging.getLogger(__name__)

StoreSpec: TypeAlias = Store | str | os.PathLike[str] | None
TimeSpec: TypeAlias = dt.datetime | dt.date | str | None

FOLDER = "predictions"
PREDICTION = "prediction"
INPUT_PREFIX = "input."
# The log's own columns, in order, and their types.
LOG_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("time", pa.timestamp("us", tz="UTC")),
        ("model", pa.string()),
        ("version", pa.int64()),
        ("alias", pa.string()),
        ("latency_s", pa.float64()),
    ]
)
LOG_COLUMNS = frozenset([*LOG_SCHEMA.names, PREDICTION])
_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def model_folder(model: str) -> str:
    """The folder name of ``model``'s log (percent-encoded: one path segment, never ``..``)."""
    if not isinstance(model, str) or not model.strip():
        raise ParameterError(f"prediction log: model must be a non-empty string, got {model!r}")
    return urllib.parse.quote(model, safe="-_").replace(".", "%2E")


def filesystem(store: Store) -> tuple[Any, str]:
    """(fsspec filesystem, root path inside it) of a store."""
    import fsspec  # remote stores only need it here

    if store.local:
        return fsspec.filesystem("file"), store.root
    fs, root = fsspec.core.url_to_fs(store.url, **store.storage_options)
    return fs, root.rstrip("/")


def part_folder(root: str, model: str, day: dt.date) -> str:
    """Where the parts of ``model`` for the UTC date ``day`` go."""
    return f"{root}/{FOLDER}/{model_folder(model)}/date={day.isoformat()}"


def _as_utc(value: TimeSpec, name: str) -> dt.datetime | None:
    """A ``since``/``until`` bound as an aware UTC datetime (naive values are read as UTC; a
    date is its midnight)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise ParameterError(
                f"prediction_log: {name}={value!r} is not an ISO date or time "
                "(e.g. '2026-12-01' or '2026-12-01T08:00:00+00:00')"
            ) from exc
    if not isinstance(value, dt.datetime):
        if not isinstance(value, dt.date):
            raise ParameterError(
                f"prediction_log: {name} must be a datetime, a date or an ISO string, got "
                f"{type(value).__name__}"
            )
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def empty_log() -> pa.Table:
    """A log with no rows: the log's own columns and a null ``prediction``."""
    return pa.schema([*LOG_SCHEMA, pa.field(PREDICTION, pa.null())]).empty_table()


def prediction_log(
    model: str,
    *,
    store: StoreSpec = None,
    since: TimeSpec = None,
    until: TimeSpec = None,
    columns: list[str] | None = None,
) -> pa.Table:
    """Every logged prediction of ``model`` with ``since <= time < until``, oldest first.

    ``store`` is an ``fk.Store``, a URL or path, or None for ``$FLOWKIT_STORE`` / ``./.flowkit``;
    ``since`` and ``until`` are datetimes, dates or ISO strings (naive ones are UTC). Date
    folders outside the bounds are not read. ``columns`` keeps only those columns (e.g. the
    features, to compare with a reference table).

    Example::

        since = datetime.now(UTC) - timedelta(days=1)
        report = ml.drift(reference, ml.prediction_log("digits", since=since,
                                                       columns=reference.column_names))
    """
    start, end = _as_utc(since, "since"), _as_utc(until, "until")
    st = Store.open(store or None)
    fs, root = filesystem(st)
    base = f"{root}/{FOLDER}/{model_folder(model)}"
    parts = _parts(fs, base, start, end)
    if st.local:  # the store is data: never follow a link out of it (flowkit.store's policy)
        parts = [p for p in parts if not _linked(st.root, p)]
    read = (_read_part(fs, path) for path in parts)
    tables = [t for t in read if t is not None]
    if not tables:
        return _select(empty_log(), columns, empty=True)
    table = combine(tables)
    table = _within(table, start, end)
    table = table.sort_by([("time", "ascending")]) if table.num_rows else table
    return _select(table, columns, empty=False)


def _select(table: pa.Table, columns: list[str] | None, *, empty: bool) -> pa.Table:
    """``columns`` of the log; in a log with no parts yet, absent ones are empty null columns."""
    if columns is None:
        return table
    missing = [c for c in columns if c not in table.column_names]
    if missing and not empty:
        raise DataValidationError(
            f"prediction_log: the log has no column(s) {', '.join(map(repr, missing))} "
            f"(its columns: {', '.join(table.column_names)})",
            {c: "not in the prediction log" for c in missing},
        )
    for name in missing:
        table = table.append_column(name, pa.nulls(0))
    return table.select(list(columns))


def combine(tables: list[pa.Table]) -> pa.Table:
    """One table from parts whose columns may differ; a column whose types cannot be unified
    (a prediction that was a number, then a list) becomes JSON text in every part."""
    import json

    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    types: dict[str, set[pa.DataType]] = {}
    for t in tables:
        for field in t.schema:
            types.setdefault(field.name, set()).add(field.type)
    mixed = {n for n, ts in types.items() if not _unifies(n, ts)}
    fixed = []
    for t in tables:
        for name in mixed & set(t.column_names):
            i = t.schema.get_field_index(name)
            text = [
                None if v is None else json.dumps(v, default=str) for v in t.column(i).to_pylist()
            ]
            t = t.set_column(i, pa.field(name, pa.string()), pa.array(text, pa.string()))
        fixed.append(t)
    return pa.concat_tables(fixed, promote_options="permissive")


def _unifies(name: str, types: set[pa.DataType]) -> bool:
    try:
        pa.unify_schemas([pa.schema([(name, t)]) for t in types], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return False
    return True


def _parts(fs: Any, base: str, start: dt.datetime | None, end: dt.datetime | None) -> list[str]:
    """The finished part files under ``base`` in the date folders the bounds can reach."""
    try:
        folders = fs.ls(base, detail=False) if fs.exists(base) else []
    except FileNotFoundError:
        return []
    found: list[str] = []
    for folder in sorted(folders):
        m = _DATE_DIR.match(os.path.basename(folder.rstrip("/")))
        try:
            day = dt.date.fromisoformat(m.group(1)) if m else None
        except ValueError:  # date=2026-13-45: not a folder the writer makes
            day = None
        if day is None:
            continue
        if start is not None and day < start.date():
            continue
        if end is not None and day > end.date():
            continue
        found.extend(
            sorted(
                p
                for p in fs.ls(folder, detail=False)
                if p.endswith(".parquet") and not os.path.basename(p).startswith((".", "_"))
            )
        )
    return found


def escapes(root: str, path: str) -> bool:
    """Whether an existing part of ``path`` below the local folder ``root`` is a symbolic
    link (which could lead out of the store)."""
    rel = os.path.relpath(path, root)
    if rel.startswith(".."):
        return True
    current = root
    for segment in rel.split(os.sep):
        current = os.path.join(current, segment)
        if os.path.islink(current):
            return True
    return False


def _linked(root: str, path: str) -> bool:
    if escapes(root, path):
        log.warning("prediction log: skipping %s: a symbolic link leads out of the store", path)
        return True
    return False


def _read_part(fs: Any, path: str) -> pa.Table | None:
    """One part file, or None (with a warning naming it) when it cannot be read."""
    try:
        with fs.open(path, "rb") as f:
            table = pq.read_table(f)
    except Exception as exc:  # a damaged or truncated file: skip it, keep the rest
        log.warning(
            "prediction log: skipping unreadable part %s (%s: %s)", path, type(exc).__name__, exc
        )
        return None
    missing = [n for n in LOG_SCHEMA.names if n not in table.column_names]
    if missing:
        log.warning(
            "prediction log: skipping part %s: it lacks the column(s) %s", path, ", ".join(missing)
        )
        return None
    try:  # the log's own columns keep their types whatever wrote the file
        for field in LOG_SCHEMA:
            i = table.schema.get_field_index(field.name)
            table = table.set_column(i, field, table.column(i).cast(field.type))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        log.warning("prediction log: skipping part %s: %s", path, exc)
        return None
    return table if table.num_rows else None


def _within(table: pa.Table, start: dt.datetime | None, end: dt.datetime | None) -> pa.Table:
    import pyarrow.compute as pc

    times = table.column("time")
    if start is not None:
        table = table.filter(pc.greater_equal(times, pa.scalar(start, times.type)))
        times = table.column("time")
    if end is not None:
        table = table.filter(pc.less(times, pa.scalar(end, times.type)))
    return table


#: ``ml.prediction_log``: :func:`prediction_log` as a flowkit task, never cached (the log grows
#: while the model serves).
prediction_log_task = task(name="ml.prediction_log")(prediction_log)

__all__ = [
    "FOLDER",
    "INPUT_PREFIX",
    "LOG_COLUMNS",
    "LOG_SCHEMA",
    "PREDICTION",
    "combine",
    "empty_log",
    "escapes",
    "filesystem",
    "model_folder",
    "part_folder",
    "prediction_log",
    "prediction_log_task",
]

"""Reading a scoring request and writing its answer (MLflow's scoring protocol).

A body is JSON (``application/json``) holding exactly one of ``dataframe_split``
(``{"columns": [...], "data": [[...], ...]}``), ``dataframe_records`` (``[{col: value}, ...]``),
``instances`` or ``inputs`` (rows as lists or objects, or ``{col: [values]}``), or CSV with a
header row (``text/csv``). It becomes a pandas DataFrame, checked against the columns the
model was fitted on when scikit-learn recorded them (``feature_names_in_``, ``n_features_in_``).

Every problem is a :class:`BadRequest` naming it (status 400, 413 or 415): the handler turns
it into a JSON error and the server goes on serving. The body is read in chunks and refused
as soon as it passes the limit, so a huge body never sits in memory.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import pandas as pd
    from starlette.requests import Request

    from flowkit.serve.models import LoadedModel

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_SCALARS = (str, int, float, bool, type(None))
_SHOWN = 10  # names listed in a message


class BadRequest(Exception):
    """A request the server refuses: ``status`` and a message naming the problem."""

    def __init__(self, status: int, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is longer than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, f"{int(declared)} bytes declared")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, "more than that sent")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int, seen: str) -> BadRequest:
    return BadRequest(
        413,
        f"the request body is larger than the limit of {limit} bytes ({seen}); send fewer "
        "rows per request (the limit is flowkit serve's --max-body-mb)",
        "REQUEST_TOO_LARGE",
    )


def parse(body: bytes, content_type: str | None) -> tuple[pd.DataFrame, bool]:
    """The rows of a request body, and whether its columns are named (else positional)."""
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    if media == "text/csv":
        return _csv(body), True
    if media != "application/json":
        raise BadRequest(
            415,
            f"unsupported content type {media!r}: send application/json (or text/csv)",
            "UNSUPPORTED_MEDIA_TYPE",
        )
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest(400, f"expected a JSON object with one of the keys {_formats()}")
    return _json(doc)


def _formats() -> str:
    return ", ".join(FORMATS)


def _json(doc: dict[str, Any]) -> tuple[pd.DataFrame, bool]:
    unknown = sorted(k for k in doc if k not in FORMATS and k != "params")
    if unknown:
        raise BadRequest(400, f"unknown key(s) {unknown}: expected one of {_formats()}")
    if doc.get("params"):
        raise BadRequest(400, "params are not supported by flowkit serve's models")
    given = [k for k in FORMATS if k in doc]
    if len(given) != 1:
        raise BadRequest(400, f"expected exactly one of {_formats()}, got {given or 'none'}")
    key = given[0]
    value = doc[key]
    if key == "dataframe_split":
        return _split(value)
    if key == "dataframe_records":
        return _records(value, key)
    if isinstance(value, dict):  # instances/inputs as {column: [values]}
        return _columns(value, key)
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        return _records(value, key)
    return _rows(value, key, None)


def _split(value: Any) -> tuple[pd.DataFrame, bool]:
    if not isinstance(value, dict) or "data" not in value:
        raise BadRequest(400, 'dataframe_split must be an object {"columns": [...], "data": [...]}')
    columns = value.get("columns")
    if columns is not None:
        _check_names(columns, "dataframe_split columns")
    return _rows(value["data"], "dataframe_split data", columns)


def _check_names(columns: Any, where: str) -> None:
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise BadRequest(400, f"{where} must be a list of strings")
    twice = sorted(c for c, n in Counter(columns).items() if n > 1)
    if twice:
        raise BadRequest(400, f"{where}: duplicate column names {twice[:_SHOWN]}")


def _rows(data: Any, where: str, columns: list[str] | None) -> tuple[pd.DataFrame, bool]:
    import pandas as pd

    if not isinstance(data, list) or not data:
        raise BadRequest(400, f"{where} must be a non-empty list of rows")
    rows = [r if isinstance(r, list) else [r] for r in data]  # a list of scalars: one column
    width = len(columns) if columns is not None else len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise BadRequest(400, f"{where}: row {i} has {len(row)} values, expected {width}")
        for j, cell in enumerate(row):
            if not isinstance(cell, _SCALARS):
                name = repr(columns[j]) if columns is not None else str(j)
                raise BadRequest(400, _not_scalar(i, name, cell))
    return pd.DataFrame(rows, columns=columns), columns is not None


def _records(data: Any, where: str) -> tuple[pd.DataFrame, bool]:
    import pandas as pd

    if not isinstance(data, list) or not data or not all(isinstance(r, dict) for r in data):
        raise BadRequest(400, f"{where} must be a non-empty list of objects (one per row)")
    names = list(data[0])
    expected = set(names)
    for i, record in enumerate(data):
        if set(record) != expected:
            missing = sorted(expected - set(record))
            extra = sorted(set(record) - expected)
            raise BadRequest(
                400, f"{where}: record {i} has other columns than record 0 (missing "
                f"{missing[:_SHOWN]}, extra {extra[:_SHOWN]})"
            )  # fmt: skip
        for name, cell in record.items():
            if not isinstance(cell, _SCALARS):
                raise BadRequest(400, _not_scalar(i, repr(name), cell))
    return pd.DataFrame.from_records(data, columns=names), True


def _columns(data: dict[str, Any], where: str) -> tuple[pd.DataFrame, bool]:
    import pandas as pd

    if not data:
        raise BadRequest(400, f"{where} has no columns")
    lengths = {len(v) if isinstance(v, list) else -1 for v in data.values()}
    if -1 in lengths or len(lengths) != 1 or 0 in lengths:
        raise BadRequest(400, f"{where}: every column must be a non-empty list, all of one length")
    for name, values in data.items():
        for i, cell in enumerate(values):
            if not isinstance(cell, _SCALARS):
                raise BadRequest(400, _not_scalar(i, repr(name), cell))
    return pd.DataFrame(data), True


def _not_scalar(row: int, column: str, cell: Any) -> str:
    kind = "an object" if isinstance(cell, dict) else "a list"
    return (
        f"row {row}, column {column} holds {kind}: values must be numbers, strings, booleans "
        "or null"
    )


def _csv(body: bytes) -> pd.DataFrame:
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"the body is not CSV with a header row: {exc}") from None
    if frame.empty:
        raise BadRequest(400, "the CSV body has no rows")
    return frame


def conform(frame: pd.DataFrame, named: bool, loaded: LoadedModel) -> pd.DataFrame:
    """``frame`` with the model's columns in the model's order (400 when they differ)."""
    features, width = loaded.features, loaded.n_features
    if named and features is not None:
        have = [str(c) for c in frame.columns]
        missing = [f for f in features if f not in have]
        extra = [c for c in have if c not in features]
        if missing or extra:
            raise BadRequest(
                400,
                f"wrong columns: missing {missing[:_SHOWN]}, unexpected {extra[:_SHOWN]}; "
                f"version {loaded.version} of {loaded.name!r} expects {features[: _SHOWN * 3]}",
            )
        return frame if have == features else frame[features]
    if width is not None and frame.shape[1] != width:
        names = f" ({', '.join(features[:_SHOWN])})" if features else ""
        raise BadRequest(
            400,
            f"wrong number of columns: got {frame.shape[1]}, version {loaded.version} of "
            f"{loaded.name!r} expects {width}{names}",
        )
    if not named and features is not None:
        return frame.set_axis(features, axis=1)  # positional rows take the fitted names
    return frame


def predict(loaded: LoadedModel, frame: pd.DataFrame) -> Any:
    """The model's predictions; values it cannot score are a 400 naming the columns."""
    # fitted on an array (a width, no names): an array, as scikit-learn warns on a frame
    values = frame.to_numpy() if loaded.features is None and loaded.n_features else frame
    try:
        return loaded.model.predict(values)
    except (ValueError, TypeError) as exc:
        raise BadRequest(
            400, f"the model could not score these rows: {exc}{_typed(frame)}"
        ) from None


def _typed(frame: pd.DataFrame) -> str:
    """Names the columns holding text, the usual cause of a model's ValueError."""
    texts = [
        str(c)
        for c in frame.columns
        if frame[c].dtype == object or str(frame[c].dtype) in ("string", "str")
    ]
    return f" (columns holding text: {texts[:_SHOWN]})" if texts else ""


@dataclass(frozen=True)
class Scored:
    """One scored request: its rows as parsed (columns ``named`` or positional), as the model
    took them (``frame``), the model's ``predictions`` and the JSON answer (``content``)."""

    parsed: pd.DataFrame
    named: bool
    frame: pd.DataFrame
    predictions: Any
    content: bytes


def answer(predictions: Any) -> bytes:
    """``{"predictions": [...]}`` as JSON bytes (numpy and pandas values converted)."""
    if hasattr(predictions, "to_dict") and hasattr(predictions, "columns"):  # a DataFrame
        predictions = predictions.to_dict(orient="records")
    return orjson.dumps(
        {"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY, default=_plain
    )


def _plain(value: Any) -> Any:
    """numpy and pandas values orjson does not take as they are."""
    if hasattr(value, "tolist"):  # arrays of objects, pandas Series, numpy scalars
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write a {type(value).__name__} prediction as JSON")


def as_list(predictions: Any) -> list[Any]:
    """The predictions as a plain list (for the prediction log)."""
    if hasattr(predictions, "to_dict") and hasattr(predictions, "columns"):
        return list(predictions.to_dict(orient="records"))
    if hasattr(predictions, "tolist"):
        found: list[Any] = predictions.tolist()
        return found
    return list(predictions)


__all__ = [
    "FORMATS",
    "BadRequest",
    "Scored",
    "answer",
    "as_list",
    "conform",
    "parse",
    "predict",
    "read_body",
]

"""Table validation: check a ``pa.Table`` against an expected schema before using it.

Policy: every problem is collected before raising, so one :class:`DataValidationError` names
every offending column and what was found (missing, wrong type, nulls where none are allowed,
and with ``strict=True`` unexpected columns). Types must match exactly (``int32`` is not
``int64``): silent casts are how training and serving drift apart. A table with fewer than
``min_rows`` rows (default 1) is an error too: training on nothing is always a bug.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import pyarrow as pa

from flowkit.ml.errors import DataValidationError

# What a dict schema may map a column to.
TypeSpec: TypeAlias = pa.DataType | pa.Field | str | type
SchemaSpec: TypeAlias = pa.Schema | Mapping[str, Any]

_PY_TYPES: dict[type, pa.DataType] = {
    bool: pa.bool_(),
    int: pa.int64(),
    float: pa.float64(),
    str: pa.string(),
    bytes: pa.binary(),
}


def as_schema(schema: SchemaSpec) -> pa.Schema:
    """Turn a ``pa.Schema`` or a dict column → type into a ``pa.Schema``.

    A dict value may be a ``pa.DataType``, a ``pa.Field`` (to say ``nullable=False``), a type
    alias string (``"int64"``, ``"string"``, ``"float32"``) or a Python type (``int`` →
    int64, ``float`` → float64, ``str`` → string, ``bool``, ``bytes``). Columns of a dict
    schema are nullable unless given as a non-nullable field.
    """
    if isinstance(schema, pa.Schema):
        return schema
    if not isinstance(schema, Mapping):
        raise TypeError(
            f"schema must be a pa.Schema or a dict of column -> type, got {type(schema).__name__}"
        )
    fields = []
    for col, spec in schema.items():
        if isinstance(spec, pa.Field):
            fields.append(spec.with_name(col))
        else:
            fields.append(pa.field(col, _as_type(col, spec)))
    return pa.schema(fields)


def _as_type(col: str, spec: object) -> pa.DataType:
    if isinstance(spec, pa.DataType):
        return spec
    if isinstance(spec, type) and spec in _PY_TYPES:
        return _PY_TYPES[spec]
    if isinstance(spec, str):
        try:
            return pa.type_for_alias(spec)
        except ValueError:
            pass
    raise TypeError(
        f"schema column {col!r}: {spec!r} is not a type; use a pa.DataType, a pa.Field, "
        "a type name such as 'int64', or one of int, float, str, bool, bytes"
    )


def validate(
    table: pa.Table,
    schema: SchemaSpec,
    *,
    strict: bool = False,
    min_rows: int = 1,
) -> pa.Table:
    """Check ``table`` against ``schema`` and return it unchanged (so it chains).

    Checks names, types and nullability; with ``strict=True`` columns not in the schema are
    errors too. Raises :class:`DataValidationError` listing every problem.

    Example::

        data = ml.validate(data, {"age": "int64", "income": float, "label": pa.int64()})
    """
    if not isinstance(table, pa.Table):
        raise DataValidationError(
            f"expected a pyarrow Table, got {type(table).__name__}; "
            "convert it first, e.g. pa.Table.from_pandas(df)",
            {"<table>": type(table).__name__},
        )
    expected = as_schema(schema)
    problems = _field_problems(table, expected)
    if strict:
        for name in table.column_names:
            if expected.get_field_index(name) < 0:
                problems[name] = "unexpected column (strict=True)"
    if table.num_rows < min_rows:
        problems["<table>"] = f"{table.num_rows} row(s), expected at least {min_rows}"
    raise_problems(
        problems,
        "table does not match the schema ({count} problem(s)): {detail}. "
        "Fix the data upstream or update the schema.",
    )
    return table


def _field_problems(table: pa.Table, expected: pa.Schema) -> dict[str, str]:
    """What is wrong with each of the schema's columns in ``table`` (names, types, nulls)."""
    problems: dict[str, str] = {}
    for field in expected:
        if field.name not in table.column_names:
            problems[field.name] = f"missing (expected {field.type})"
            continue
        column = table.column(field.name)
        if column.type != field.type:
            problems[field.name] = f"type {column.type}, expected {field.type}"
        elif not field.nullable and column.null_count:
            problems[field.name] = f"{column.null_count} null value(s), expected none"
    return problems


def raise_problems(problems: Mapping[str, str], message: str, *, quote: bool = False) -> None:
    """Raise :class:`DataValidationError` listing every problem, if there is any.

    ``message`` may use ``{count}`` and ``{detail}`` (``name: problem; ...``, names in
    quotes with ``quote=True``).
    """
    if not problems:
        return
    detail = "; ".join(
        f"{name!r}: {what}" if quote else f"{name}: {what}" for name, what in problems.items()
    )
    raise DataValidationError(message.format(count=len(problems), detail=detail), dict(problems))


def require_rows(table: pa.Table, what: str) -> None:
    """Raise :class:`DataValidationError` when ``table`` is not a non-empty ``pa.Table``."""
    if not isinstance(table, pa.Table):
        raise DataValidationError(
            f"{what}: expected a pyarrow Table, got {type(table).__name__}",
            {"<table>": type(table).__name__},
        )
    if table.num_rows == 0:
        raise DataValidationError(
            f"{what}: the table is empty (0 rows); it needs at least one row",
            {"<table>": "0 rows"},
        )


__all__ = ["SchemaSpec", "as_schema", "raise_problems", "require_rows", "validate"]

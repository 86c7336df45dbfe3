"""Point-in-time ("as of") join: features as they were known when each event happened.

Policy: each left row gets the right row with the same key whose time is the latest one *at or
before* the left row's time; never a later one (no leakage from the future). When several right
rows share that latest time, the one that comes last in the right table wins. A left row with no
such right row (or a null key or time) gets nulls. Right rows with a null key or time are
ignored.

The result has the left table's columns, in order, then the right table's other columns (all
but the key columns and ``right_time``). A right column whose name is already in the left table
gets ``suffix`` appended.

Implementation: numpy, not ``pa.Table.join_asof`` (which needs pre-sorted input, a tolerance and
integer-like times): times become one dense rank shared by both sides, keys one group id, and a
single ``searchsorted`` over the right rows sorted by (group, rank) finds every match.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from flowkit.ml.errors import DataValidationError


def _need_columns(table: pa.Table, side: str, names: Sequence[str]) -> None:
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise DataValidationError(
            f"as_of_join: column(s) {', '.join(map(repr, missing))} not in the {side} table "
            f"(columns: {', '.join(table.column_names)})",
            {n: f"missing from the {side} table" for n in missing},
        )


def _time_values(column: pa.ChunkedArray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(values as int64 or float64, valid mask) of a time column."""
    arr = column.combine_chunks()
    t = arr.type
    if pa.types.is_temporal(t):  # dates, times, timestamps, durations: their integer ticks
        arr = arr.view(pa.int64() if t.bit_width == 64 else pa.int32())
    elif not (pa.types.is_integer(t) or pa.types.is_floating(t)):
        raise DataValidationError(
            f"as_of_join: time column {name!r} has type {t}; it must be a timestamp, date, "
            "integer or float column",
            {name: f"type {t}"},
        )
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    values = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False))
    if values.dtype.kind == "f":
        valid &= ~np.isnan(values)
    return values, valid


def _group_ids(
    left: pa.Table, right: pa.Table, on: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One integer group id per row of each side (equal keys → equal ids), plus valid masks."""
    n_left = left.num_rows
    codes = []
    left_valid = np.ones(n_left, dtype=bool)
    right_valid = np.ones(right.num_rows, dtype=bool)
    for name in on:
        lcol, rcol = left.column(name), right.column(name)
        if lcol.type != rcol.type:
            try:
                rcol = rcol.cast(lcol.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise DataValidationError(
                    f"as_of_join: key {name!r} is {lcol.type} on the left but {rcol.type} on "
                    "the right; cast one side so they match",
                    {name: f"left {lcol.type}, right {rcol.type}"},
                ) from exc
        both = pa.chunked_array(lcol.chunks + rcol.chunks, type=lcol.type).combine_chunks()
        valid = np.asarray(both.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        left_valid &= valid[:n_left]
        right_valid &= valid[n_left:]
        encoded = both.dictionary_encode() if not pa.types.is_dictionary(both.type) else both
        codes.append(np.asarray(encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)))
    stacked = np.stack(codes, axis=1) if codes else np.zeros((n_left + right.num_rows, 1))
    _, group = np.unique(stacked, axis=0, return_inverse=True)
    group = group.reshape(-1).astype(np.int64)
    return group[:n_left], group[n_left:], left_valid, right_valid


def as_of_join(
    left: pa.Table,
    right: pa.Table,
    on: str | Sequence[str],
    left_time: str,
    right_time: str,
    *,
    suffix: str = "_right",
) -> pa.Table:
    """Join to each ``left`` row the latest ``right`` row for its key at or before its time.

    Example::

        # events(user, ts, label) + features(user, ts, clicks) as they were at each event
        training = ml.as_of_join(events, features, on="user", left_time="ts", right_time="ts")
    """
    for side, table in (("left", left), ("right", right)):
        if not isinstance(table, pa.Table):
            raise DataValidationError(
                f"as_of_join: the {side} input must be a pyarrow Table, got {type(table).__name__}",
                {"<table>": type(table).__name__},
            )
    keys = [on] if isinstance(on, str) else list(on)
    _need_columns(left, "left", [*keys, left_time])
    _need_columns(right, "right", [*keys, right_time])

    match_rows, found = _latest_matches(left, right, keys, left_time, right_time)
    others = [c for c in right.column_names if c not in keys and c != right_time]
    indices = pa.array(match_rows, mask=~found, type=pa.int64())
    picked = right.select(others).take(indices)
    result = left
    for name in others:
        out_name = name + suffix if name in left.column_names else name
        result = result.append_column(out_name, picked.column(name))
    return result


def _latest_matches(
    left: pa.Table, right: pa.Table, keys: list[str], left_time: str, right_time: str
) -> tuple[np.ndarray, np.ndarray]:
    """For each left row, the right row that matches it (``match_rows``) and whether there is
    one (``found``): the latest right row of the same key at or before the left row's time."""
    lt, lt_valid = _time_values(left.column(left_time), left_time)
    rt, rt_valid = _time_values(right.column(right_time), right_time)
    if lt.dtype != rt.dtype:  # int vs float: compare as float
        lt, rt = lt.astype(np.float64), rt.astype(np.float64)
    lg, rg, lk_valid, rk_valid = _group_ids(left, right, keys)
    left_ok = lt_valid & lk_valid
    right_rows = np.flatnonzero(rt_valid & rk_valid)

    # Dense time ranks shared by both sides keep the composite key small and exact.
    _, rank = np.unique(np.concatenate([lt, rt]), return_inverse=True)
    rank = rank.reshape(-1).astype(np.int64)
    n_ranks = int(rank.max()) + 1 if rank.size else 1
    left_key = lg * n_ranks + rank[: left.num_rows]
    right_key = rg[right_rows] * n_ranks + rank[left.num_rows :][right_rows]

    order = np.argsort(right_key, kind="stable")  # ties keep right-table order
    sorted_keys = right_key[order]
    pos = np.searchsorted(sorted_keys, left_key, side="right") - 1
    found = pos >= 0
    safe = np.where(found, pos, 0)
    if sorted_keys.size:
        match_rows = right_rows[order[safe]]
        found &= rg[match_rows] == lg  # the latest row before may belong to another key
    else:
        match_rows = np.zeros(left.num_rows, dtype=np.int64)
        found[:] = False
    found &= left_ok
    return match_rows, found


__all__ = ["as_of_join"]

"""Train/test split of a ``pa.Table``.

Policy: deterministic for a seed (a numpy ``Generator`` permutation, no global state), rows of
each part come out in shuffled order like scikit-learn's ``train_test_split``. ``test_size``
is a fraction in (0, 1) or a row count. With ``stratify=column`` every class is split on its
own, so class proportions are kept in both parts (each class with at least two rows lands in
both parts).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from flowkit.ml.errors import DataValidationError, ParameterError
from flowkit.ml.validate import require_rows


def _n_test(n: int, test_size: float) -> int:
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)):
        raise ParameterError(f"test_size must be a fraction or a row count, got {test_size!r}")
    if isinstance(test_size, int):
        if not 0 < test_size < n:
            raise ParameterError(
                f"test_size={test_size} rows leaves no rows for one part of a {n}-row table; "
                f"use a count between 1 and {n - 1} or a fraction"
            )
        return test_size
    if not 0.0 < test_size < 1.0:
        raise ParameterError(f"test_size={test_size} must be a fraction in (0, 1) or a row count")
    k = round(n * test_size)
    return min(max(k, 1), n - 1)


def _stratified(labels: np.ndarray, n_test: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of the test part: per class, its share of ``n_test`` (largest remainders)."""
    classes, inverse = np.unique(labels, return_inverse=True)
    counts = np.bincount(inverse)
    exact = counts * (n_test / len(labels))
    take = np.floor(exact).astype(int)
    # Hand the rounding remainder to the classes with the largest fractional parts.
    for i in np.argsort(-(exact - take), kind="stable")[: n_test - int(take.sum())]:
        take[i] += 1
    # A class of two or more rows appears in both parts.
    take = np.where(counts >= 2, np.clip(take, 1, counts - 1), take)
    parts = []
    for c in range(len(classes)):
        rows = np.flatnonzero(inverse == c)
        parts.append(rng.permutation(rows)[: take[c]])
    return np.concatenate(parts)


def _codes(column: pa.ChunkedArray) -> np.ndarray:
    """Integer class codes of a column (any type pyarrow can dictionary-encode)."""
    encoded = column.combine_chunks()
    if not pa.types.is_dictionary(encoded.type):
        encoded = encoded.dictionary_encode()
    return np.asarray(encoded.indices.to_numpy(zero_copy_only=False))


def split(
    table: pa.Table,
    test_size: float = 0.25,
    seed: int = 0,
    stratify: str | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Split ``table`` into ``(train, test)``, deterministically for ``seed``.

    Example::

        train, test = ml.split(data, test_size=0.2, seed=0, stratify="label")
    """
    require_rows(table, "split")
    n = table.num_rows
    if n < 2:
        raise DataValidationError(
            "split: the table has 1 row; it needs at least 2 to make two parts",
            {"<table>": "1 row"},
        )
    n_test = _n_test(n, test_size)
    rng = np.random.default_rng(seed)
    if stratify is None:
        order = rng.permutation(n)
        test_idx, train_idx = order[:n_test], order[n_test:]
    else:
        if stratify not in table.column_names:
            raise DataValidationError(
                f"split: stratify column {stratify!r} is not in the table "
                f"(columns: {', '.join(table.column_names)})",
                {stratify: "missing"},
            )
        column = table.column(stratify)
        if column.null_count:
            raise DataValidationError(
                f"split: stratify column {stratify!r} has {column.null_count} null value(s); "
                "fill or drop them first",
                {stratify: f"{column.null_count} null value(s)"},
            )
        labels = _codes(column)
        test_idx = rng.permutation(_stratified(labels, n_test, rng))
        mask = np.ones(n, dtype=bool)
        mask[test_idx] = False
        train_idx = rng.permutation(np.flatnonzero(mask))
    return table.take(pa.array(train_idx)), table.take(pa.array(test_idx))


__all__ = ["split"]

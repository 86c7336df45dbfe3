"""Data drift between a reference table (what the model was trained on) and a current one.

Methods, per column (nulls are dropped first):

* ``"psi"`` (default) — Population Stability Index ``sum((c - r) * ln(c / r))`` over bins.
  Numeric columns use ``bins`` quantile bins of the *reference* (so each holds about the same
  share of it); categorical columns (strings, booleans, dictionaries) use category frequencies
  over the categories of both sides. Empty bins count as a share of ``1e-4`` so the log stays
  finite. Drifted when the score exceeds the threshold (default 0.2, the usual "significant
  shift" level; below 0.1 is usually read as stable).
* ``"ks"`` — a two-sample test: Kolmogorov-Smirnov for numeric columns (score = the KS
  statistic), chi-square on the category counts for categorical ones (score = the chi-square
  statistic). Drifted when the p-value is below the threshold (default 0.01). Entries also carry
  ``"pvalue"``.

Bad input is a :class:`DataValidationError` naming the column: a column missing from one side,
an empty table or column, or a column numeric on one side and categorical on the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from flowkit.ml.errors import DataValidationError, ParameterError
from flowkit.ml.validate import raise_problems, require_rows

# The methods: "psi" or "ks" (typed ``str`` so a literal in a workflow body type-checks).
Method = Literal["psi", "ks"]
DEFAULT_THRESHOLDS: dict[str, float] = {"psi": 0.2, "ks": 0.01}
_EPS = 1e-4


@dataclass
class DriftReport:
    """The outcome of :func:`drift`.

    ``features[col]`` is ``{"score": float, "threshold": float, "drifted": bool}`` plus
    ``"pvalue"`` for the ``"ks"`` method; ``drifted`` is true when any feature drifted.
    """

    drifted: bool
    method: str
    features: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def drifted_features(self) -> list[str]:
        """Names of the drifted columns, most drifted first (by score for PSI, p-value for KS)."""
        names = [c for c, f in self.features.items() if f["drifted"]]
        if self.method == "ks":
            return sorted(names, key=lambda c: self.features[c]["pvalue"])
        return sorted(names, key=lambda c: -self.features[c]["score"])

    def __str__(self) -> str:
        lines = [f"drift ({self.method}): {'DRIFTED' if self.drifted else 'stable'}"]
        for col, f in self.features.items():
            extra = f" p={f['pvalue']:.3g}" if "pvalue" in f else ""
            flag = "drifted" if f["drifted"] else "ok"
            lines.append(
                f"  {col}: score={f['score']:.4g}{extra} threshold={f['threshold']:.3g} {flag}"
            )
        return "\n".join(lines)


def _kind(column: pa.ChunkedArray) -> str:
    t = column.type
    if pa.types.is_dictionary(t):
        return "categorical"
    if pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return "categorical"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_temporal(t):
        return "numeric"
    return "unsupported"


def _numeric(column: pa.ChunkedArray) -> np.ndarray:
    arr = column.drop_null().combine_chunks()
    if pa.types.is_temporal(arr.type):  # dates, times, timestamps: their integer ticks
        arr = arr.view(pa.int64() if arr.type.bit_width == 64 else pa.int32())
    values = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
    return values[~np.isnan(values)]


def _categories(column: pa.ChunkedArray) -> np.ndarray:
    arr = column.drop_null().combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return np.asarray(arr.to_pylist(), dtype=object).astype(str)


def _psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    r = np.maximum(ref_counts / ref_counts.sum(), _EPS)
    c = np.maximum(cur_counts / cur_counts.sum(), _EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def _numeric_counts(ref: np.ndarray, cur: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    # Interior quantile edges of the reference; duplicates collapse (e.g. a constant column).
    edges = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1))[1:-1])
    n = len(edges) + 1
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=n)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=n)
    return ref_counts.astype(np.float64), cur_counts.astype(np.float64)


def _category_counts(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cats, inverse = np.unique(np.concatenate([ref, cur]), return_inverse=True)
    inverse = inverse.reshape(-1)
    ref_counts = np.bincount(inverse[: len(ref)], minlength=len(cats))
    cur_counts = np.bincount(inverse[len(ref) :], minlength=len(cats))
    return ref_counts.astype(np.float64), cur_counts.astype(np.float64)


def _column_drift(
    name: str, ref_col: pa.ChunkedArray, cur_col: pa.ChunkedArray, method: str, bins: int
) -> dict[str, Any]:
    kinds = (_kind(ref_col), _kind(cur_col))
    if "unsupported" in kinds:
        bad = ref_col.type if kinds[0] == "unsupported" else cur_col.type
        raise DataValidationError(
            f"drift: column {name!r} has type {bad}; drift needs numeric, temporal, string, "
            "boolean or dictionary columns. Leave it out with columns=[...]",
            {name: f"type {bad}"},
        )
    if kinds[0] != kinds[1]:
        raise DataValidationError(
            f"drift: column {name!r} is {kinds[0]} ({ref_col.type}) in the reference but "
            f"{kinds[1]} ({cur_col.type}) in the current table; cast one side",
            {name: f"reference {ref_col.type}, current {cur_col.type}"},
        )
    numeric = kinds[0] == "numeric"
    ref = _numeric(ref_col) if numeric else _categories(ref_col)
    cur = _numeric(cur_col) if numeric else _categories(cur_col)
    for side, values in (("reference", ref), ("current", cur)):
        if len(values) == 0:
            raise DataValidationError(
                f"drift: column {name!r} has no non-null values in the {side} table",
                {name: f"all null in the {side} table"},
            )
    if method == "psi":
        counts = _numeric_counts(ref, cur, bins) if numeric else _category_counts(ref, cur)
        return {"score": _psi(*counts)}
    from scipy import stats  # heavy import, only for the test-based method

    if numeric:
        result = stats.ks_2samp(ref, cur)
        return {"score": float(result.statistic), "pvalue": float(result.pvalue)}
    ref_counts, cur_counts = _category_counts(ref, cur)
    if len(ref_counts) < 2:  # one category on both sides: nothing can have shifted
        return {"score": 0.0, "pvalue": 1.0}
    chi2 = stats.chi2_contingency(np.stack([ref_counts, cur_counts]))
    return {"score": float(chi2.statistic), "pvalue": float(chi2.pvalue)}


def drift(
    reference: pa.Table,
    current: pa.Table,
    columns: Sequence[str] | None = None,
    method: str = "psi",
    threshold: float | Mapping[str, float] | None = None,
    *,
    bins: int = 10,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column.

    ``columns=None`` compares every column; then both tables must have the same columns.
    ``threshold`` is one number for every column or a dict column → number (others keep the
    default).

    Example::

        report = ml.drift(train_features, todays_features, method="psi")
        if report.drifted:
            print(report.drifted_features)
    """
    if method not in DEFAULT_THRESHOLDS:
        raise ParameterError(f"drift: method must be 'psi' or 'ks', got {method!r}")
    if bins < 2:
        raise ParameterError(f"drift: bins must be at least 2, got {bins}")
    require_rows(reference, "drift (reference table)")
    require_rows(current, "drift (current table)")
    default = DEFAULT_THRESHOLDS[method]
    features: dict[str, dict[str, Any]] = {}
    for col in _compared_columns(reference, current, columns):
        if isinstance(threshold, Mapping):
            limit = float(threshold.get(col, default))
        else:
            limit = default if threshold is None else float(threshold)
        entry = _column_drift(col, reference.column(col), current.column(col), method, bins)
        features[col] = _feature(entry, method, limit)
    return DriftReport(
        drifted=any(f["drifted"] for f in features.values()), method=method, features=features
    )


def _compared_columns(
    reference: pa.Table, current: pa.Table, columns: Sequence[str] | None
) -> list[str]:
    """The columns to compare, once both tables are known to have them."""
    if columns is None:
        names = list(reference.column_names)
        sides = {"reference": set(names), "current": set(current.column_names)}
    else:
        names = list(columns)
        if not names:
            raise ParameterError("drift: columns=[] compares nothing; give at least one column")
        sides = {"reference": set(names), "current": set(names)}
    problems: dict[str, str] = {}
    for col in sorted(sides["reference"] | sides["current"]):
        for side, table in (("reference", reference), ("current", current)):
            if col not in table.column_names:
                problems[col] = f"missing from the {side} table"
    raise_problems(
        problems,
        "drift: both tables need the compared columns ({detail}); "
        "add them or choose the columns to compare with columns=[...]",
        quote=True,
    )
    return names


def _feature(entry: Mapping[str, Any], method: str, limit: float) -> dict[str, Any]:
    """A report entry: the score, the threshold, the verdict (and the p-value for "ks")."""
    drifted = entry["score"] > limit if method == "psi" else entry["pvalue"] < limit
    feature: dict[str, Any] = {
        "score": entry["score"],
        "threshold": limit,
        "drifted": bool(drifted),
    }
    if "pvalue" in entry:
        feature["pvalue"] = entry["pvalue"]
    return feature


__all__ = ["DEFAULT_THRESHOLDS", "DriftReport", "drift"]

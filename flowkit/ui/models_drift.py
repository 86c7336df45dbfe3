"""The drift reports of a store's latest runs, for the models pages.

A drift report is the output of an ``ml.drift`` call (:class:`flowkit.ml.DriftReport`). They
are found through the client API only: :func:`flowkit.runs.list` for the newest runs (one
header each), then the task records of the runs that may hold such a call, and the report
loaded from the store as a ``DriftReport`` (the one class trusted when decoding it).

Bounded, because the page is rendered on each request: the newest :data:`RUNS_LOOKED_AT`
runs, at most :data:`MAX_REPORTS` reports, :data:`MAX_FEATURES` features each. A run whose
header draws its graph (flowkit records the graph's shape) and has no ``ml.drift`` node and
no dynamic one (whose calls the shape cannot show) is skipped without reading its records, so
a 10,000-call run without drift costs one header. A report that cannot be loaded is listed
with the reason, never an error of the page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from flowkit import runs
from flowkit.errors import FlowkitError
from flowkit.runview import RunView
from flowkit.store import Store

#: The graph-node (and task) name of flowkit.ml's drift step (flowkit.ml.tasks.drift_task).
DRIFT_TASK: Final = "ml.drift"
RUNS_LOOKED_AT: Final = 20
MAX_REPORTS: Final = 20
MAX_FEATURES: Final = 200


@dataclass(frozen=True, slots=True)
class FeatureScore:
    """One column of a report."""

    name: str
    score: float | None
    threshold: float | None
    pvalue: float | None
    drifted: bool


@dataclass(frozen=True, slots=True)
class DriftEntry:
    """One ``ml.drift`` call of a run and its report (``problem``: why it could not be read)."""

    run_id: str
    workflow: str
    started: float | None
    node: str
    method: str
    drifted: bool
    features: list[FeatureScore]
    more_features: int
    problem: str | None = None


def drift_reports(store: Store) -> list[DriftEntry]:
    """The reports of the store's newest runs: newest run first, each run's calls in order."""
    found: list[DriftEntry] = []
    for run in runs.list(store=store, limit=RUNS_LOOKED_AT):
        if not _may_hold_drift(run):
            continue
        try:
            tasks = run.tasks
        except FlowkitError:
            continue  # records unreadable: the run page says why
        for task in tasks:
            if task.name != DRIFT_TASK or task.status != "succeeded":
                continue
            found.append(_entry(run, task.node, _load(task)))
            if len(found) >= MAX_REPORTS:
                return found
    return found


def _may_hold_drift(run: RunView) -> bool:
    graph = run.graph
    if graph is None:
        return True  # recorded before flowkit kept the shape: only the records say
    return any(n["task"] == DRIFT_TASK or n["kind"] == "dynamic" for n in graph["nodes"])


def _load(task: Any) -> Any:
    """The report of ``task``, or the reason it cannot be loaded (a str)."""
    from flowkit.ml.drift import DriftReport

    try:
        report = task.load("0", expected=DriftReport)
    except FlowkitError as exc:
        return f"{type(exc).__name__}: {exc}"
    if not isinstance(report, DriftReport):
        return f"its output is a {type(report).__name__}, not a DriftReport"
    return report


def _entry(run: RunView, node: str, report: Any) -> DriftEntry:
    """The entry of a loaded report (or of the reason it could not be loaded, a str)."""
    if isinstance(report, str):
        return DriftEntry(run.id, run.workflow, run.started, node, "?", False, [], 0, report)
    columns = report.features if isinstance(report.features, Mapping) else {}
    method = str(report.method)
    features = [_feature(str(name), info) for name, info in columns.items()]
    # The drifted features first, the most drifted first (as DriftReport.drifted_features).
    features.sort(key=lambda f: (not f.drifted, _rank(f, method)))
    return DriftEntry(
        run.id,
        run.workflow,
        run.started,
        node,
        method,
        drifted=report.drifted is True,
        features=features[:MAX_FEATURES],
        more_features=max(0, len(features) - MAX_FEATURES),
    )


def _feature(name: str, info: Any) -> FeatureScore:
    found = info if isinstance(info, Mapping) else {}
    return FeatureScore(
        name=name,
        score=_number(found.get("score")),
        threshold=_number(found.get("threshold")),
        pvalue=_number(found.get("pvalue")),
        drifted=found.get("drifted") is True,
    )


def _rank(feature: FeatureScore, method: str) -> float:
    """Sort key within drifted / not drifted: the smallest p-value (KS) or the largest score
    (PSI) first; unknown numbers last."""
    if method == "ks":
        return feature.pvalue if feature.pvalue is not None else math.inf
    return -feature.score if feature.score is not None else math.inf


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


__all__ = ["DRIFT_TASK", "DriftEntry", "FeatureScore", "drift_reports"]

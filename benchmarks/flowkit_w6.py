"""W6: the scikit-learn pipeline; the grid of 8 fits as ``fit.map(params=GRID)`` on 4 threads.

Data and models travel as task inputs/outputs; cache off.
"""

from typing import Any

from common import GRID, WORKERS, emit, perf, state_dir, w6_data, w6_fit, w6_score

t = perf()
import numpy as np  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402

import flowkit as fk  # noqa: E402

emit("flowkit", "w6", "import", perf() - t)
Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@fk.task
def load() -> Split:
    return w6_data()


@fk.task
def fit(
    params: dict[str, Any], X_tr: np.ndarray, y_tr: np.ndarray, X_va: np.ndarray, y_va: np.ndarray
) -> tuple[float, RandomForestClassifier]:
    return w6_fit(params, X_tr, y_tr, X_va, y_va)


@fk.task
def pick(results: list[tuple[float, RandomForestClassifier]]) -> RandomForestClassifier:
    return max(results, key=lambda r: r[0])[1]


@fk.task
def score(model: RandomForestClassifier, X_te: np.ndarray, y_te: np.ndarray) -> float:
    return w6_score(model, X_te, y_te)


@fk.workflow
def pipeline() -> float:
    X_tr, y_tr, X_va, y_va, X_te, y_te = load()
    results = fit.map(params=GRID, X_tr=X_tr, y_tr=y_tr, X_va=X_va, y_va=y_va)
    return score(pick(results), X_te, y_te)


STORE = state_dir("flowkit", "store")
t = perf()
run = fk.run(
    pipeline, backend=fk.backends.ThreadsBackend(max_workers=WORKERS), store=STORE, cache=False
)
dt = perf() - t
acc = run.output
assert acc > 0.8, acc
emit("flowkit", "w6", "run", dt, mode="threads", test_acc=acc)

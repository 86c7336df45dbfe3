"""W6 peer: dask.delayed pipeline on the threaded scheduler (4 workers)."""

from typing import Any

from common import GRID, WORKERS, emit, perf, w6_data, w6_fit, w6_score

t = perf()
import dask  # noqa: E402
import sklearn.ensemble  # noqa: E402, F401
from dask import delayed  # noqa: E402

emit("dask", "w6", "import", perf() - t)


@delayed(nout=6)
def load() -> tuple[Any, ...]:
    return w6_data()


@delayed(nout=2)
def fit(params: dict[str, Any], X_tr: Any, y_tr: Any, X_va: Any, y_va: Any) -> tuple[float, Any]:
    return w6_fit(params, X_tr, y_tr, X_va, y_va)


@delayed
def pick_and_score(results: list[Any], X_te: Any, y_te: Any) -> tuple[int, float]:
    best = max(range(len(results)), key=lambda i: results[i][0])
    return best, w6_score(results[best][1], X_te, y_te)


t = perf()
X_tr, y_tr, X_va, y_va, X_te, y_te = load()
res = [fit(p, X_tr, y_tr, X_va, y_va) for p in GRID]
best, acc = dask.compute(pick_and_score(res, X_te, y_te), scheduler="threads", num_workers=WORKERS)[
    0
]
dt = perf() - t
assert acc > 0.8
emit("dask", "w6", "run", dt, mode="threads", best=str(GRID[best]), test_acc=acc)

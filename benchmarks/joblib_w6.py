"""W6 peer: joblib Parallel(prefer="threads", n_jobs=4) over the grid."""

from common import GRID, WORKERS, emit, perf, w6_data, w6_fit, w6_score

t = perf()
import sklearn.ensemble  # noqa: E402, F401
from joblib import Parallel, delayed  # noqa: E402

emit("joblib", "w6", "import", perf() - t)
t = perf()
X_tr, y_tr, X_va, y_va, X_te, y_te = w6_data()
res = Parallel(n_jobs=WORKERS, prefer="threads")(
    delayed(w6_fit)(p, X_tr, y_tr, X_va, y_va) for p in GRID
)
best = max(range(len(GRID)), key=lambda i: res[i][0])
acc = w6_score(res[best][1], X_te, y_te)
dt = perf() - t
assert acc > 0.8
emit("joblib", "w6", "run", dt, best=str(GRID[best]), test_acc=acc)

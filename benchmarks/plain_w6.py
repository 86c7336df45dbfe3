"""W6 floor: the scikit-learn grid of 8 on ThreadPoolExecutor(4) (or serial)."""

from common import GRID, WORKERS, emit, mode_arg, perf, w6_data, w6_fit, w6_score

t = perf()
import sklearn.datasets  # noqa: E402
import sklearn.ensemble  # noqa: E402
import sklearn.model_selection  # noqa: E402, F401

emit("plain", "w6", "import", perf() - t)
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

mode = mode_arg("threads")  # threads | serial
t = perf()
X_tr, y_tr, X_va, y_va, X_te, y_te = w6_data()
if mode == "serial":
    res = [w6_fit(p, X_tr, y_tr, X_va, y_va) for p in GRID]
else:
    with ThreadPoolExecutor(WORKERS) as ex:
        res = list(ex.map(lambda p: w6_fit(p, X_tr, y_tr, X_va, y_va), GRID))
best = max(range(len(GRID)), key=lambda i: res[i][0])
acc = w6_score(res[best][1], X_te, y_te)
dt = perf() - t
assert acc > 0.8
emit("plain", "w6", "run", dt, mode=mode, best=str(GRID[best]), test_acc=acc)

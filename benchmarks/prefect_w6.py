"""W6 peer: Prefect flow, ``fit.map`` over the grid on ThreadPoolTaskRunner(4)."""

from typing import Any

from common import GRID, WORKERS, emit, perf, prefect_env, w6_data, w6_fit, w6_score

prefect_env()
t = perf()
import sklearn.ensemble  # noqa: E402, F401
from prefect import flow, task, unmapped  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402

emit("prefect", "w6", "import", perf() - t)


@task(cache_policy=NO_CACHE)
def load() -> tuple[Any, ...]:
    return w6_data()


@task(cache_policy=NO_CACHE)
def fit(params: dict[str, Any], data: tuple[Any, ...]) -> tuple[float, Any]:
    X_tr, y_tr, X_va, y_va, _, _ = data
    return w6_fit(params, X_tr, y_tr, X_va, y_va)


@task(cache_policy=NO_CACHE)
def evaluate(results: list[Any], data: tuple[Any, ...]) -> tuple[int, float]:
    best = max(range(len(results)), key=lambda i: results[i][0])
    return best, w6_score(results[best][1], data[4], data[5])


@flow(task_runner=ThreadPoolTaskRunner(max_workers=WORKERS))
def pipeline() -> tuple[int, float]:
    data = load()
    res = fit.map(GRID, unmapped(data))
    return evaluate(res, data)


t = perf()
best, acc = pipeline()
dt = perf() - t
assert acc > 0.8
emit("prefect", "w6", "run", dt, mode="threads", best=str(GRID[best]), test_acc=acc)

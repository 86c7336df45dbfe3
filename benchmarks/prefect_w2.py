"""W2 peer: Prefect ``square.map`` + ``total`` on ThreadPoolTaskRunner(4), caching off."""

from common import N_W2, REPEAT, WORKERS, emit, expected_w2, perf, prefect_env

prefect_env()
t = perf()
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402

emit("prefect", "w2", "import", perf() - t)


@task(cache_policy=NO_CACHE, persist_result=False)
def square(x: int) -> int:
    return x * x


@task(cache_policy=NO_CACHE, persist_result=False)
def total(xs: list[int]) -> int:
    return sum(xs)


@flow(task_runner=ThreadPoolTaskRunner(max_workers=WORKERS), persist_result=False)
def fanout(n: int) -> int:
    futs = square.map(range(n))
    return total(futs)


for rep in range(REPEAT):
    t = perf()
    r = fanout(N_W2)
    dt = perf() - t
    assert r == expected_w2()
    emit("prefect", "w2", "run", dt, mode="threads", rep=rep, n=N_W2)

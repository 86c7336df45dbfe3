"""W1 peer: Prefect flow with a loop of 200 ``inc`` task calls, caching off."""

from common import N_W1, REPEAT, emit, perf, prefect_env

prefect_env()
t = perf()
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

emit("prefect", "w1", "import", perf() - t)
t = perf()


@task(cache_policy=NO_CACHE, persist_result=False)
def inc(x: int) -> int:
    return x + 1


@flow(persist_result=False)
def chain(n: int) -> int:
    x = 0
    for _ in range(n):
        x = inc(x)
    return x


emit("prefect", "w1", "define", perf() - t)
for rep in range(REPEAT):
    t = perf()
    r = chain(N_W1)
    dt = perf() - t
    assert r == N_W1
    emit("prefect", "w1", "run", dt, rep=rep, n=N_W1)

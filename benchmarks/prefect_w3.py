"""W3 peer: Prefect cache (INPUTS + TASK_SOURCE, persisted results) hits in a new process."""

import os

from common import FILL, N_W2, REPEAT, WORKERS, disk_bytes, du, emit, expected_w2, perf, prefect_env

home = prefect_env()
t = perf()
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import INPUTS, TASK_SOURCE  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402

emit("prefect", "w3", "import", perf() - t)
executed = 0
# The default policy also includes RUN_ID (no hits across flow runs): use INPUTS + TASK_SOURCE.
POLICY = INPUTS + TASK_SOURCE


@task(cache_policy=POLICY, persist_result=True)
def square(x: int) -> int:
    global executed
    executed += 1
    return x * x


@task(cache_policy=POLICY, persist_result=True)
def total(xs: list[int]) -> int:
    global executed
    executed += 1
    return sum(xs)


@flow(task_runner=ThreadPoolTaskRunner(max_workers=WORKERS))
def fanout(n: int) -> int:
    futs = square.map(range(n))
    return total(futs)


for rep in range(REPEAT):
    executed = 0
    t = perf()
    r = fanout(N_W2)
    dt = perf() - t
    assert r == expected_w2()
    st = os.environ["PREFECT_LOCAL_STORAGE_PATH"]
    size = (
        {
            "cache_bytes": du(st),
            "cache_disk": disk_bytes(st),
            "db_bytes": du(os.path.join(home, "prefect.db")),
        }
        if FILL
        else {}
    )
    emit(
        "prefect",
        "w3",
        "run",
        dt,
        rep=rep,
        n=N_W2,
        executed=executed,
        **size,
    )

"""W5 peer: prefect-ray (RayTaskRunner reusing the initialised local Ray); N = 200."""

import os

from common import RAY_CPUS, REPEAT, emit, expected_w2, perf, prefect_env

# prefect-ray costs ~0.1 s per task: N reduced from 500 to 200 (as in the peer baseline).
N_W5 = int(os.environ.get("BENCH_N_PREFECT_W5", 200))
prefect_env()
t = perf()
import ray  # noqa: E402
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect_ray import RayTaskRunner  # noqa: E402

emit("prefect", "w5", "import", perf() - t)


@task(cache_policy=NO_CACHE, persist_result=False)
def square(x: int) -> int:
    return x * x


@task(cache_policy=NO_CACHE, persist_result=False)
def total(xs: list[int]) -> int:
    return sum(xs)


@flow(task_runner=RayTaskRunner(), persist_result=False)
def fanout(n: int) -> int:
    futs = square.map(range(n))
    return total(futs)


t = perf()
ray.init(address="local", num_cpus=RAY_CPUS, include_dashboard=False, log_to_driver=False)
emit("prefect", "w5", "ray_init", perf() - t)
for rep in range(max(REPEAT, 2)):
    t = perf()
    r = fanout(N_W5)
    dt = perf() - t
    assert r == expected_w2(N_W5)
    emit("prefect", "w5", "run", dt, mode="ray", rep=rep, n=N_W5)
ray.shutdown()

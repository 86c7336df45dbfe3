"""W5 floor: 500 ``square`` tasks with raw ``@ray.remote``, summed in the driver.

``ray.init`` is timed apart (phase ``ray_init``) and excluded from ``run``; rep 0 is the
cold run (worker start-up included), rep >= 1 warm.
"""

from common import N_W5, RAY_CPUS, REPEAT, emit, expected_w2, perf

t = perf()
import ray  # noqa: E402

emit("ray", "w5", "import", perf() - t)


@ray.remote
def square(x: int) -> int:
    return x * x


t = perf()
ray.init(address="local", num_cpus=RAY_CPUS, include_dashboard=False, log_to_driver=False)
emit("ray", "w5", "ray_init", perf() - t)
for rep in range(max(REPEAT, 2)):
    t = perf()
    r = sum(ray.get([square.remote(i) for i in range(N_W5)]))
    dt = perf() - t
    assert r == expected_w2(N_W5)
    emit("ray", "w5", "run", dt, mode="raw", rep=rep, n=N_W5)
t = perf()
ray.shutdown()
emit("ray", "w5", "shutdown", perf() - t)

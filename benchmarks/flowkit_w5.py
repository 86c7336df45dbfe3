"""W5: 500 ``square`` tasks on local Ray through ``backend="ray"``, summed in the driver.

The script starts the local Ray itself (``ray.init(num_cpus=2, include_dashboard=False)``,
timed apart as ``ray_init`` and excluded from ``run``); the Ray backend reuses it.
``address="local"`` in every W5 script: always a new local instance, never a cluster that
happens to run on the machine (``ray.init()`` would otherwise attach to it).
Rep 0 is cold (Ray workers start, flowkit is imported in them), rep >= 1 warm. Cache off.
"""

from common import N_W5, RAY_CPUS, REPEAT, emit, expected_w2, perf, state_dir

t = perf()
import ray  # noqa: E402

import flowkit as fk  # noqa: E402

emit("flowkit", "w5", "import", perf() - t)


@fk.task
def square(x: int) -> int:
    return x * x


@fk.workflow
def fanout() -> list[int]:
    return square.map(x=list(range(N_W5)))


t = perf()
ray.init(address="local", num_cpus=RAY_CPUS, include_dashboard=False, log_to_driver=False)
emit("flowkit", "w5", "ray_init", perf() - t)
STORE = state_dir("flowkit", "store")
for rep in range(max(REPEAT, 2)):
    t = perf()
    run = fk.run(fanout, backend="ray", store=STORE, cache=False)
    r = sum(run.output)
    dt = perf() - t
    assert r == expected_w2(N_W5), r
    emit("flowkit", "w5", "run", dt, mode="ray", rep=rep, n=N_W5)
t = perf()
ray.shutdown()
emit("flowkit", "w5", "shutdown", perf() - t)

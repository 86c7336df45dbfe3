"""W1 peer: dask.delayed chain (built lazily, then computed)."""

from common import N_W1, REPEAT, emit, mode_arg, perf

t = perf()
from dask import delayed  # noqa: E402

emit("dask", "w1", "import", perf() - t)
mode = mode_arg("sync")  # sync | threads


@delayed(pure=False)
def inc(x: int) -> int:
    return x + 1


for rep in range(REPEAT):
    t = perf()
    x = 0
    for _ in range(N_W1):
        x = inc(x)
    tb = perf() - t
    if mode == "threads":
        r = x.compute(scheduler=mode, num_workers=4)
    else:
        r = x.compute(scheduler=mode)
    dt = perf() - t
    assert r == N_W1
    emit("dask", "w1", "run", dt, mode=mode, rep=rep, n=N_W1, build=tb)

"""W2 peer: dask.delayed fan-out on the threaded (4 workers) or sync scheduler."""

from common import N_W2, REPEAT, WORKERS, emit, expected_w2, mode_arg, perf

t = perf()
from dask import delayed  # noqa: E402

emit("dask", "w2", "import", perf() - t)
mode = mode_arg("threads")  # threads | sync


@delayed(pure=False)
def square(x: int) -> int:
    return x * x


@delayed(pure=False)
def total(xs: list[int]) -> int:
    return sum(xs)


for rep in range(REPEAT):
    t = perf()
    g = total([square(i) for i in range(N_W2)])
    tb = perf() - t
    if mode == "threads":
        r = g.compute(scheduler="threads", num_workers=WORKERS)
    else:
        r = g.compute(scheduler="sync")
    dt = perf() - t
    assert r == expected_w2()
    emit("dask", "w2", "run", dt, mode=mode, rep=rep, n=N_W2, build=tb)

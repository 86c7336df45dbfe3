"""W4 peer: dask has no task-output persistence; the table is passed in memory."""

from typing import Any

from common import N_W4_ROWS, check_w4, emit, make_table, peak_rss_mb, perf, sum_a

t = perf()
from dask import delayed  # noqa: E402

emit("dask", "w4", "import", perf() - t)


@delayed(pure=False)
def make(n: int) -> Any:
    return make_table(n)


@delayed(pure=False)
def total(tbl: Any) -> float:
    return sum_a(tbl)


t = perf()
s = total(make(N_W4_ROWS)).compute(scheduler="threads", num_workers=4)
dt = perf() - t
check_w4(s)
emit("dask", "w4", "run", dt, mode="threads", bytes=0, rss_mb=peak_rss_mb())

"""W4 peer: joblib Memory persists the table (every run starts from an empty cache)."""

from typing import Any

from common import (
    N_W4_ROWS,
    check_w4,
    du,
    emit,
    make_table,
    peak_rss_mb,
    perf,
    state_dir,
    sum_a,
    wipe,
)

t = perf()
import joblib  # noqa: E402

emit("joblib", "w4", "import", perf() - t)
CACHE = state_dir("joblib", "w4")
wipe(CACHE)
mem = joblib.Memory(location=CACHE, verbose=0)


@mem.cache
def make(n: int) -> Any:
    return make_table(n)


@mem.cache
def total(tbl: Any) -> float:
    return sum_a(tbl)


t = perf()
tbl = make(N_W4_ROWS)
t1 = perf()
emit("joblib", "w4", "task_a", t1 - t)
s = total(tbl)  # joblib hashes the 160 MB argument to build the cache key
t2 = perf()
emit("joblib", "w4", "task_b", t2 - t1)
check_w4(s)
emit("joblib", "w4", "run", t2 - t, bytes=du(CACHE), rss_mb=peak_rss_mb())

"""W4: task A builds the 10M x 2 float64 ``pa.Table``, task B sums column ``a``.

Both tasks ``cache=True`` so A's output is persisted to the store on local disk.
Mode ``cold``: the store is wiped first (write + compute, like the floors' write + read).
Mode ``hit``: the harness fills the store once (BENCH_FILL=1), measured runs are full
cache hits (no body runs; checked with a marker file and the task records).
"""

import os

from common import (
    FILL,
    N_W4_ROWS,
    check_w4,
    du,
    emit,
    executed_count,
    make_table,
    mark_executed,
    mode_arg,
    peak_rss_mb,
    perf,
    state_dir,
    sum_a,
    wipe,
)

mode = mode_arg("cold")  # cold | hit
STATE = state_dir("flowkit")
STORE = os.path.join(STATE, "store")
MARK = os.path.join(STATE, "executed")
if mode == "cold":  # an empty store each run (not the state dir itself: it is the cwd)
    wipe(STORE)
t = perf()
import pyarrow as pa  # noqa: E402

import flowkit as fk  # noqa: E402

emit("flowkit", "w4", "import", perf() - t, mode=mode)


@fk.task(cache=True)
def make(n: int) -> pa.Table:
    mark_executed(MARK)
    return make_table(n)


@fk.task(cache=True)
def total(tbl: pa.Table) -> float:
    mark_executed(MARK)
    return sum_a(tbl)


@fk.workflow
def big() -> float:
    return total(make(N_W4_ROWS))


before = executed_count(MARK)
t = perf()
run = fk.run(big, backend="local", store=STORE, cache=True)
dt = perf() - t
check_w4(run.output)
executed = executed_count(MARK) - before
cached = sum(1 for r in run.tasks if r.cached)
if mode == "cold" or FILL:
    assert executed == 2 and cached == 0, (executed, cached)
else:
    assert executed == 0 and cached == 2, f"hit run: {executed} bodies ran, {cached} cached"
emit(
    "flowkit",
    "w4",
    "run",
    dt,
    mode="fill" if FILL else mode,
    bytes=du(STORE),
    rss_mb=peak_rss_mb(),
    executed=executed,
    cached=cached,
)

"""W4 peer: Prefect result persistence (default cache policy) of the 160 MB table."""

import os

from common import (
    N_W4_ROWS,
    check_w4,
    du,
    emit,
    make_table,
    peak_rss_mb,
    perf,
    prefect_env,
    sum_a,
    wipe,
)

prefect_env()
st = os.environ["PREFECT_LOCAL_STORAGE_PATH"]
wipe(st)
t = perf()
import pyarrow as pa  # noqa: E402
from prefect import flow, task  # noqa: E402

emit("prefect", "w4", "import", perf() - t)


@task(persist_result=True)
def make(n: int) -> pa.Table:
    return make_table(n)


@task(persist_result=True)
def total(tbl: pa.Table) -> float:
    return sum_a(tbl)


@flow
def big() -> float:
    return total(make(N_W4_ROWS))


t = perf()
s = big()
dt = perf() - t
check_w4(s)
emit("prefect", "w4", "run", dt, mode="default", bytes=du(st), rss_mb=peak_rss_mb())

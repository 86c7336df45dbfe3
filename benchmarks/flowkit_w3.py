"""W3: W2 with ``@fk.task(cache=True)`` on both tasks, store on local disk.

The harness wipes $BENCH_STATE, runs this once with BENCH_FILL=1 (fills the cache), then
measures new processes in which every one of the 1001 calls must be a cache hit: checked
twice, by the task records (``cached``) and by a marker file the bodies append to.
"""

import os

from common import (
    FILL,
    N_W2,
    REPEAT,
    WORKERS,
    disk_bytes,
    du,
    emit,
    executed_count,
    expected_w2,
    mark_executed,
    perf,
    state_dir,
)

t = perf()
import flowkit as fk  # noqa: E402

emit("flowkit", "w3", "import", perf() - t)
STATE = state_dir("flowkit")
STORE = os.path.join(STATE, "store")
MARK = os.path.join(STATE, "executed")
t = perf()


@fk.task(cache=True)
def square(x: int) -> int:
    mark_executed(MARK)
    return x * x


@fk.task(cache=True)
def total(xs: list[int]) -> int:
    mark_executed(MARK)
    return sum(xs)


@fk.workflow
def fanout() -> int:
    return total(square.map(x=list(range(N_W2))))


emit("flowkit", "w3", "define", perf() - t)
for rep in range(REPEAT):
    before = executed_count(MARK)
    t = perf()
    run = fk.run(
        fanout, backend=fk.backends.ThreadsBackend(max_workers=WORKERS), store=STORE, cache=True
    )
    dt = perf() - t
    assert run.output == expected_w2(), run.output
    executed = executed_count(MARK) - before
    cached = sum(1 for r in run.tasks if r.cached)
    if not FILL or rep > 0:
        assert executed == 0, f"{executed} task bodies ran on a cache-hit run"
        assert cached == N_W2 + 1, f"only {cached} of {N_W2 + 1} calls were cache hits"
    # cache size after the fill run only: walking the store is not charged to the hit runs
    size = {"cache_bytes": du(STORE), "cache_disk": disk_bytes(STORE)} if FILL else {}
    emit(
        "flowkit",
        "w3",
        "run",
        dt,
        mode="fill" if FILL and rep == 0 else "hit",
        rep=rep,
        n=N_W2,
        executed=executed,
        cached=cached,
        **size,
    )

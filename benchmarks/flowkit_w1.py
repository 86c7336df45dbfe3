"""W1: a chain of 200 ``inc`` tasks, a Python loop in the workflow body.

Backend ``local`` (inline, serial), cache off; the store (run records) under $BENCH_STATE.
"""

from common import N_W1, REPEAT, emit, perf, state_dir

t = perf()
import flowkit as fk  # noqa: E402

emit("flowkit", "w1", "import", perf() - t)
t = perf()


@fk.task
def inc(x: int) -> int:
    return x + 1


@fk.workflow
def chain() -> int:
    x = 0
    for _ in range(N_W1):
        x = inc(x)
    return x


emit("flowkit", "w1", "define", perf() - t)
STORE = state_dir("flowkit", "store")
for rep in range(REPEAT):
    t = perf()
    run = fk.run(chain, backend="local", store=STORE, cache=False)
    dt = perf() - t
    assert run.output == N_W1, run.output
    emit("flowkit", "w1", "run", dt, rep=rep, n=N_W1, tasks=len(run.tasks))

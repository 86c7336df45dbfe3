"""W2: ``square.map`` over 1000 ints, then ``total``; cache off.

Mode ``threads`` (default): ``ThreadsBackend(max_workers=4)``; mode ``local``: the inline
serial backend (the serial variant, like plain's ``serial``).
"""

from common import N_W2, REPEAT, WORKERS, emit, expected_w2, mode_arg, perf, state_dir

mode = mode_arg("threads")  # threads | local
t = perf()
import flowkit as fk  # noqa: E402

emit("flowkit", "w2", "import", perf() - t, mode=mode)
t = perf()


@fk.task
def square(x: int) -> int:
    return x * x


@fk.task
def total(xs: list[int]) -> int:
    return sum(xs)


@fk.workflow
def fanout() -> int:
    return total(square.map(x=list(range(N_W2))))


emit("flowkit", "w2", "define", perf() - t, mode=mode)
STORE = state_dir("flowkit", "store")
for rep in range(REPEAT):
    backend = fk.backends.ThreadsBackend(max_workers=WORKERS) if mode == "threads" else "local"
    t = perf()
    run = fk.run(fanout, backend=backend, store=STORE, cache=False)
    dt = perf() - t
    assert run.output == expected_w2(), run.output
    emit("flowkit", "w2", "run", dt, mode=mode, rep=rep, n=N_W2, tasks=len(run.tasks))

"""W1 peer: joblib has no chain concept; a Memory(None)-wrapped function in a loop."""

from common import N_W1, REPEAT, emit, perf

t = perf()
import joblib  # noqa: E402

emit("joblib", "w1", "import", perf() - t)
t = perf()
mem = joblib.Memory(location=None, verbose=0)


@mem.cache
def inc(x: int) -> int:
    return x + 1


emit("joblib", "w1", "define", perf() - t)
for rep in range(REPEAT):
    t = perf()
    x = 0
    for _ in range(N_W1):
        x = inc(x)
    dt = perf() - t
    assert x == N_W1
    emit("joblib", "w1", "run", dt, rep=rep, n=N_W1)

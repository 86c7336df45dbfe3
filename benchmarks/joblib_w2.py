"""W2 peer: joblib Parallel(prefer="threads", n_jobs=4)."""

from common import N_W2, REPEAT, WORKERS, emit, expected_w2, perf

t = perf()
from joblib import Parallel, delayed  # noqa: E402

emit("joblib", "w2", "import", perf() - t)


def square(x: int) -> int:
    return x * x


def total(xs: list[int]) -> int:
    return sum(xs)


for rep in range(REPEAT):
    t = perf()
    sq = Parallel(n_jobs=WORKERS, prefer="threads")(delayed(square)(i) for i in range(N_W2))
    r = total(sq)
    dt = perf() - t
    assert r == expected_w2()
    emit("joblib", "w2", "run", dt, mode="threads", rep=rep, n=N_W2)

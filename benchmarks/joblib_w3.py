"""W3 peer: joblib Memory on local disk, Parallel threads."""

from common import FILL, N_W2, REPEAT, WORKERS, disk_bytes, du, emit, expected_w2, perf, state_dir

t = perf()
import joblib  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402

emit("joblib", "w3", "import", perf() - t)
CACHE = state_dir("joblib", "w3")
mem = joblib.Memory(location=CACHE, verbose=0)
executed = 0


@mem.cache
def square(x: int) -> int:
    global executed
    executed += 1
    return x * x


@mem.cache
def total(xs: list[int]) -> int:
    global executed
    executed += 1
    return sum(xs)


for rep in range(REPEAT):
    executed = 0
    t = perf()
    sq = Parallel(n_jobs=WORKERS, prefer="threads")(delayed(square)(i) for i in range(N_W2))
    r = total(sq)
    dt = perf() - t
    assert r == expected_w2()
    # cache size after the fill run only: walking the store is not charged to the hit runs
    size = {"cache_bytes": du(CACHE), "cache_disk": disk_bytes(CACHE)} if FILL else {}
    emit(
        "joblib",
        "w3",
        "run",
        dt,
        rep=rep,
        n=N_W2,
        executed=executed,
        **size,
    )

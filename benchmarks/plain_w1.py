"""W1 floor: 200 calls of ``inc`` in a Python loop."""

from common import N_W1, REPEAT, emit, perf


def inc(x: int) -> int:
    return x + 1


def chain(n: int) -> int:
    x = 0
    for _ in range(n):
        x = inc(x)
    return x


for rep in range(REPEAT):
    t = perf()
    r = chain(N_W1)
    dt = perf() - t
    assert r == N_W1
    emit("plain", "w1", "run", dt, rep=rep, n=N_W1)

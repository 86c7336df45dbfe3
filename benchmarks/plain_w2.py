"""W2 floor: 1000 ``square`` calls + ``total`` on ThreadPoolExecutor(4) (or serial).

Also the floor of the 100k-item scale run (``BENCH_N_W2=100000``): reports the driver
memory per item the same way as ``flowkit_scale.py``.
"""

from concurrent.futures import ThreadPoolExecutor

from common import N_W2, REPEAT, WORKERS, emit, expected_w2, mode_arg, peak_rss_mb, perf, rss_mb

mode = mode_arg("threads")  # threads | serial


def square(x: int) -> int:
    return x * x


def total(xs: list[int]) -> int:
    return sum(xs)


def run() -> int:
    if mode == "serial":
        return total([square(i) for i in range(N_W2)])
    with ThreadPoolExecutor(WORKERS) as ex:
        futs = [ex.submit(square, i) for i in range(N_W2)]
        return ex.submit(total, [f.result() for f in futs]).result()


base = rss_mb()
for rep in range(REPEAT):
    t = perf()
    r = run()
    dt = perf() - t
    assert r == expected_w2()
    peak = peak_rss_mb()
    emit(
        "plain",
        "w2",
        "run",
        dt,
        mode=mode,
        rep=rep,
        n=N_W2,
        base_mb=round(base, 1),
        peak_mb=round(peak, 1),
        kb_per_node=round((peak - base) * 1024 / N_W2, 4),
    )

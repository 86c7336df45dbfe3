"""Scale: a 100,000-item ``square.map`` + ``total`` on ThreadsBackend(4), cache off.

Reports the run time and the driver memory per node = (peak RSS - baseline RSS) / N, the
baseline taken after ``import flowkit`` and the task definitions, before the workflow is
traced (so tracing, the graph, the records and the results all count).
"""

from common import N_SCALE, WORKERS, emit, expected_w2, peak_rss_mb, perf, rss_mb, state_dir

t = perf()
import flowkit as fk  # noqa: E402

emit("flowkit", "scale", "import", perf() - t)


@fk.task
def square(x: int) -> int:
    return x * x


@fk.task
def total(xs: list[int]) -> int:
    return sum(xs)


STORE = state_dir("flowkit", "store")
base = rss_mb()
t = perf()


@fk.workflow
def fanout() -> int:
    return total(square.map(x=list(range(N_SCALE))))


emit("flowkit", "scale", "define", perf() - t)
t = perf()
run = fk.run(
    fanout, backend=fk.backends.ThreadsBackend(max_workers=WORKERS), store=STORE, cache=False
)
dt = perf() - t
assert run.output == expected_w2(N_SCALE), run.output
peak = peak_rss_mb()
emit(
    "flowkit",
    "scale",
    "run",
    dt,
    mode="threads",
    n=N_SCALE,
    tasks=len(run.tasks),
    base_mb=round(base, 1),
    peak_mb=round(peak, 1),
    kb_per_node=round((peak - base) * 1024 / N_SCALE, 4),
)

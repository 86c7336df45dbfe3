"""flowkit in one file: typed tasks, a workflow, a fan-out, a cache.

Run it:   python examples/quickstart.py
    or:   flowkit run examples/quickstart.py --n 8
Run it twice: the second run is served from the cache in ./.flowkit.
"""

from __future__ import annotations

import flowkit as fk

SCALE = 3  # a module constant: edit it and the cached `score` results miss, as they should


@fk.task
def numbers(n: int) -> list[int]:
    return list(range(1, n + 1))


@fk.task(cache=True)
def score(x: int) -> float:
    return (x * SCALE) ** 0.5


@fk.task(cache=True)
def summarise(scores: list[float]) -> dict[str, float]:
    return {"count": float(len(scores)), "total": round(sum(scores), 3), "best": max(scores)}


@fk.workflow
def quickstart(n: int = 5) -> dict[str, float]:
    xs = numbers(n)
    scores = score.map(x=xs)  # one `score` call per number, in parallel on threads
    return summarise(scores)


if __name__ == "__main__":
    run = fk.run(quickstart, n=5, backend="threads")
    print(run.output)
    print(
        f"run {run.id}: {run.status} in {run.duration:.3f} s, "
        f"{sum(t.cached for t in run.tasks)} of {len(run.tasks)} tasks from the cache"
    )
    print(quickstart.graph.to_mermaid())

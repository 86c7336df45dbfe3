"""W0 for raw Ray: ``import ray`` + two remote functions (reference for W5)."""

import ray


@ray.remote
def inc(x: int) -> int:
    return x + 1


@ray.remote
def square(x: int) -> int:
    return x * x

"""W0 peer: import dask + two delayed functions."""

from dask import delayed


@delayed
def inc(x: int) -> int:
    return x + 1


@delayed
def square(x: int) -> int:
    return x * x

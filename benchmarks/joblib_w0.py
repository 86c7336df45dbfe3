"""W0 peer: import joblib + two Memory-wrapped functions."""

import joblib

mem = joblib.Memory(location=None, verbose=0)


@mem.cache
def inc(x: int) -> int:
    return x + 1


@mem.cache
def square(x: int) -> int:
    return x * x

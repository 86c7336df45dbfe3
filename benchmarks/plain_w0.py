"""W0 floor: no SDK, two plain functions (compared with ``python -c pass``)."""


def inc(x: int) -> int:
    return x + 1


def square(x: int) -> int:
    return x * x

"""W0: ``import flowkit`` and define two tasks, nothing runs (vs ``python -c pass``)."""

import flowkit as fk


@fk.task
def inc(x: int) -> int:
    return x + 1


@fk.task
def square(x: int) -> int:
    return x * x

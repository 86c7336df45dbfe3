"""CLI fixture: a task that always fails (after one retry)."""

import flowkit as fk


@fk.task
def prepare(x: int) -> int:
    return x


@fk.task(retries=1)
def boom(x: int) -> int:
    raise ValueError(f"bad value {x}")


@fk.workflow
def breaks(x: int = 42) -> int:
    return boom(prepare(x))

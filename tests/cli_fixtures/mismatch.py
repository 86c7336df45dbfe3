"""CLI fixture: a workflow whose edge does not type-check (fails at decoration)."""

import flowkit as fk


@fk.task
def make() -> str:
    return "x"


@fk.task
def double(x: int) -> int:
    return 2 * x


@fk.workflow
def wrong() -> int:
    return double(make())

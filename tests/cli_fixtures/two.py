"""CLI fixture: two workflows in one file (and one imported, which does not count)."""

from pipeline import pipeline as imported_pipeline  # noqa: F401 - must not be offered

import flowkit as fk


@fk.task
def inc(x: int) -> int:
    return x + 1


@fk.workflow
def first(x: int = 1) -> int:
    return inc(x)


@fk.workflow(name="second_wf")
def second(x: int = 10) -> int:
    return inc(inc(x))

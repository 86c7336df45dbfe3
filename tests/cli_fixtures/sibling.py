"""CLI fixture: imports a helper module that sits next to it."""

from sibling_helper import triple

import flowkit as fk


@fk.task
def apply(x: int) -> int:
    return triple(x)


@fk.workflow
def uses_sibling(x: int = 2) -> int:
    return apply(x)

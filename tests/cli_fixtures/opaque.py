"""CLI fixture: a required input whose type cannot be written on a command line."""

import flowkit as fk


class Blob:
    pass


@fk.task
def size(b: Blob) -> int:
    return 0


@fk.workflow
def needs_blob(b: Blob) -> int:
    return size(b)

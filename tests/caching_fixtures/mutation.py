"""The issue's in-place mutation scenario (issue 9, case 5): ``normalise`` appends to its input
list, ``total`` sums the same list. Used by tests/test_isolation.py in-process and by the Ray
trust tests as a script (so both run the very same workflows)."""

from __future__ import annotations

import flowkit as fk


@fk.task(cache=True)
def load(n: int) -> list[int]:
    return list(range(n))


@fk.task(cache=True)
def normalise(xs: list[int]) -> list[int]:
    xs.append(1000)
    return xs


@fk.task(cache=True, cache_ignore=("after",))
def total(xs: list[int], after: list[int] | None = None) -> int:
    # `after` only orders the calls (normalise first, on every backend); it is not in the key
    return sum(xs)


@fk.workflow
def normalise_then_total(n: int) -> tuple[list[int], int]:
    xs = load(n)
    normalised = normalise(xs)
    return normalised, total(xs, after=normalised)


@fk.workflow
def siblings(n: int) -> tuple[list[int], int, list[int]]:
    xs = load(n)  # the exact shape: two consumers of one output, no edge between them
    return normalise(xs), total(xs), xs


@fk.workflow
def just_total(n: int) -> int:
    return total(load(n))


@fk.workflow
def from_input(xs: list[int]) -> tuple[list[int], int]:
    normalised = normalise(xs)
    return normalised, total(xs, after=normalised)

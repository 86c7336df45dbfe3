"""Caching fixture: cached tasks whose outputs cannot be stored (a lock, a generator)."""

import threading
from collections.abc import Iterator
from typing import Any

import flowkit as fk


@fk.task(cache=True)
def numbers(n: int) -> list[int]:
    return list(range(n))


@fk.task(cache=True)
def make_lock(xs: list[int]) -> Any:
    return threading.Lock()


@fk.task(cache=True)
def make_gen(xs: list[int]) -> Iterator[int]:
    return (x for x in xs)


@fk.workflow
def with_lock(n: int = 3) -> Any:
    return make_lock(numbers(n))


@fk.workflow
def with_gen(n: int = 3) -> Iterator[int]:
    return make_gen(numbers(n))


if __name__ == "__main__":
    from _drive import main

    main(with_lock, with_gen)

"""CLI fixture: graph shapes the cache explainer must key exactly as the engine does."""

from typing import NamedTuple

import flowkit as fk


class Halves(NamedTuple):
    left: list[int]
    right: list[int]


@fk.task(cache=True)
def numbers(n: int) -> list[int]:
    return list(range(n))


@fk.task(cache=True)
def split(xs: list[int]) -> Halves:
    mid = len(xs) // 2
    return Halves(xs[:mid], xs[mid:])


@fk.task(cache=True)
def pair(xs: list[int]) -> tuple[int, int]:
    return min(xs), max(xs)


@fk.task(cache=True, version="v1")
def inc(x: int) -> int:
    return x + 1


@fk.task(cache=True, cache_ignore=("verbose",))
def double(x: int, verbose: bool = False) -> int:
    return 2 * x


@fk.task(cache=True)
def combine(parts: list[list[int]], extremes: tuple[int, int], table: dict[str, int]) -> int:
    return sum(map(sum, parts)) + sum(extremes) + sum(table.values())


@fk.task(cache=True)
def size(xs: list[int]) -> int:
    return len(xs)


@fk.workflow
def prepare(n: int) -> list[int]:
    return numbers(n)


@fk.workflow
def shapes(n: int = 6, verbose: bool = False) -> int:
    xs = prepare(n)
    halves = split(xs)
    doubled = double.map(x=inc.map(x=halves.left), verbose=fk.unmapped(verbose))
    total = combine([doubled, halves.right], pair(xs), {"w": size(halves.right)})
    return total

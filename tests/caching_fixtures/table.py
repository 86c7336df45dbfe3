"""Caching fixture: one task per row of the invalidation table (the tests edit a copy).

load -> prep (helper `clean`, constant `FACTOR`) -> combine -> report
     -> scale (class `Scaler`)                   -^          ^
     -> shift (closure `delta`)                  -^          |
     -> pinned (version="1") ---------------------------------+
     -> noisy (cache_ignore=("verbose",)) --------------------+
"""

import flowkit as fk

FACTOR = 3


def clean(x: int) -> int:
    return x * FACTOR


class Scaler:
    def __init__(self, k: int) -> None:
        self.k = k

    def apply(self, x: int) -> int:
        return x * self.k


def make_shift(delta: int) -> fk.TaskDef[[list[int]], list[int]]:
    @fk.task(cache=True, name="shift")
    def shift(xs: list[int]) -> list[int]:
        return [x + delta for x in xs]

    return shift


shift = make_shift(10)


@fk.task(cache=True)
def load(n: int) -> list[int]:
    return list(range(n))


@fk.task(cache=True)
def prep(xs: list[int]) -> list[int]:
    """Clean every item."""
    return [clean(x) for x in xs]


@fk.task(cache=True)
def scale(xs: list[int]) -> list[int]:
    return [Scaler(2).apply(x) for x in xs]


@fk.task(cache=True)
def combine(a: list[int], b: list[int], c: list[int]) -> int:
    return sum(a) + sum(b) + sum(c)


@fk.task(cache=True, version="1")
def pinned(xs: list[int]) -> int:
    return sum(xs) * 2


@fk.task(cache=True, cache_ignore=("verbose",))
def noisy(xs: list[int], verbose: bool) -> int:
    return len(xs)


@fk.task(cache=True)
def report(total: int, twice: int, count: int) -> str:
    return f"total={total} twice={twice} count={count}"


@fk.workflow
def table(n: int = 4, verbose: bool = False) -> str:
    xs = load(n)
    total = combine(prep(xs), scale(xs), shift(xs))
    return report(total, pinned(xs), noisy(xs, verbose))


if __name__ == "__main__":
    from _drive import main

    main(table)

"""CLI fixture: a cached map pipeline with a helper and a module constant."""

import flowkit as fk

FACTOR = 3


def clean(x: int) -> int:
    return x * FACTOR


@fk.task(cache=True)
def load(n: int) -> list[int]:
    return list(range(n))


@fk.task(cache=True)
def square(x: int) -> int:
    return clean(x) ** 2


@fk.task(cache=True)
def total(xs: list[int], offset: float = 0.0) -> float:
    return sum(xs) + offset


@fk.workflow
def pipeline(n: int = 4, offset: float = 0.5) -> float:
    return total(square.map(x=load(n)), offset)


if __name__ == "__main__":
    raise SystemExit("the __main__ block of pipeline.py must not run under the CLI")

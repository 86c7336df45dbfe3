"""The workflows :class:`~flowkit.testing.semantics.WorkflowContract` runs on a backend."""

from __future__ import annotations

import flowkit as fk
from flowkit.testing.tasks import (
    add,
    after_boom,
    boom,
    cached_numbers,
    cached_square,
    cached_total,
    divide,
    double,
    double_each,
    doubles_up_to,
    finish_inverted,
    flaky,
    flaky_backoff,
    gate,
    negate,
    numbers,
    rendezvous,
    second_step,
    sign_branch,
    size_and_index,
    sleepy,
    sleepy_once,
    stats,
    sum_of_doubles,
    total,
)


@fk.workflow
def chain(x: int) -> int:
    return double(add(double(x), 1))


@fk.workflow
def fan_out_in(x: int) -> int:
    a = double(x)
    b = negate(a)
    c = add(a, x)
    return add(add(b, c), a)


@fk.workflow
def multi_output(a: int, b: int, n: int) -> tuple[int, int, int, float]:
    q, r = divide(a, b)
    low, high, mean = stats(numbers(n))
    both = stats(numbers(n))
    return add(q, r), add(low, high), both.high, mean


@fk.workflow
def inner(x: int) -> int:
    return add(double(x), 1)


@fk.workflow
def outer(x: int) -> int:
    return inner(inner(x))


@fk.workflow
def map_order(count: int) -> list[int]:
    out: list[int] = finish_inverted.map(x=numbers(count), count=count)
    return out


@fk.workflow
def zipped(xs: list[int], ys: list[int]) -> list[int]:
    out: list[int] = add.map(a=xs, b=ys)
    return out


@fk.workflow
def unmapped_whole(xs: list[int], idx: list[int]) -> list[int]:
    out: list[int] = size_and_index.map(items=fk.unmapped(xs), i=idx)
    return out


@fk.workflow
def empty_map(n: int) -> tuple[list[int], int]:
    doubled = double.map(x=numbers(n))
    return doubled, total(doubled)


@fk.workflow
def retrying(folder: str, fails: int) -> int:
    return flaky(folder, fails)


@fk.workflow
def backing_off(folder: str, fails: int) -> int:
    return flaky_backoff(folder, fails)


@fk.workflow
def timing_out(folder: str, seconds: float) -> int:
    return sleepy(folder, seconds)


@fk.workflow
def timing_out_once(folder: str, seconds: float) -> int:
    return sleepy_once(folder, seconds)


@fk.workflow
def failing(folder: str) -> int:
    b = boom(folder, "kaput")
    later = second_step(folder, after_boom(folder))
    return add(b, later)


@fk.workflow
def dynamic_fan_out(n: int) -> int:
    return total(doubles_up_to(add(n, 1)))


@fk.workflow
def branching(x: int) -> int:
    return sign_branch(add(x, 0))


@fk.workflow
def nested_dynamic(n: int) -> int:
    return sum_of_doubles(n)


@fk.workflow
def dynamic_map(n: int) -> list[int]:
    return double_each(numbers(n))


@fk.workflow
def overlapping(folder: str) -> list[bool]:
    return [rendezvous(folder, "a", "b"), rendezvous(folder, "b", "a")]


@fk.workflow
def cached_pipeline(folder: str, n: int) -> int:
    return cached_total(folder, cached_square.map(x=cached_numbers(folder, n), folder=folder))


@fk.workflow
def resumable(folder: str, x: int) -> int:
    return gate(folder, cached_square(folder, x))

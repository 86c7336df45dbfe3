"""The tasks the contract's workflows call. They live at module level, so a worker in
another process imports them by name instead of receiving a copy."""

from __future__ import annotations

import time
from typing import NamedTuple

import flowkit as fk
from flowkit.testing.observe import (
    _RENDEZVOUS_TIMEOUT,
    is_marked,
    mark,
    record_attempt,
    wait_for_mark,
)


class Stats(NamedTuple):
    low: int
    high: int
    mean: float


@fk.task
def add(a: int, b: int) -> int:
    return a + b


@fk.task
def double(x: int) -> int:
    return 2 * x


@fk.task
def negate(x: int) -> int:
    return -x


@fk.task
def total(xs: list[int]) -> int:
    return sum(xs)


@fk.task
def numbers(n: int) -> list[int]:
    return list(range(n))


@fk.task
def divide(a: int, b: int) -> tuple[int, int]:
    return a // b, a % b


@fk.task
def stats(xs: list[int]) -> Stats:
    return Stats(min(xs), max(xs), sum(xs) / len(xs))


@fk.task
def size_and_index(items: object, i: int) -> int:
    """``items`` is typed ``object``, so a list would be mapped unless wrapped in fk.unmapped."""
    assert isinstance(items, list)
    return len(items) * 100 + i


@fk.task
def finish_inverted(x: int, count: int) -> int:
    """Item ``x`` sleeps longer the earlier it comes, so items finish in reverse order."""
    time.sleep((count - x) * 0.05)
    return 10 * x


@fk.task(retries=2)
def flaky(folder: str, fails: int) -> int:
    n = record_attempt(folder, "flaky")
    if n <= fails:
        raise RuntimeError(f"flaky attempt {n} fails on purpose")
    return n


@fk.task(retries=2, retry_delay=0.2)
def flaky_backoff(folder: str, fails: int) -> int:
    n = record_attempt(folder, "flaky_backoff")
    if n <= fails:
        raise RuntimeError(f"flaky_backoff attempt {n} fails on purpose")
    return n


@fk.task(timeout=0.5)
def sleepy(folder: str, seconds: float) -> int:
    n = record_attempt(folder, "sleepy")
    time.sleep(seconds)
    return n


@fk.task(timeout=0.5, retries=1)
def sleepy_once(folder: str, seconds: float) -> int:
    """Sleeps past its timeout on the first attempt only."""
    n = record_attempt(folder, "sleepy_once")
    if n == 1:
        time.sleep(seconds)
    return n


@fk.task
def boom(folder: str, message: str) -> int:
    mark(folder, "boom")
    raise ValueError(message)


@fk.task
def after_boom(folder: str) -> int:
    """Still running when ``boom`` fails (on a concurrent backend); ends well after it."""
    wait_for_mark(folder, "boom", 5.0)
    time.sleep(0.5)
    return 1


@fk.task
def second_step(folder: str, x: int) -> int:
    mark(folder, "second_step")
    return x


@fk.task
def rendezvous(folder: str, me: str, other: str) -> bool:
    """Mark ``me``, then wait for ``other``: True only when both calls ran at the same time."""
    mark(folder, me)
    return wait_for_mark(folder, other, _RENDEZVOUS_TIMEOUT)


@fk.task(cache=True, cache_ignore=("folder",))
def cached_numbers(folder: str, n: int) -> list[int]:
    record_attempt(folder, "cached_numbers")
    return list(range(n))


@fk.task(cache=True, cache_ignore=("folder",))
def cached_square(folder: str, x: int) -> int:
    record_attempt(folder, f"cached_square_{x}")
    return x * x


@fk.task(cache=True, cache_ignore=("folder",))
def cached_total(folder: str, xs: list[int]) -> int:
    record_attempt(folder, "cached_total")
    return sum(xs)


@fk.task
def gate(folder: str, x: int) -> int:
    """Fails while ``folder/closed.mark`` exists."""
    if is_marked(folder, "closed"):
        raise RuntimeError("the gate is closed")
    return x


@fk.dynamic
def doubles_up_to(n: int) -> list[int]:
    """Data-dependent fan-out: ``n`` is only known at run time."""
    return [double(i) for i in range(n)]


@fk.dynamic
def sign_branch(x: int) -> int:
    if x > 0:
        return double(x)
    if x < 0:
        return negate(x)
    return 0


@fk.dynamic
def sum_of_doubles(n: int) -> int:
    """A dynamic task whose sub-graph calls another dynamic task."""
    return total(doubles_up_to(add(n, 0)))


@fk.dynamic
def double_each(xs: list[int]) -> list[int]:
    out: list[int] = double.map(x=xs)
    return out

"""Plain functions that :class:`~flowkit.testing.protocol.ProtocolContract` submits straight
to a backend, as the engine would: ``fn(*args) -> (meta, value)``. Module-level, so a worker
in another process imports them by name."""

from __future__ import annotations

import time
from typing import Any

from flowkit.testing.observe import mark


def square(x: int) -> tuple[str, int]:
    return f"squared {x}", x * x


def add(a: int, b: int) -> tuple[None, int]:
    return None, a + b


def total_of(xs: list[int]) -> tuple[None, int]:
    return None, sum(xs)


def offset_by(static: dict[str, int], x: int) -> tuple[None, int]:
    """``static`` is the same object in every call (``Submission.static_args = 1``)."""
    return None, static["offset"] + x


def squares_batch(xs: list[int]) -> tuple[list[str], list[int]]:
    """A batch of calls in one (``Submission.split_values = len(xs)``), like
    ``flowkit.runner.run_batch``: one outcome and one value per item."""
    return [f"squared {x}" for x in xs], [x * x for x in xs]


class ContractError(ValueError):
    """The error :func:`fail_with` raises: a user exception type the backend must keep."""


def fail_with(message: str) -> tuple[None, None]:
    raise ContractError(message)


def mark_then_sleep(folder: str, name: str, seconds: float) -> tuple[None, float]:
    """Mark ``name`` (so the driver knows the call runs), sleep, then mark ``name-done``."""
    mark(folder, name)
    time.sleep(seconds)
    mark(folder, f"{name}-done")
    return None, seconds


def echo(value: Any) -> tuple[None, Any]:
    return None, value

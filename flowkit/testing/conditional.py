"""``ConditionalContract``: ``fk.cond`` branches and field access on promises, on a backend.

Only the branch a predicate picks runs (per item, with ``fk.cond.map``); every call of the
other branch is recorded as ``skipped`` and never starts (each branch task leaves a mark file
in the per-test folder, so a call that ran anywhere, even on another process, is seen). Nested
conds read the outer predicate first; a cond's result and a field of a node's output
(``cfg.lr``, resolved where the value lives, on the worker for a backend that keeps values
there) feed later calls like any value. The tasks and workflows are at module level so that
workers import them by name.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

import flowkit as fk
from flowkit.testing.base import ContractBase
from flowkit.testing.observe import is_marked, mark


class Halves(NamedTuple):
    low: int
    high: int


@fk.task
def positive(x: int) -> bool:
    return x > 0


@fk.task
def marked_double(x: int, folder: str) -> int:
    mark(folder, f"double_{x}")
    return 2 * x


@fk.task
def marked_negate(x: int, folder: str) -> int:
    mark(folder, f"negate_{x}")
    return -x


@fk.task
def halves(x: int) -> Halves:
    return Halves(x // 2, x - x // 2)


@fk.task
def plus(a: int, b: int) -> int:
    return a + b


@fk.workflow
def negate_then_double(x: int, folder: str) -> int:
    return marked_double(marked_negate(x, folder), folder)


@fk.workflow
def sign_cond(x: int, folder: str) -> int:
    """2x for a positive x, else double(negate(x)) = -2x (a two-node branch)."""
    result: int = fk.cond(
        positive(x), then=marked_double, otherwise=negate_then_double, x=x, folder=folder
    )
    return result


@fk.workflow
def nested_cond(x: int, y: int, folder: str) -> int:
    """x > 0: (y > 0: 2y, else -y); else -x."""
    result: int = fk.cond(
        positive(x),
        then=lambda y, x, folder: fk.cond(
            positive(y), then=marked_double, otherwise=marked_negate, x=y, folder=folder
        ),
        otherwise=lambda y, x, folder: marked_negate(x, folder),
        x=x,
        y=y,
        folder=folder,
    )
    return result


@fk.workflow
def fields_and_cond(x: int, folder: str) -> int:
    """halves(x).low + halves(x).high, doubled when the low half is positive."""
    h = halves(x)
    total = plus(h.low, h.high)
    result: int = fk.cond(
        positive(h.low), then=marked_double, otherwise=lambda x, folder: x, x=total, folder=folder
    )
    return result


@fk.workflow
def signs_per_item(xs: list[int], folder: str) -> list[int]:
    """2x for each positive x, -x for the others (fk.cond.map)."""
    preds = positive.map(x=xs)
    result: list[int] = fk.cond.map(
        preds, then=marked_double, otherwise=marked_negate, x=xs, folder=folder
    )
    return result


class ConditionalContract(ContractBase):
    """``fk.cond`` and field access through a backend."""

    @pytest.mark.parametrize("x", [3, -2])
    def test_only_the_branch_taken_runs(self, store: str, folder: str, x: int) -> None:
        run = self.run(sign_cond, store, x=x, folder=folder)
        assert run.output == 2 * abs(x)
        status = {t.node: t.status for t in run.tasks}
        if x > 0:
            assert status["marked_double"] == "succeeded"
            assert status["negate_then_double.marked_negate"] == "skipped"
            assert status["negate_then_double.marked_double"] == "skipped"
            assert not is_marked(folder, f"negate_{x}")
        else:
            assert status["marked_double"] == "skipped"
            assert status["negate_then_double.marked_negate"] == "succeeded"
            assert not is_marked(folder, f"double_{x}")
        assert run.status == "succeeded"

    @pytest.mark.parametrize(("x", "y"), [(1, 4), (1, -4), (-1, 4)])
    def test_nested_conds(self, store: str, folder: str, x: int, y: int) -> None:
        run = self.run(nested_cond, store, x=x, y=y, folder=folder)
        assert run.output == ((2 * y if y > 0 else -y) if x > 0 else -x)
        ran = sorted(t.node for t in run.tasks if t.status == "succeeded")
        skipped = sorted(t.node for t in run.tasks if t.status == "skipped")
        assert len(ran) + len(skipped) == len(run.tasks)
        expected_skips = 2 if x > 0 else 3  # the inner pair, or the inner pair and predicate
        assert len(skipped) == expected_skips

    def test_a_cond_per_item(self, store: str, folder: str) -> None:
        run = self.run(signs_per_item, store, xs=[3, -4, 5], folder=folder)
        assert run.output == [6, 4, 10]
        status = {t.node: t.status for t in run.tasks}
        assert status["marked_double[1]"] == status["marked_negate[0]"] == "skipped"
        assert status["marked_negate[1]"] == status["marked_double[2]"] == "succeeded"
        assert not is_marked(folder, "negate_3") and not is_marked(folder, "double_-4")

    def test_fields_feed_calls_and_conds(self, store: str, folder: str) -> None:
        assert self.run(fields_and_cond, store, x=7, folder=folder).output == 14
        assert self.run(fields_and_cond, store, x=1, folder=folder).output == 1  # low half 0


__all__ = [
    "ConditionalContract",
    "Halves",
    "fields_and_cond",
    "halves",
    "marked_double",
    "marked_negate",
    "negate_then_double",
    "nested_cond",
    "plus",
    "positive",
    "sign_cond",
    "signs_per_item",
]

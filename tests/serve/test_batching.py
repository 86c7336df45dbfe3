"""Adaptive batching (:mod:`flowkit.serve.batching`): requests scored together get exactly
what each would get alone (the oracle: ``predict`` of the request's own frame), a bad request
fails alone, and no batch passes ``max_rows`` or mixes column layouts."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowkit.serve.batching import Batcher


class RowWise:
    """A model whose prediction of a row depends on that row only; records each call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, frame: pd.DataFrame) -> Any:
        self.calls.append(len(frame))
        if (frame["a"] < 0).any():
            raise ValueError("a must be >= 0")
        return frame["a"].to_numpy() * 3 + frame["b"].to_numpy()


async def _together(batcher: Batcher, frames: list[pd.DataFrame]) -> list[Any]:
    async def one(frame: pd.DataFrame) -> Any:
        try:
            return await batcher.predict(frame)
        except Exception as exc:
            return exc

    return await asyncio.gather(*(one(f) for f in frames))


def _frame(rows: list[tuple[int, int]], *, flip: bool, floats: bool) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["a", "b"])
    if floats:
        frame = frame.astype("float64")
    return frame[["b", "a"]] if flip else frame


requests = st.lists(
    st.tuples(
        st.lists(st.tuples(st.integers(-2, 50), st.integers(0, 9)), min_size=1, max_size=5),
        st.booleans(),
        st.booleans(),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(requests, st.integers(1, 8), st.sampled_from([0.0, 1.0]))
def test_each_request_gets_what_it_would_alone(
    reqs: list[tuple[list[tuple[int, int]], bool, bool]], max_rows: int, inline: float
) -> None:
    model = RowWise()
    batcher = Batcher(model, max_rows=max_rows, inline_seconds=inline)
    frames = [_frame(rows, flip=flip, floats=floats) for rows, flip, floats in reqs]
    got = asyncio.run(_together(batcher, frames))
    oracle = RowWise()
    for frame, answer in zip(frames, got, strict=True):
        if (frame["a"] < 0).any():
            with pytest.raises(ValueError, match="a must be >= 0"):
                oracle(frame)
            assert isinstance(answer, ValueError) and str(answer) == "a must be >= 0"
            continue
        expected = oracle(frame)
        assert not isinstance(answer, Exception), answer
        np.testing.assert_array_equal(answer, expected)
        assert answer.dtype == expected.dtype
    # a batch never passes max_rows, except a single request larger than it
    assert all(n <= max(max_rows, max(len(f) for f in frames)) for n in model.calls)


def test_concurrent_requests_share_one_predict() -> None:
    model = RowWise()
    batcher = Batcher(model, max_rows=64, inline_seconds=1.0)
    frames = [_frame([(i, 1)], flip=False, floats=False) for i in range(10)]
    got = asyncio.run(_together(batcher, frames))
    assert [list(g) for g in got] == [[3 * i + 1] for i in range(10)]
    # all ten arrived in one turn of the event loop: one predict
    assert model.calls == [10] and batcher.batched_requests == 10


def test_layouts_and_types_never_share_a_batch() -> None:
    model = RowWise()
    batcher = Batcher(model, max_rows=64, inline_seconds=1.0)
    frames = [
        _frame([(1, 1)], flip=False, floats=False),
        _frame([(2, 2)], flip=False, floats=False),
        _frame([(3, 3)], flip=True, floats=False),
        _frame([(4, 4)], flip=False, floats=True),
        _frame([(5, 5)], flip=False, floats=True),
    ]
    got = asyncio.run(_together(batcher, frames))
    assert [list(g) for g in got] == [[4], [8], [12], [16.0], [20.0]]
    assert model.calls == [2, 1, 2]


def test_a_model_that_answers_the_wrong_number_of_rows_is_asked_again_per_request() -> None:
    def first_row_only(frame: pd.DataFrame) -> Any:
        return frame["a"].to_numpy()[:1]

    batcher = Batcher(first_row_only, max_rows=64, inline_seconds=1.0)
    frames = [_frame([(i, 0)], flip=False, floats=False) for i in range(4)]
    assert [list(g) for g in asyncio.run(_together(batcher, frames))] == [[0], [1], [2], [3]]


def test_dataframe_predictions_are_split_by_position() -> None:
    def as_frame(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"y": frame["a"].to_numpy() * 2}, index=frame.index + 100)

    batcher = Batcher(as_frame, max_rows=64, inline_seconds=1.0)
    frames = [_frame([(i, 0), (i + 1, 0)], flip=False, floats=False) for i in range(3)]
    got = asyncio.run(_together(batcher, frames))
    assert [g["y"].tolist() for g in got] == [[0, 2], [2, 4], [4, 6]]


def test_max_rows_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_rows"):
        Batcher(RowWise(), max_rows=0, inline_seconds=0.0)


def test_requests_arriving_while_a_batch_scores_form_the_next_one() -> None:
    entered, release = threading.Event(), threading.Event()
    model = RowWise()

    def slow(frame: pd.DataFrame) -> Any:
        entered.set()
        release.wait(30)
        return model(frame)

    batcher = Batcher(slow, max_rows=64, inline_seconds=0.0)  # every batch on a thread

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(batcher.predict(_frame([(0, 0)], flip=False, floats=False)))
        while not entered.is_set():
            await asyncio.sleep(0.01)
        rest = [
            asyncio.ensure_future(batcher.predict(_frame([(i, 0)], flip=False, floats=False)))
            for i in range(1, 6)
        ]
        await asyncio.sleep(0)  # they are all waiting now
        release.set()
        return await asyncio.gather(first, *rest)

    got = asyncio.run(scenario())
    assert [list(g) for g in got] == [[3 * i] for i in range(6)]
    assert model.calls == [1, 5]

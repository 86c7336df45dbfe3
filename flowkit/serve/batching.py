"""Adaptive batching: the requests waiting for one version are scored by one ``predict``.

A scikit-learn ``predict`` of one row costs nearly what one of thirty rows does (input
checks, the Python calls around the maths), so under concurrency most of a server's time
goes to overhead repeated per request. A :class:`Batcher` never waits to fill a batch: a
request that finds the model idle is scored at once (at one client nothing changes), and the
requests that arrive while a batch is being scored, or in the same turn of the event loop,
form the next batch. Each request still gets exactly its own rows' predictions.

Rules that keep a batch's answers equal to unbatched ones:

* only requests whose frames have the same columns, in the same order and with the same
  types, share a batch (another frame starts the next batch);
* at most ``max_rows`` rows per batch (a large request is scored alone);
* a batch whose ``predict`` fails, or returns other than one prediction per row, is scored
  again request by request, so a bad request fails alone with its own error.

A batch is scored on the event loop while the version's last batch took under
``inline_seconds`` of CPU (a thread hop would cost more than the work), else on a worker
thread, so a slow model never stalls ``/health`` or the reading of other requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio.to_thread

if TYPE_CHECKING:
    import pandas as pd

# (frame) -> predictions: scoring.predict bound to one loaded version
Predict = Callable[["pd.DataFrame"], Any]
# what one request gets: ("ok", predictions) or ("error", the exception)
_Outcome = tuple[str, Any]


class Batcher:
    """Batches the requests to one loaded version (see the module docstring)."""

    def __init__(self, predict: Predict, *, max_rows: int, inline_seconds: float) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        self._predict = predict
        self.max_rows = max_rows
        self._inline_seconds = inline_seconds
        self._took = inline_seconds  # unknown until measured: the first batch goes to a thread
        self._waiting: list[tuple[pd.DataFrame, asyncio.Future[Any]]] = []
        self._busy = False
        self._thread_batch: asyncio.Future[None] | None = None  # kept: tasks are weakly held
        self.batches = 0  # batches scored (with more than one request: batched)
        self.batched_requests = 0

    async def predict(self, frame: pd.DataFrame) -> Any:
        """The predictions for ``frame``'s rows (raises what scoring them alone would)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((frame, done))
        if not self._busy:
            self._busy = True
            # after the handlers already runnable in this turn: their requests join the batch
            loop.call_soon(self._next)
        return await done

    def _next(self) -> None:
        if not self._waiting:
            self._busy = False
            return
        batch = self._take()
        if self._took < self._inline_seconds:
            self._settle(batch, self._timed(batch))
            asyncio.get_running_loop().call_soon(self._next)
        else:
            self._thread_batch = asyncio.ensure_future(self._on_thread(batch))

    async def _on_thread(self, batch: list[tuple[pd.DataFrame, asyncio.Future[Any]]]) -> None:
        try:
            outcomes = await anyio.to_thread.run_sync(self._timed, batch)
        except BaseException as exc:  # cancelled (the server stops): these requests fail
            self._settle(batch, [("error", exc)] * len(batch))
            self._busy = False
            raise
        self._settle(batch, outcomes)
        self._next()

    def _take(self) -> list[tuple[pd.DataFrame, asyncio.Future[Any]]]:
        """The first waiting request and those after it that can share its batch."""
        first = self._waiting[0][0]
        signature = _signature(first)
        rows = len(first)
        taken = 1
        for frame, _ in self._waiting[1:]:
            if rows + len(frame) > self.max_rows or _signature(frame) != signature:
                break
            rows += len(frame)
            taken += 1
        batch, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return batch

    def _timed(self, batch: list[tuple[pd.DataFrame, asyncio.Future[Any]]]) -> list[_Outcome]:
        # CPU seconds of this thread: waiting for the interpreter lock on a busy pool is not
        # the model's cost, and counting it would keep every batch off the loop
        t0 = time.thread_time()
        outcomes = self._score([frame for frame, _ in batch])
        self._took = time.thread_time() - t0
        return outcomes

    def _score(self, frames: list[pd.DataFrame]) -> list[_Outcome]:
        if len(frames) > 1:
            self.batches += 1
            self.batched_requests += len(frames)
            split = _batched(self._predict, frames)
            if split is not None:
                return [("ok", p) for p in split]
        elif frames:
            self.batches += 1
        outcomes: list[_Outcome] = []
        for frame in frames:  # alone, or the batch failed: each request gets its own outcome
            try:
                outcomes.append(("ok", self._predict(frame)))
            except Exception as exc:
                outcomes.append(("error", exc))
        return outcomes

    @staticmethod
    def _settle(
        batch: list[tuple[pd.DataFrame, asyncio.Future[Any]]], outcomes: list[_Outcome]
    ) -> None:
        for (_, done), (kind, value) in zip(batch, outcomes, strict=True):
            if done.done():  # the client went away
                continue
            if kind == "ok":
                done.set_result(value)
            else:
                done.set_exception(value)


def _signature(frame: pd.DataFrame) -> tuple[Any, ...]:
    return (tuple(frame.columns), tuple(str(t) for t in frame.dtypes))


def _batched(predict: Predict, frames: list[pd.DataFrame]) -> list[Any] | None:
    """Each frame's predictions from one ``predict`` of all of them; None when that fails or
    does not return one prediction per row (then they are scored one by one)."""
    import pandas as pd

    try:
        whole = predict(pd.concat(frames, ignore_index=True))
    except Exception:
        return None
    sizes = [len(frame) for frame in frames]
    if not hasattr(whole, "__len__") or len(whole) != sum(sizes):
        return None
    parts: list[Any] = []
    start = 0
    for size in sizes:
        if hasattr(whole, "iloc"):  # a DataFrame or Series: positions, whatever the index
            parts.append(whole.iloc[start : start + size].reset_index(drop=True))
        else:
            parts.append(whole[start : start + size])
        start += size
    return parts


__all__ = ["Batcher"]

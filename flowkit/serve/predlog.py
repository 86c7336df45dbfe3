"""The prediction log's writer: requests and predictions to Parquet on the store, in batches.

The layout and the columns are :mod:`flowkit.ml.predictions`' (which reads them back).

Policy: :meth:`PredictionLog.record` is on the request path, so it only samples and appends to
a bounded in-memory buffer: it never blocks on I/O and never raises. When ``max_pending`` rows
are already waiting, the new rows are dropped and counted (:attr:`~PredictionLog.dropped`):
serving beats logging. One daemon thread turns the buffer into Arrow tables and writes a part
file per UTC date when ``batch_rows`` rows are waiting or the oldest has waited
``flush_seconds``. A record that cannot become a table (an input no Arrow type holds) or a
batch the store refuses is logged and counted as dropped too; the writer keeps going.
:meth:`~PredictionLog.close` writes what is left. A part is written under a dot-name and moved
into place, so readers never see half a file. A pickled log unpickles as a new, empty log with
the same store and settings (what a Ray Serve replica needs).
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from flowkit.ml import predictions
from flowkit.ml.errors import ParameterError
from flowkit.store import Store

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Entry:
    """One sampled request, as ``record`` got it (converted by the writer thread)."""

    request_id: str
    time: float
    version: int
    alias: str
    inputs: pd.DataFrame | pa.Table
    predictions: list[Any]
    latency_s: float


class PredictionLog:
    """Log a model's requests and predictions to ``store`` (see the module docs).

    ``sample`` is the share of requests logged (0 to 1); ``batch_rows`` and ``flush_seconds``
    decide when a part file is written; ``max_pending`` bounds the rows held in memory.

    Example::

        plog = PredictionLog("s3://bucket/flowkit", "digits", sample=0.1)
        plog.record("req-1", 3, "production", frame, [0, 1], latency_s=0.004)
        plog.close()                                # writes what is left
        ml.prediction_log("digits", store="s3://bucket/flowkit")
    """

    def __init__(
        self,
        store: Store | str | os.PathLike[str],
        model: str,
        *,
        sample: float = 1.0,
        batch_rows: int = 1000,
        flush_seconds: float = 5.0,
        max_pending: int = 100_000,
    ) -> None:
        if not 0.0 <= sample <= 1.0:
            raise ParameterError(f"PredictionLog: sample must be between 0 and 1, got {sample!r}")
        if batch_rows < 1 or max_pending < 1 or not flush_seconds > 0:
            raise ParameterError(
                "PredictionLog: batch_rows and max_pending must be at least 1 and flush_seconds "
                f"above 0 (got {batch_rows!r}, {max_pending!r}, {flush_seconds!r})"
            )
        predictions.model_folder(model)  # checks the name
        self.model = model
        self.sample = float(sample)
        self.batch_rows = int(batch_rows)
        self.flush_seconds = float(flush_seconds)
        self.max_pending = int(max_pending)
        self.store = Store.open(store)
        self.store.check()  # the marker first: the folder stays a valid flowkit store
        self._fs, self._root = predictions.filesystem(self.store)
        #: Rows not logged: buffer full, not convertible, or not written (store failure).
        self.dropped = 0
        #: Rows written to the store so far.
        self.written = 0
        self._pending: collections.deque[_Entry] = collections.deque()
        self._pending_rows = 0
        self._oldest = 0.0  # monotonic time the oldest pending entry arrived
        self._busy = False  # the writer holds entries it took from the buffer
        self._closed = False
        self._cond = threading.Condition()
        self._random = random.Random()
        self._thread = threading.Thread(
            target=self._run, name=f"flowkit-predlog-{model}", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"PredictionLog({self.store.url!r}, {self.model!r}, sample={self.sample})"

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy (e.g. sent to a Ray Serve replica) is a new, empty log of the same store (its
        # credentials and options too), model and settings, with its own writer thread.
        settings = {
            "sample": self.sample,
            "batch_rows": self.batch_rows,
            "flush_seconds": self.flush_seconds,
            "max_pending": self.max_pending,
        }
        return (_reopen, (self.store, self.model, settings))

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the request side -----------------------------------------------------------------

    def record(
        self,
        request_id: str,
        version: int,
        alias: str,
        inputs: pd.DataFrame | pa.Table,
        predictions: list[Any],
        latency_s: float,
    ) -> None:
        """Queue one request's rows (one per prediction); never blocks, never raises.

        ``inputs`` is the request's frame (or an Arrow table), ``predictions`` one entry per
        row. They are kept as given until written, so the caller must not modify them."""
        try:
            if self.sample < 1.0 and self._random.random() >= self.sample:
                return
            rows = len(inputs)
            entry = _Entry(
                str(request_id), time.time(), int(version), str(alias), inputs,
                list(predictions), float(latency_s),
            )  # fmt: skip
            with self._cond:
                if self._closed or self._pending_rows + rows > self.max_pending:
                    self.dropped += rows
                    return
                if not self._pending:
                    self._oldest = time.monotonic()
                self._pending.append(entry)
                self._pending_rows += rows
                if self._pending_rows >= self.batch_rows:
                    self._cond.notify_all()
        except Exception:  # the request must not fail because of its log
            log.exception("prediction log %s: could not queue request %r", self.model, request_id)
            with self._cond:
                self.dropped += 1

    # -- the writer -------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Write what is pending now and wait for it; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._oldest = -self.flush_seconds  # due now
            self._cond.notify_all()
            while self._pending or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float | None = 60.0) -> None:
        """Write what is left and stop the writer thread (later records are dropped)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("prediction log %s: still writing after %s s", self.model, timeout)

    def _due(self) -> bool:
        return bool(self._pending) and (
            self._closed
            or self._pending_rows >= self.batch_rows
            or time.monotonic() - self._oldest >= self.flush_seconds
        )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due():
                    if self._closed and not self._pending:
                        return
                    wait = self.flush_seconds
                    if self._pending:
                        wait = max(0.0, self._oldest + self.flush_seconds - time.monotonic())
                    self._cond.wait(wait)
                batch = list(self._pending)
                self._pending.clear()
                self._pending_rows = 0
                self._busy = True
            try:
                self._write(batch)
            except Exception:  # never let the writer die: later batches would pile up
                log.exception("prediction log %s: a batch could not be written", self.model)
                with self._cond:
                    self.dropped += sum(len(e.inputs) for e in batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _write(self, batch: list[_Entry]) -> None:
        """Write ``batch`` as one part file per UTC date (each record's own date)."""
        by_day: dict[dt.date, list[pa.Table]] = {}
        for entry in batch:
            table = self._table(entry)
            if table is not None:
                day = dt.datetime.fromtimestamp(entry.time, dt.timezone.utc).date()
                by_day.setdefault(day, []).append(table)
        for day, tables in by_day.items():
            rows = sum(t.num_rows for t in tables)
            try:
                table = predictions.combine(tables)
                self._put(day, table)
            except Exception as exc:  # a store down, a disk full: the rows are lost, counted
                log.warning(
                    "prediction log %s: dropped %d row(s): cannot write them to %s (%s: %s)",
                    self.model, rows, self.store.url, type(exc).__name__, exc,
                )  # fmt: skip
                with self._cond:
                    self.dropped += rows
                continue
            with self._cond:
                self.written += rows

    def _table(self, entry: _Entry) -> pa.Table | None:
        """The rows of one request, or None (counted as dropped) when they do not convert."""
        rows = len(entry.inputs)
        try:
            if len(entry.predictions) != rows:
                raise ValueError(f"{len(entry.predictions)} predictions for {rows} input rows")
            inputs = (
                entry.inputs
                if isinstance(entry.inputs, pa.Table)
                else pa.Table.from_pandas(entry.inputs, preserve_index=False)
            )
            stamp = dt.datetime.fromtimestamp(entry.time, dt.timezone.utc)
            own = [
                pa.array([entry.request_id] * rows, pa.string()),
                pa.array([stamp] * rows, predictions.LOG_SCHEMA.field("time").type),
                pa.array([self.model] * rows, pa.string()),
                pa.array([entry.version] * rows, pa.int64()),
                pa.array([entry.alias] * rows, pa.string()),
                pa.array([entry.latency_s] * rows, pa.float64()),
            ]
            names = [
                predictions.INPUT_PREFIX + n if n in predictions.LOG_COLUMNS else n
                for n in inputs.column_names
            ]
            columns = [*own, *inputs.columns, pa.array(_plain(entry.predictions))]
            return pa.Table.from_arrays(
                columns, names=[*predictions.LOG_SCHEMA.names, *names, predictions.PREDICTION]
            )
        except Exception as exc:
            log.warning(
                "prediction log %s: dropped request %r (%d row(s)): %s: %s",
                self.model, entry.request_id, rows, type(exc).__name__, exc,
            )  # fmt: skip
            with self._cond:
                self.dropped += rows
            return None

    def _put(self, day: dt.date, table: pa.Table) -> None:
        folder = predictions.part_folder(self._root, self.model, day)
        if self.store.local and predictions.escapes(self._root, folder):
            raise OSError(f"{folder} goes through a symbolic link: not writing out of the store")
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
        self._fs.makedirs(folder, exist_ok=True)
        tmp = f"{folder}/.{name}.tmp"
        with self._fs.open(tmp, "wb") as f:
            pq.write_table(table, f)
        self._fs.mv(tmp, f"{folder}/{name}")


def _reopen(store: Store, model: str, settings: dict[str, Any]) -> PredictionLog:
    return PredictionLog(store, model, **settings)


def _plain(values: list[Any]) -> list[Any]:
    """numpy scalars and arrays (what ``model.predict`` returns) as Python values for Arrow."""
    return [v.tolist() if hasattr(v, "tolist") else v for v in values]


__all__ = ["PredictionLog"]

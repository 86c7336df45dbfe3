"""Task records written to the store as a run goes: in batches, so a killed run leaves a
readable record of what finished, without a store write per task.

Policy: a background thread writes the pending records once the oldest has waited
``FLUSH_EVERY_SECONDS`` (the ``local`` backend runs calls inside the engine's own thread, so
the engine cannot be relied on to come back in time during a long call), and the engine
writes a batch itself when ``FLUSH_EVERY_RECORDS`` are pending; :meth:`RunLog.close` writes
the rest. A failed write is logged and dropped: losing part of the record never fails the
run itself.
"""

from __future__ import annotations

import logging
import threading

from flowkit.records import TaskRecord
from flowkit.store import Store

log = logging.getLogger(__name__)

FLUSH_EVERY_RECORDS = 1000
FLUSH_EVERY_SECONDS = 1.0


class RunLog:
    """The unwritten task records of one run, and the thread that writes them when due."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self._pending: list[TaskRecord] = []
        self._batch_no = 0
        self._lock = threading.Lock()  # one writer at a time, batches numbered in order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, record: TaskRecord) -> None:
        """A task call finished (or was skipped): write its record with the next batch."""
        with self._lock:
            self._pending.append(record)
            full = len(self._pending) >= FLUSH_EVERY_RECORDS
        if full:
            self.flush()
        elif self._thread is None:
            self._thread = threading.Thread(
                target=self._write_when_due, name=f"flowkit-runlog-{self.run_id}", daemon=True
            )
            self._thread.start()

    def flush(self) -> None:
        """Write every pending record now, as one batch."""
        with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                self.store.write_task_records(
                    self.run_id, self._batch_no, [r.to_dict() for r in batch]
                )
                self._batch_no += 1
            except Exception:  # losing a record batch must not fail the run
                log.exception("could not write task records of run %s", self.run_id)

    def close(self) -> None:
        """Stop the background writer and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def _write_when_due(self) -> None:
        while not self._stop.wait(FLUSH_EVERY_SECONDS):
            self.flush()

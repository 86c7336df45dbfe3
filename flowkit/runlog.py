"""Task records written to the store as a run goes: in batches, so a killed run leaves a
readable record of what finished, without a store write per task.

Policy: a batch is written when ``FLUSH_EVERY_RECORDS`` records wait, or when the oldest has
waited ``FLUSH_EVERY_SECONDS``; everything left is written when the run ends. A failed write
is logged and dropped: losing part of the record never fails the run itself.
"""

from __future__ import annotations

import logging
import time

from flowkit.records import TaskRecord
from flowkit.store import Store

log = logging.getLogger(__name__)

FLUSH_EVERY_RECORDS = 1000
FLUSH_EVERY_SECONDS = 1.0


class RunLog:
    """The unwritten task records of one run and when they are due."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.pending: list[TaskRecord] = []
        self.batch_no = 0
        self.last_flush = time.monotonic()

    def add(self, record: TaskRecord) -> None:
        """A task call finished (or was skipped): write its record with the next batch."""
        self.pending.append(record)

    def due(self) -> float | None:
        """The monotonic time the next batch is due, or None with nothing to write."""
        return self.last_flush + FLUSH_EVERY_SECONDS if self.pending else None

    def flush(self, force: bool = False) -> None:
        """Write the pending records if a batch is due (or ``force``)."""
        if not self.pending:
            return
        if (
            not force
            and time.monotonic() - self.last_flush < FLUSH_EVERY_SECONDS
            and len(self.pending) < FLUSH_EVERY_RECORDS
        ):
            return
        batch, self.pending = self.pending, []
        self.last_flush = time.monotonic()
        try:
            self.store.write_task_records(self.run_id, self.batch_no, [r.to_dict() for r in batch])
            self.batch_no += 1
        except Exception:  # losing a record batch must not fail the run
            log.exception("could not write task records of run %s", self.run_id)

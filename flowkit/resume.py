"""Resuming a run: the calls of an earlier run that a new run may reuse, by key.

``fk.run(wf, resume=RUN)`` reads RUN's task records once: every call that succeeded, has a
key and kept all its outputs is reusable. A call of the new run whose key equals one of them
is served from those outputs (loaded and checked like a cache hit, so a damaged or missing
object is a miss, never a wrong value); every other call runs. Keys cover the task's code,
its interface and its inputs, so a changed task, or one downstream of a change, runs again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowkit.records import short_key
from flowkit.store import Artifact, Store
from flowkit.taskspec import TaskSpec

log = logging.getLogger(__name__)

Outputs = Mapping[str, Mapping[str, Any]]  # output name -> artifact dict


@dataclass(frozen=True)
class Reuse:
    """The reusable calls of run ``run_id``: task name -> call key (its first bits,
    :func:`flowkit.records.short_key`, as records of calls only kept hold it) -> outputs by
    name."""

    run_id: str
    workflow: str
    calls: Mapping[str, Mapping[str, Outputs]] = field(default_factory=dict)

    @classmethod
    def load(cls, store: Store, run_id: str) -> Reuse:
        """The reusable calls of a run named by id or unique prefix (StoreError if none)."""
        header, records = store.read_run(run_id)
        calls: dict[str, dict[str, Outputs]] = {}
        for rec in records:
            outputs = rec.get("outputs")
            key = rec.get("key")
            if (
                rec.get("status") != "succeeded"
                or not isinstance(key, str)
                or not isinstance(outputs, dict)
                or not outputs
                or any(not isinstance(a, dict) for a in outputs.values())
            ):
                continue
            calls.setdefault(str(rec.get("name")), {})[short_key(key)] = outputs
        return cls(str(header.get("id", run_id)), str(header.get("workflow", "")), calls)

    def of(self, task: TaskSpec) -> dict[str, tuple[Artifact, ...]]:
        """This task's reusable calls: key -> artifacts in the task's output order (a call
        whose recorded outputs do not match the task's outputs, or are malformed, is left out)."""
        found: dict[str, tuple[Artifact, ...]] = {}
        names = [name for name, _ in task.outputs]
        for key, outputs in self.calls.get(task.name, {}).items():
            if sorted(outputs) != sorted(names):
                continue
            try:
                found[key] = tuple(Artifact.from_dict(outputs[name]) for name in names)
            except ValueError as exc:
                log.warning(
                    "run %s: call %s names a malformed artifact (%s)", self.run_id, key, exc
                )
        return found

    def __len__(self) -> int:
        return sum(len(c) for c in self.calls.values())


__all__ = ["Reuse"]

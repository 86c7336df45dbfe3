"""Lifecycle hooks: the one way extensions (tracking, progress bars) observe a run.

Pass instances to ``fk.run(..., callbacks=[...])``. Subclass :class:`Callback` and override
what you need; every hook is called in the driver, in order, from the engine's thread. A
hook that raises is logged and ignored: observing a run never breaks it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from flowkit.records import Run, TaskRecord

log = logging.getLogger(__name__)


class Output:
    """A task's output as seen by a hook: ``type`` is the declared return annotation,
    ``value`` is fetched into the driver on first access (cheap on in-process backends,
    a transfer on Ray, so check ``type`` first when only some outputs matter)."""

    __slots__ = ("_fetch", "_fetched", "_value", "type")

    def __init__(self, fetch: Callable[[], Any], type_: Any) -> None:
        self._fetch = fetch
        self._fetched = False
        self._value: Any = None
        self.type = type_

    @property
    def value(self) -> Any:
        if not self._fetched:
            self._value = self._fetch()
            self._fetched = True
        return self._value


class Callback:
    """No-op base class of run lifecycle hooks."""

    def on_run_start(self, run: Run) -> None:
        """The run starts; ``run.inputs`` holds the workflow inputs."""

    def on_task_start(self, record: TaskRecord) -> None:
        """A task call was submitted (first attempt)."""

    def on_task_end(self, record: TaskRecord, output: Output) -> None:
        """A task call succeeded; ``record.cached`` says whether it was a cache hit."""

    def on_task_error(self, record: TaskRecord, error: BaseException) -> None:
        """A task call failed for good (its retries are spent)."""

    def on_run_end(self, run: Run) -> None:
        """The run ended; ``run.status`` is ``"succeeded"`` or ``"failed"``."""


class CallbackGroup:
    """Fans one event out to several callbacks, isolating their failures."""

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        self.callbacks = list(callbacks)

    def emit(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            try:
                getattr(cb, hook)(*args)
            except Exception:  # a broken observer must not break the run
                log.exception("callback %r failed in %s", cb, hook)

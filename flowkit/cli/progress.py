"""The live progress line of ``flowkit run``: a :class:`~flowkit.callbacks.Callback`.

Policy:

* Only on a terminal: :func:`progress_for` returns None unless the stream ``isatty()``, so
  logs, pipes and CI output never get carriage returns.
* Quiet for short runs: nothing is drawn until the run has lasted ``delay`` seconds (1 s).
  After that the line is redrawn in place (``\\r`` + erase to end of line) on every task
  event and by a ticker thread every ``interval`` seconds, so the elapsed time moves even
  while one long task runs. It is erased when the run ends, leaving the terminal clean for
  the summary.
* The total is what is known so far: the calls the engine has created (it adds a record
  to ``run.tasks`` per call, a whole map's items at once when the map expands) plus the
  graph nodes that have none yet (a map node counts as one until it expands), so it can
  grow during the run. Plain ASCII, so any terminal encoding can show it.
* Hooks are called from the engine's thread and the ticker from its own, so state and
  drawing are guarded by one lock. A failure to draw is swallowed by the callback group.
* Lines printed while it is drawn (a task's live output, :mod:`flowkit.capture`) go through
  :meth:`ProgressLine.print_above`: the line is erased, the text written, the line redrawn.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from flowkit.callbacks import Callback, Output
from flowkit.graph import Graph
from flowkit.records import Run, TaskRecord
from flowkit.reprs import format_duration

_ERASE = "\x1b[K"


class TextStream(Protocol):
    def write(self, s: str, /) -> Any: ...

    def flush(self) -> Any: ...

    def isatty(self) -> bool: ...


class ProgressLine(Callback):
    """Draws ``[12.3s] 5/12 done, 2 running, 3 cached`` (``, 1 failed``) on ``stream``."""

    def __init__(
        self,
        stream: TextStream,
        graph: Graph | None = None,
        *,
        delay: float = 1.0,
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        ticker: bool = True,
        width: int | None = None,
    ) -> None:
        self.stream = stream
        self.graph = graph
        self.delay = delay
        self.interval = interval
        self.clock = clock
        self.ticker = ticker
        self.width = width
        self._lock = threading.Lock()
        self._started_at: float | None = None
        self._run: Run | None = None
        self._started = 0
        self._done = 0
        self._cached = 0
        self._failed = 0
        self._drawn = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- hooks ----------------------------------------------------------------------------

    def on_run_start(self, run: Run) -> None:
        with self._lock:
            self._started_at = self.clock()
            self._run = run
        if self.ticker:
            self._thread = threading.Thread(target=self._tick, name="flowkit-progress", daemon=True)
            self._thread.start()

    def on_task_start(self, record: TaskRecord) -> None:
        with self._lock:
            self._started += 1
            self._draw()

    def on_task_end(self, record: TaskRecord, output: Output) -> None:
        with self._lock:
            self._done += 1
            self._cached += record.cached
            self._draw()

    def on_task_error(self, record: TaskRecord, error: BaseException) -> None:
        with self._lock:
            self._failed += 1
            self._draw()

    def on_run_end(self, run: Run) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self._drawn:
                self.stream.write("\r" + _ERASE)
                self.stream.flush()
                self._drawn = False

    # -- drawing --------------------------------------------------------------------------

    def print_above(self, text: str) -> None:
        """Write complete lines where the progress line is, then redraw it below them
        (``flowkit run`` makes this the live sink of :mod:`flowkit.capture`)."""
        with self._lock:
            if self._drawn:
                self.stream.write("\r" + _ERASE)
                self._drawn = False
            self.stream.write(text)
            self._draw()
            self.stream.flush()

    def text(self) -> str:
        """The current line (without control characters)."""
        elapsed = 0.0 if self._started_at is None else self.clock() - self._started_at
        running = self._started - self._done - self._failed
        parts = [
            f"[{format_duration(elapsed)}] {self._done}/{self.total()} done",
            f"{running} running",
            f"{self._cached} cached",
        ]
        if self._failed:
            parts.append(f"{self._failed} failed")
        return ", ".join(parts)

    def total(self) -> int:
        """Calls created so far plus graph nodes that have no call yet."""
        records = list(self._run.tasks) if self._run is not None else []
        known = max(len(records), self._started)
        if self.graph is None:
            return known
        seen = {r.node.split("[", 1)[0] for r in records}
        return known + sum(1 for n in self.graph.nodes if n not in seen)

    def render(self) -> None:
        """Redraw now (if the run has lasted ``delay``); the ticker and the hooks call this."""
        with self._lock:
            self._draw()

    def _draw(self) -> None:
        if self._started_at is None or self._stop.is_set():
            return
        if self.clock() - self._started_at < self.delay:
            return
        width = self.width or shutil.get_terminal_size((80, 24)).columns
        line = self.text()[: max(10, width - 1)]
        self.stream.write("\r" + line + _ERASE)
        self.stream.flush()
        self._drawn = True

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self.render()


def progress_for(stream: TextStream, graph: Graph | None = None) -> ProgressLine | None:
    """A progress line on ``stream`` if it is a terminal, else None."""
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or odd stream
        tty = False
    return ProgressLine(stream, graph) if tty else None

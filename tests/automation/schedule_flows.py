"""Workflows the schedule tests fire, and starters that run them in this process.

``gated`` waits until the test opens the gate of its fire time, so a test decides when each
fire's run ends (what ``--overlap`` looks at). :class:`InProcess` starts a launch as
``flowkit run`` would -- ``fk.run`` with the launch's run id, tags and inputs -- on a
thread; :class:`Recorder` only records launches (the tick logic, without runs).
"""

from __future__ import annotations

import threading

import flowkit as fk
from flowkit.automation.launch import Launch
from flowkit.events import FireTime
from flowkit.store import Store

_GATES: dict[str, threading.Event] = {}
_LOCK = threading.Lock()
_ALL_OPEN = threading.Event()  # set: every gate, even one asked for later, is open


def gate(key: str) -> threading.Event:
    with _LOCK:
        event = _GATES.setdefault(key, threading.Event())
        if _ALL_OPEN.is_set():
            event.set()
        return event


def open_all() -> None:
    with _LOCK:
        _ALL_OPEN.set()
        for event in _GATES.values():
            event.set()


def close_all() -> None:
    """Forget every gate (a new test starts with all of them shut)."""
    with _LOCK:
        _ALL_OPEN.clear()
        _GATES.clear()


@fk.task
def wait_for(when: FireTime) -> str:
    if not gate(when.isoformat()).wait(60):
        raise TimeoutError(f"the gate of {when.isoformat()} was never opened")
    return when.isoformat()


@fk.workflow
def gated(when: FireTime) -> str:
    return wait_for(when)


class Recorder:
    """A starter that records each launch (thread-safe)."""

    def __init__(self) -> None:
        self.launches: list[Launch] = []
        self._lock = threading.Lock()

    def __call__(self, launch: Launch) -> None:
        with self._lock:
            self.launches.append(launch)

    def fire_times(self) -> list[str]:
        return [launch.tags["fire_time"] for launch in self.launches]


class InProcess:
    """A starter that runs ``gated`` for each launch on a thread, as ``flowkit run`` would."""

    def __init__(self, store: Store) -> None:
        close_all()
        self.store = store
        self.threads: list[threading.Thread] = []
        self.launches: list[Launch] = []

    def __call__(self, launch: Launch) -> None:
        self.launches.append(launch)
        thread = threading.Thread(
            target=fk.run,
            args=(gated,),
            kwargs={
                "store": self.store,
                "run_id": launch.run_id,
                "tags": dict(launch.tags),
                "cache": False,
                "when": FireTime.parse(launch.params["when"]),
            },
            daemon=True,
        )
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        open_all()
        for thread in self.threads:
            thread.join(60)

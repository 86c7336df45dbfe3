"""What the processes of the race tests run (a small module: a spawned process imports it,
and nothing heavier, before it joins the race)."""

from __future__ import annotations

import os
import time
from typing import Any

from flowkit.automation.lease import Lease
from flowkit.store import Store


def increment(store: Store, rel: str, times: int) -> int:
    """Add 1 to the counter at ``rel`` ``times`` times by read + compare-and-swap; the
    attempts it took."""
    attempts = 0
    for _ in range(times):
        while True:
            attempts += 1
            doc, version = store.read_doc_versioned(rel)
            if store.replace_doc(rel, {"n": doc["n"] + 1}, version):
                break
    return attempts


def create_and_increment(store: Store, rounds: int, barrier: Any, out: Any, times: int) -> None:
    """Race the other processes to create ``race/<r>.json`` in each round, then add ``times``
    to the shared counter; report (pid, [won round r...])."""
    won = []
    for r in range(rounds):
        barrier.wait(timeout=120)
        won.append(store.create_doc(f"race/{r}.json", {"pid": os.getpid()}))
    increment(store, "race/counter.json", times)
    out.put((os.getpid(), won))


def lease_rounds(store: Store, rounds: int, barrier: Any, out: Any) -> None:
    """In each round: race for the lease, report whether it was won and under which
    generation, wait for everyone to have reported, and release it if held."""
    lease = Lease(store, "race", ttl=60.0)
    for r in range(rounds):
        barrier.wait(timeout=120)
        won = lease.acquire()
        out.put((r, lease.holder, won, lease.held, lease.generation))
        barrier.wait(timeout=120)
        lease.release()


def hold_until_killed(store: Store, ttl: float, out: Any) -> None:
    """Take the lease, say so, and never renew or release it (the test kills this)."""
    lease = Lease(store, "scheduler", ttl=ttl)
    while not lease.acquire():
        time.sleep(0.05)
    out.put((lease.holder, lease.generation))
    while True:
        time.sleep(60)

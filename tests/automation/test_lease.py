"""The scheduler lease: one holder at a time, taken over when it lapses, never two.

On a local folder, memory:// and a real S3 server (moto): contenders on an injected clock,
threads and processes racing for it round after round (a shared log of (holder, generation)),
every interleaving hypothesis finds of a contender's read and another's write, a holder
SIGKILLed while it holds it, and lease files planted or damaged by hand.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowkit.automation.lease import Lease
from flowkit.errors import StoreError
from flowkit.store import Store
from tests.automation.contenders import hold_until_killed, lease_rounds
from tests.conftest import S3Stores

REL = "leases/scheduler.json"


class Clock:
    """A clock the test moves by hand (seconds)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _pair(store: Store, clock: Clock, ttl: float = 10.0) -> tuple[Lease, Lease]:
    return (
        Lease(store, "scheduler", holder="a", ttl=ttl, clock=clock),
        Lease(store, "scheduler", holder="b", ttl=ttl, clock=clock),
    )


# -- the life of a lease, on every kind of store ---------------------------------------------


def test_one_holder_until_it_lapses_then_the_other_takes_over(any_store: Store) -> None:
    clock = Clock()
    a, b = _pair(any_store, clock)
    assert a.acquire() and a.held and a.generation == 1
    assert not b.acquire() and not b.held
    assert any_store.read_doc(REL) == {"holder": "a", "expires": clock.now + 10, "generation": 1}
    clock.now += 9
    assert a.renew() and a.generation == 1  # renewing keeps the tenure
    clock.now += 9
    assert not b.acquire()  # renewed: live for 10 s more
    clock.now += 2
    assert not a.held  # its term ran out (no renewal), though nobody took it yet
    assert b.acquire() and b.held and b.generation == 2
    assert not a.renew() and not a.held  # taken over: it learns at its next renewal
    assert not a.acquire()
    b.release()
    assert not b.held
    assert a.acquire() and a.generation == 3  # released: no need to wait out the term


def test_acquire_by_the_holder_renews_and_an_own_lapsed_lease_is_a_new_tenure(
    any_store: Store,
) -> None:
    clock = Clock()
    a, _ = _pair(any_store, clock)
    assert a.acquire() and a.acquire() and a.generation == 1
    a.release()
    assert not a.renew()
    assert a.acquire() and a.generation == 2
    clock.now += 60
    assert a.renew() and a.held and a.generation == 2  # nobody took it: the tenure goes on
    assert any_store.read_doc(REL)["expires"] == clock.now + 10


def test_release_of_a_lease_taken_over_changes_nothing(any_store: Store) -> None:
    clock = Clock()
    a, b = _pair(any_store, clock)
    assert a.acquire()
    clock.now += 11
    assert b.acquire()
    a.release()
    assert any_store.read_doc(REL)["holder"] == "b"
    assert b.renew()


def test_default_holders_are_unique() -> None:
    store = Store(f"memory://fk-{uuid.uuid4().hex[:12]}")
    holders = {Lease(store, "x").holder for _ in range(50)}
    assert len(holders) == 50
    assert all(h.startswith(f"{socket.gethostname()}:{os.getpid()}:") for h in holders)


@pytest.mark.parametrize("name", ["", "a/b", "../x", ".hidden", "x" * 200, "a b", 7])
def test_a_bad_lease_name_is_refused_by_name(local_store: Store, name: Any) -> None:
    with pytest.raises(StoreError, match="lease name"):
        Lease(local_store, name)


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), True, "30"])
def test_a_bad_ttl_is_refused(local_store: Store, ttl: Any) -> None:
    with pytest.raises(StoreError, match="ttl"):
        Lease(local_store, "scheduler", ttl=ttl)


def test_a_read_only_store_refuses_the_lease_by_name(local_store: Store) -> None:
    lease = Lease(Store(local_store.root, read_only=True), "scheduler")
    with pytest.raises(StoreError, match="read-only"):
        lease.acquire()


# -- races --------------------------------------------------------------------------------------


def _check_rounds(log: list[tuple[int, str, bool, bool, int]], rounds: int) -> None:
    """Each round: exactly one contender won, and its generation is greater than every
    earlier round's."""
    last = 0
    for r in range(rounds):
        entries = [e for e in log if e[0] == r]
        winners = [e for e in entries if e[2]]
        assert len(winners) == 1, entries
        assert [e for e in entries if e[3]] == winners  # the losers do not believe they hold it
        assert winners[0][4] > last
        last = winners[0][4]


def test_two_threads_racing_for_50_rounds_never_both_hold_it(any_store: Store) -> None:
    rounds = 50
    barrier = threading.Barrier(2)
    log: list[tuple[int, str, bool, bool, int]] = []
    lock = threading.Lock()

    def contender(_: int) -> None:
        lease = Lease(any_store, "race", ttl=60.0)
        for r in range(rounds):
            barrier.wait()
            won = lease.acquire()
            with lock:
                log.append((r, lease.holder, won, lease.held, lease.generation))
            barrier.wait()
            lease.release()

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(contender, range(2)))
    _check_rounds(log, rounds)


@pytest.fixture(params=["local", "s3"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A store several processes can share: a local folder, or a bucket on the S3 server."""
    if request.param == "local":
        store = Store(tmp_path / "store")
        store.check()
        return store
    s3: S3Stores = request.getfixturevalue("s3_stores")
    return s3.new()


def test_two_processes_racing_for_50_rounds_never_both_hold_it(shared_store: Store) -> None:
    rounds = 50
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=lease_rounds, args=(shared_store, rounds, barrier, out))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    log = [out.get(timeout=180) for _ in range(2 * rounds)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    _check_rounds(log, rounds)


def test_a_killed_holder_is_taken_over_once_its_term_runs_out(shared_store: Store) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    holder = ctx.Process(target=hold_until_killed, args=(shared_store, 1.5, out))
    holder.start()
    try:
        name, generation = out.get(timeout=180)
        doc = shared_store.read_doc(REL)
        assert doc["holder"] == name and doc["generation"] == generation
        # while its term runs, nobody takes it (a clock just before the end of the term)
        early = Lease(shared_store, "scheduler", ttl=1.5, clock=lambda: doc["expires"] - 0.01)
        assert not early.acquire()
    finally:
        os.kill(holder.pid or 0, signal.SIGKILL)
        holder.join(timeout=60)
    assert holder.exitcode == -signal.SIGKILL
    successor = Lease(shared_store, "scheduler", ttl=1.5)
    deadline = time.monotonic() + 120  # a bound for a hung test, not a claim on speed
    while not successor.acquire():
        assert time.monotonic() < deadline, "the lease of a killed holder was never taken over"
        time.sleep(0.1)
    assert successor.held and successor.generation == generation + 1
    assert shared_store.read_doc(REL)["holder"] == successor.holder


# -- every interleaving of one contender's read and another's write -----------------------------


class InterposingStore(Store):
    """A store that runs a queued action right after a lease is read, before the caller's
    conditional write: another contender slipping in between."""

    pending: list[Callable[[], object]]

    def read_doc_versioned(self, rel: str) -> tuple[Any, str]:
        try:
            return super().read_doc_versioned(rel)
        finally:
            if getattr(self, "pending", None):
                self.pending.pop(0)()


_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["acquire", "renew", "release", "tick", "slip"]),
        st.integers(0, 2),
        st.integers(0, 2),
    ),
    max_size=40,
)


class _World:
    """Three contenders on one store and one clock, and what they have claimed so far."""

    def __init__(self, store: InterposingStore) -> None:
        self.store = store
        self.clock = Clock()
        self.leases = [
            Lease(store, "s", holder=f"h{i}", ttl=10.0, clock=self.clock) for i in range(3)
        ]
        self.tenures: dict[int, str] = {}  # generation -> holder
        self.last = 0

    def do(self, op: str, i: int) -> None:
        lease = self.leases[i]
        if op == "acquire":
            won = lease.acquire()
        elif op == "renew":
            won = lease.renew()
        else:
            lease.release()
            won = False
        if won:
            holder = self.tenures.setdefault(lease.generation, lease.holder)
            assert holder == lease.holder  # one holder per generation
            assert lease.generation >= self.last  # tenures only go forward
            self.last = lease.generation
        self.check()

    def check(self) -> None:
        held = [lease for lease in self.leases if lease.held]
        assert len(held) <= 1, held
        if held:
            doc = self.store.read_doc("leases/s.json")
            assert (doc["holder"], doc["generation"]) == (held[0].holder, held[0].generation)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=_STEPS)
def test_no_interleaving_gives_two_holders(steps: list[tuple[str, int, int]]) -> None:
    world = _World(InterposingStore(f"memory://fk-lease-{uuid.uuid4().hex[:12]}"))
    world.store.pending = []
    for op, i, j in steps:
        if op == "tick":
            world.clock.now += (i + 1) * 4.0  # 4, 8 or 12 s: within, near and past a term
        elif op == "slip":  # j acts between i's read and i's write
            world.store.pending.append(lambda j=j: world.do("acquire", j))
            world.do("acquire", i)
            world.store.pending.clear()
        else:
            world.do(op, i)
    world.check()


# -- planted and damaged lease files ------------------------------------------------------------


def _plant(store: Store, data: bytes) -> None:
    store._io.write(REL, data)


PLANTED = {
    "garbage": b"\x00\xff not a document",
    "truncated": b"0" * 30,
    "bad checksum": b"0" * 64 + b'\n{"holder":"m","expires":1e18,"generation":1}',
}
PLANTED_DOCS: dict[str, Any] = {
    "a list": ["holder", "expires"],
    "holder not text": {"holder": 5, "expires": 0.0, "generation": 1},
    "empty holder": {"holder": "", "expires": 0.0, "generation": 1},
    "expires as text": {"holder": "m", "expires": "soon", "generation": 1},
    "expires NaN": {"holder": "m", "expires": float("nan"), "generation": 1},
    "expires a bool": {"holder": "m", "expires": True, "generation": 1},
    "generation negative": {"holder": "m", "expires": 0.0, "generation": -3},
    "generation a float": {"holder": "m", "expires": 0.0, "generation": 1.5},
    "generation huge": {"holder": "m", "expires": 0.0, "generation": 10**30},  # read as a float
    "no fields": {},
    "far future": {"holder": "m", "expires": 1e18, "generation": 1},
}


def _taken_only_after_a_term_unchanged(store: Store) -> Lease:
    clock = Clock()
    lease = Lease(store, "scheduler", holder="a", ttl=10.0, clock=clock)
    assert not lease.acquire()  # someone unknown may hold it
    clock.now += 9
    assert not lease.acquire()
    clock.now += 1
    assert lease.acquire() and lease.held
    assert store.read_doc(REL)["holder"] == "a"
    return lease


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_damaged_lease_bytes_are_replaced_after_a_term(any_store: Store, kind: str) -> None:
    _plant(any_store, PLANTED[kind])
    _taken_only_after_a_term_unchanged(any_store)


@pytest.mark.parametrize("kind", sorted(PLANTED_DOCS))
def test_a_planted_document_that_is_no_lease_is_replaced_after_a_term(
    local_store: Store, kind: str
) -> None:
    local_store.write_doc(REL, PLANTED_DOCS[kind])
    _taken_only_after_a_term_unchanged(local_store)


def test_a_planted_file_that_keeps_changing_is_never_taken(local_store: Store) -> None:
    clock = Clock()
    lease = Lease(local_store, "scheduler", holder="a", ttl=10.0, clock=clock)
    for i in range(5):
        _plant(local_store, f"garbage {i}".encode())
        assert not lease.acquire()
        clock.now += 8
    assert not lease.acquire()  # changed at every look: someone is alive there


def test_an_unsigned_lease_planted_in_a_signed_store_is_replaced_after_a_term(
    tmp_path: Path,
) -> None:
    Store(tmp_path / "s").write_doc(REL, {"holder": "mallory", "expires": 1e18, "generation": 1})
    signed = Store(tmp_path / "s", key="the key")
    lease = _taken_only_after_a_term_unchanged(signed)
    assert signed.read_doc(REL)["holder"] == lease.holder


def test_schedulers_with_different_keys_never_both_hold_it(tmp_path: Path) -> None:
    """One scheduler cannot read the other's lease; the live one renews, so the other never
    sees it unchanged for a term and never takes it."""
    clock = Clock()
    keyed = Lease(Store(tmp_path / "s", key="k"), "scheduler", holder="k", ttl=10, clock=clock)
    plain = Lease(Store(tmp_path / "s"), "scheduler", holder="p", ttl=10, clock=clock)
    assert keyed.acquire()
    for _ in range(10):
        assert not plain.acquire()
        clock.now += 6
        assert keyed.renew() and not plain.held
    clock.now += 11  # the keyed one stopped: after a term unchanged, the other takes it
    assert not plain.acquire()
    clock.now += 10
    assert plain.acquire() and not keyed.held
    assert not keyed.renew()


def test_a_link_planted_at_the_lease_path_is_refused_by_name(
    local_store: Store, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_bytes(b"precious")
    os.makedirs(os.path.join(local_store.root, "leases"))
    os.symlink(target, os.path.join(local_store.root, REL))
    with pytest.raises(StoreError, match=re.escape(REL) + ".*remove it"):
        Lease(local_store, "scheduler").acquire()
    assert target.read_bytes() == b"precious"


def test_a_deleted_lease_file_is_created_again(any_store: Store) -> None:
    clock = Clock()
    a, b = _pair(any_store, clock)
    assert a.acquire()
    any_store.delete(REL)
    assert not a.renew() and not a.held
    assert b.acquire() and b.generation == 1
    assert not a.acquire()

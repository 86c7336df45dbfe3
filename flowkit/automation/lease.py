"""A named lease in the store, so that one scheduler at a time does the work.

``leases/<name>.json`` holds ``{"holder", "expires", "generation"}``. Every change is a
conditional write (:meth:`~flowkit.store.Store.create_doc` when there is no lease yet,
:meth:`~flowkit.store.Store.replace_doc` otherwise: compare-and-swap on the version read), so
of two contenders racing for a lapsed lease exactly one succeeds, and a holder that was taken
over learns it at its next renewal. ``generation`` counts tenures: it grows by one each time
the lease changes hands (or is taken again after it lapsed or was released), never on a
renewal.

Expiry compares ``expires`` (the holder's clock plus ``ttl``) with the contender's clock:
machines sharing a store need clocks that agree to well within ``ttl`` (NTP does). The lease
only makes one scheduler do the work; what makes a fire start once is its claim
(:mod:`flowkit.automation.claims`), which holds even if two schedulers overlap briefly.

A lease file that cannot be read (damaged, planted, wrong types, an invalid signature in a
signed store), or whose term runs implausibly far ahead (more than 10 ``ttl``: schedulers on
one store use the same ``ttl``), is treated as held by someone unknown until it has stayed
the same for ``ttl`` on this process's clock; then it is replaced by compare-and-swap. A live
holder rewrites it at every renewal, so a scheduler with another key (which cannot read it)
never takes it over. A link or a folder planted at its path is refused by name.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

from flowkit.errors import StoreError
from flowkit.fsio import ObjectMissing, ObjectUnavailable
from flowkit.store import Store

LEASES = "leases"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# A lease whose term runs more than this many ttl past now was not written by a scheduler
# using this ttl (planted, or a clock far ahead): it is treated as unreadable.
_PLAUSIBLE_TERMS = 10


def default_holder() -> str:
    """``host:pid:random``: unique to this process (and to this Lease object)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"


class Lease:
    """A named lease in the store: leases/<name>.json {holder, expires, generation}.

    ``acquire()`` takes it if it is free or lapsed (and renews it if it is ours),
    ``renew()`` keeps it (False once it was taken over), ``release()`` gives it up. Call
    ``renew()`` well within ``ttl`` (every ``ttl / 3``, say). One Lease object belongs to one
    thread.
    """

    def __init__(
        self,
        store: Store,
        name: str,
        *,
        holder: str | None = None,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if type(name) is not str or _NAME_RE.fullmatch(name) is None:
            raise StoreError(
                f"lease name {name!r}: use 1-128 letters, digits, '.', '_' or '-', starting "
                "with a letter or digit"
            )
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise StoreError(f"lease {name!r}: ttl={ttl!r} must be a positive number of seconds")
        if not math.isfinite(ttl):
            raise StoreError(f"lease {name!r}: ttl={ttl!r} must be finite")
        self.store = store
        self.name = name
        self.rel = f"{LEASES}/{name}.json"
        self.holder = default_holder() if holder is None else str(holder)
        self.ttl = float(ttl)
        self.clock = clock
        self.generation = 0  # of our tenure while held; else the last one seen
        self._expires = -math.inf  # of our tenure (our clock)
        self._held = False
        self._unreadable: tuple[str, float] | None = None  # (version, first seen at)

    @property
    def held(self) -> bool:
        """True while this object holds the lease and its term has not run out."""
        return self._held and self.clock() < self._expires

    def acquire(self) -> bool:
        """Take the lease if it is free or lapsed (``expires`` < now), renew it if it is
        ours; False while another holder's lease is live."""
        try:
            doc, version = self.store.read_doc_versioned(self.rel)
        except ObjectUnavailable as exc:
            if exc.version is not None:  # there, but damaged or unsigned
                return self._unreadable_lease(exc.version)
            if type(exc) is ObjectMissing:  # absent: the first tenure (or after a deletion)
                return self._write(None, self.generation + 1)
            raise StoreError(
                f"lease file {self.store.url}/{self.rel} cannot be read ({exc}); if it is a "
                "link or a folder planted there, remove it"
            ) from exc
        now = self.clock()
        state = _parse(doc)
        if state is None or state[1] - now > _PLAUSIBLE_TERMS * self.ttl:
            return self._unreadable_lease(version)  # not a lease, or one no one could renew
        self._unreadable = None
        holder, expires, generation = state
        if holder == self.holder and (self._held or now < expires):
            if self._held and generation != self.generation:
                self._held = False  # our name under another generation: a new tenure
            return self._write(version, generation if self._held else generation + 1)
        if now < expires:
            self._lost(generation)
            return False
        return self._write(version, max(generation, self.generation) + 1)

    def renew(self) -> bool:
        """Extend our term; False (and no longer held) if the lease was taken over, is
        unreadable, or was never ours."""
        if not self._held:
            return False
        try:
            doc, version = self.store.read_doc_versioned(self.rel)
        except ObjectUnavailable:
            self._held = False
            return False
        state = _parse(doc)
        if state is None or state[0] != self.holder or state[2] != self.generation:
            self._lost(state[2] if state is not None else self.generation)
            return False
        return self._write(version, self.generation)

    def release(self) -> None:
        """Give the lease up, if it is still ours: it lapses at once (``expires`` 0), so the
        next contender takes it without waiting out the term."""
        if not self._held:
            return
        self._held = False
        try:
            doc, version = self.store.read_doc_versioned(self.rel)
        except ObjectUnavailable:
            return
        state = _parse(doc)
        if state is None or state[0] != self.holder or state[2] != self.generation:
            return
        body = {"holder": self.holder, "expires": 0.0, "generation": self.generation}
        self.store.replace_doc(self.rel, body, version)

    # -- transitions -----------------------------------------------------------------------

    def _write(self, version: str | None, generation: int) -> bool:
        """Hold the lease as ``generation`` until now + ttl, by a conditional write."""
        expires = self.clock() + self.ttl
        body = {"holder": self.holder, "expires": expires, "generation": generation}
        if version is None:
            won = self.store.create_doc(self.rel, body)
        else:
            won = self.store.replace_doc(self.rel, body, version)
        if won:
            self._held, self.generation, self._expires = True, generation, expires
        else:
            self._held = False
        return won

    def _lost(self, generation: int) -> None:
        self._held = False
        self.generation = max(self.generation, generation)

    def _unreadable_lease(self, version: str) -> bool:
        """An unreadable lease file: someone unknown holds it until it has not changed for
        ``ttl`` (by our clock); then it is replaced, if it is still that version."""
        self._held = False
        now = self.clock()
        if self._unreadable is None or self._unreadable[0] != version:
            self._unreadable = (version, now)
            return False
        if now - self._unreadable[1] < self.ttl:
            return False
        self._unreadable = None
        return self._write(version, self.generation + 1)

    def __repr__(self) -> str:
        state = "held" if self.held else "not held"
        return f"Lease({self.name!r}, holder={self.holder!r}, {state}, gen {self.generation})"


def _parse(doc: Any) -> tuple[str, float, int] | None:
    """(holder, expires, generation) of a lease document, or None if it is not one."""
    if not isinstance(doc, dict):
        return None
    holder, expires, generation = doc.get("holder"), doc.get("expires"), doc.get("generation")
    if type(holder) is not str or not holder:
        return None
    if isinstance(expires, bool) or not isinstance(expires, (int, float)):
        return None
    if not math.isfinite(expires):
        return None
    if type(generation) is not int or generation < 0:
        return None
    return holder, float(expires), generation


__all__ = ["LEASES", "Lease", "default_holder"]

"""Claims: the "exactly once" guard of a fire or an event.

Before it starts a fire, the scheduler claims ``schedules/<name>/fires/<stamp>.json``; a
trigger claims the event it reacts to. A claim is a document created only if none is at its
path (:meth:`~flowkit.store.Store.create_doc`), so of any number of schedulers racing for one
fire exactly one gets True and starts it (atomic on a local folder and on S3 with conditional
writes; see docs/automation.md for other stores). A claim is never taken back: a fire whose
claim exists is started, or was, by whoever made it.

The stored document is ``{"body": <the caller's mapping>, "token": <random>, "by":
"host:pid", "at": <unix time>}``. The token tells a claim from its twin: on S3 a request
retried after its answer was lost finds its own claim there (see :mod:`flowkit.fsio.s3`), and
is still the one that made it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Mapping
from typing import Any

from flowkit.errors import StoreError
from flowkit.fsio import ObjectMissing, ObjectUnavailable
from flowkit.store import Store

log = logging.getLogger("flowkit.automation")


def claim(store: Store, rel: str, body: Mapping[str, Any]) -> bool:
    """Create the claim at ``rel`` holding ``body`` (JSON data) if no claim is there; True
    iff this call made it. StoreError if ``body`` is not a mapping with string keys, or
    cannot be written as JSON, or the store is read-only."""
    problem = _not_json(body) if isinstance(body, Mapping) else type(body).__name__
    if problem is not None:
        raise StoreError(
            f"claim {rel} in store {store.url}: the body must be a mapping of JSON data "
            f"(string keys; text, numbers, booleans, None, lists, mappings), not {problem}"
        )
    token = secrets.token_hex(16)
    doc = {
        "body": dict(body),
        "token": token,
        "by": f"{socket.gethostname()}:{os.getpid()}",
        "at": time.time(),
    }
    if store.create_doc(rel, doc):
        return True
    try:
        there = store.read_doc(rel)
    except ObjectUnavailable:
        return False
    return isinstance(there, dict) and there.get("token") == token  # our retried request


def _not_json(value: Any) -> str | None:
    """What in ``value`` is not JSON data (a non-string key, another type), or None."""
    if value is None or isinstance(value, (str, int, float)):
        return None
    if isinstance(value, (list, tuple)):
        items: Any = value
    elif isinstance(value, Mapping):
        bad_key = next((k for k in value if type(k) is not str), None)
        if bad_key is not None:
            return f"the key {bad_key!r}"
        items = value.values()
    else:
        return f"a {type(value).__name__}"
    return next((p for p in map(_not_json, items) if p is not None), None)


def claimed(store: Store, rel: str) -> Mapping[str, Any] | None:
    """The body of the claim at ``rel``, or None if there is none. A claim file that cannot
    be read (damaged, or unsigned in a signed store) still claims its fire: its body is
    given as ``{}`` and a warning names it."""
    try:
        doc = store.read_doc(rel)
    except ObjectUnavailable as exc:
        if type(exc) is ObjectMissing:
            return None  # absent (ObjectUnsigned, a subclass, is there but unsigned)
        return _unreadable(store, rel, exc)
    body = doc.get("body") if isinstance(doc, dict) else None
    if not isinstance(body, dict):
        return _unreadable(store, rel, "it is not a claim document")
    return body


def _unreadable(store: Store, rel: str, why: object) -> Mapping[str, Any]:
    log.warning(
        "claim %s/%s cannot be read (%s); it still claims its fire or event", store.url, rel, why
    )
    return {}


__all__ = ["claim", "claimed"]

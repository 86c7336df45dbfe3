"""The key that turns a :class:`~flowkit.secret.Secret` into a cache-key token: an HMAC.

A call's key must change when its secret changes (a result computed with one account's token
is not another's), yet nothing a store reader can invert may be written. So a secret input's
token is ``sha256(["secret", HMAC-SHA256(k, text)])`` (:func:`secret_token`), where ``k``
is, in this order:

1. the store's signing key, when the store is signed (``FLOWKIT_STORE_KEY`` or ``key=``),
   through ``HMAC-SHA256(store key, "flowkit secret-hmac")`` so the two uses never share a
   key;
2. ``$FLOWKIT_SECRET_KEY``, when set (set it on every machine that runs tasks: a worker
   without it computes other keys, which only misses the cache);
3. a random 32-byte key the store keeps at ``keys/secret-hmac``, written by the first process
   that needs it. Two processes racing to create it may each use their own once (a cache
   miss, never a wrong hit); the stored one wins from then on.

With (3), anyone who can read the store can test guesses of a secret against the tokens in
cache entries: a strong random token is safe, a short password is not. Use (1) or (2) to close
that (docs/secrets.md). A read-only store without (1) or (2) and without the key file gives no
token: calls with a secret input are then computed, not cached.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
from typing import Final

from flowkit import hashing
from flowkit.errors import StoreError
from flowkit.fsio import ObjectMissing
from flowkit.secret import Secret, keyed_mac
from flowkit.store import Store

log = logging.getLogger(__name__)

ENV: Final = "FLOWKIT_SECRET_KEY"
KEY_DOC: Final = "keys/secret-hmac"
_LABEL: Final = b"flowkit secret-hmac"

_lock = threading.Lock()
_stored: dict[str, bytes] = {}  # store URL -> the key its KEY_DOC holds (read once per process)


def secret_token(store: Store, secret: Secret) -> str | None:
    """The token of a secret input in ``store``'s cache keys, or None when no key is at hand
    (a read-only store without one)."""
    k = hmac_key(store)
    if k is None:
        return None
    return hashing.hash_struct("secret", keyed_mac(secret.reveal(), k))


def hmac_key(store: Store) -> bytes | None:
    """``k`` (see the module docstring)."""
    own = store._key  # the signing key, if any (never written anywhere)
    if own is not None:
        return hmac.new(own, _LABEL, hashlib.sha256).digest()
    env = os.environ.get(ENV)
    if env:
        return env.encode("utf-8")
    with _lock:
        known = _stored.get(store.url)
        if known is None:
            known = _load_or_create(store)
            if known is not None:
                _stored[store.url] = known
        return known


def _load_or_create(store: Store) -> bytes | None:
    """The key in ``KEY_DOC``, created first (create-if-absent) when the store has none."""
    try:
        try:
            return _parsed(store, store.read_doc(KEY_DOC))
        except ObjectMissing:
            if store.read_only:
                return None
        # a random document: two processes never write the same bytes (see create_doc)
        store.create_doc(KEY_DOC, {"hmac_key": secrets.token_hex(32)})
        return _parsed(store, store.read_doc(KEY_DOC))  # whoever created it first
    except StoreError as exc:
        _warn_once(store, f"cannot read or create {KEY_DOC} ({exc})")
        return None


def _parsed(store: Store, doc: object) -> bytes | None:
    key = doc.get("hmac_key") if isinstance(doc, dict) else None
    try:
        if isinstance(key, str) and len(key) == 64:
            return bytes.fromhex(key)
    except ValueError:
        pass
    _warn_once(store, f"{KEY_DOC} does not hold a key (delete it to have a new one written)")
    return None


_warned: set[str] = set()


def _warn_once(store: Store, problem: str) -> None:
    if store.url in _warned:
        return
    _warned.add(store.url)
    log.warning(
        "store %s: %s, so calls with a fk.Secret input are not cached; set %s (or sign the "
        "store) to key them without it",
        store.url,
        problem,
        ENV,
    )


__all__ = ["ENV", "KEY_DOC", "hmac_key", "secret_token"]

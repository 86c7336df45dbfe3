"""The envelope of a store's JSON documents, and the signatures of a signed store.

A document (cache entry, run record) is stored as one header line, then its JSON body:

* unsigned store: ``<sha256 hex of body>\\n<body>`` (the same bytes as store format 1, so
  run records survive a migration);
* signed store: ``hmac-sha256:<hex>\\n<body>`` where the HMAC (key = the store's key) covers
  the document's path in the store and its body, so a signed document cannot be replayed
  under another name (another run id, another cache key).

An object's bytes are never changed (its digest is its content address). A signed store signs
each *artifact* instead: ``sig = HMAC(key, digest, format, size)`` travels inside the artifact
(in the cache entry, itself signed), and :meth:`flowkit.store.Store.get` checks it before it
reads anything. An object planted by someone without the key has a digest nobody signed, so
no signed document can point at it and ``get`` refuses it.

Pure functions over bytes; no flowkit imports (bottom layer).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Final, Literal

import orjson

SIGNED_PREFIX: Final = b"hmac-sha256:"
_SIGNED_HEAD: Final = len(SIGNED_PREFIX) + 64  # where the newline of a signed header sits
_DOC_DOMAIN: Final = b"flowkit-document\x00"
_OBJECT_DOMAIN: Final = "flowkit-object\x00"

# Documents are not content addressed, so their JSON need not be canonical beyond being
# deterministic; NaN and infinities are written as Python's json reads them back (a run
# header with a NaN input must stay writable).
_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)

Problem = Literal["ok", "damaged", "unsigned", "signed"]


def encode(obj: Any) -> bytes:
    """The body of a document: sorted keys, no spaces, UTF-8, non-finite floats allowed."""
    return _encoder.encode(obj).encode("utf-8")


def encode_plain(obj: Any) -> bytes:
    """:func:`encode` for data known to hold only string keys and finite floats (task
    records), by orjson: twenty times faster, and a run writes one record per call. orjson
    would write a non-finite float as null, hence "known"; what it refuses (an integer past
    64 bits) goes through :func:`encode`."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return encode(obj)


class Signer:
    """HMAC-SHA256 under one key, with the padded key states hashed once.

    ``hmac.digest`` sets up an OpenSSL context per call (~5 µs with OpenSSL 3); copying two
    precomputed sha256 states costs half of that, which matters once per cache hit.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        block = 64  # sha256's block size (RFC 2104)
        if len(key) > block:
            key = hashlib.sha256(key).digest()
        key = key.ljust(block, b"\x00")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def mac(self, msg: bytes) -> bytes:
        """HMAC-SHA256(key, msg), equal to ``hmac.digest(key, msg, "sha256")``."""
        inner = self._inner.copy()
        inner.update(msg)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def _doc_mac(signer: Signer, rel: str, body: bytes) -> bytes:
    return signer.mac(_DOC_DOMAIN + rel.encode("utf-8") + b"\x00" + body)


def seal(body: bytes, rel: str, signer: Signer | None) -> bytes:
    """The stored bytes of a document at ``rel``: checksummed, or signed with a signer."""
    if signer is None:
        return hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body
    return SIGNED_PREFIX + _doc_mac(signer, rel, body).hex().encode("ascii") + b"\n" + body


def body_of(data: bytes, rel: str, signer: Signer | None) -> bytes | None:
    """The body if ``data`` is a whole document this store accepts, else None (fast path)."""
    if signer is None:
        if len(data) < 65 or data[64:65] != b"\n":
            return None
        body = data[65:]
        return body if hashlib.sha256(body).hexdigest().encode("ascii") == data[:64] else None
    if data[_SIGNED_HEAD : _SIGNED_HEAD + 1] != b"\n" or not data.startswith(SIGNED_PREFIX):
        return None
    body = data[_SIGNED_HEAD + 1 :]
    mac = _doc_mac(signer, rel, body).hex().encode("ascii")
    return body if hmac.compare_digest(mac, data[len(SIGNED_PREFIX) : _SIGNED_HEAD]) else None


def judge(data: bytes, rel: str, signer: Signer | None) -> tuple[Problem, str]:
    """Why ``data`` is not accepted (after :func:`body_of` said None), as (problem, reason).

    ``damaged``: truncated, not a flowkit document or failing its checksum; ``unsigned``: a
    signed store met a document without a valid signature; ``signed``: a store without a key
    met a signed document (it cannot check it, so it does not read it).
    """
    if body_of(data, rel, signer) is not None:
        return "ok", ""
    signed = data.startswith(SIGNED_PREFIX) and data[_SIGNED_HEAD : _SIGNED_HEAD + 1] == b"\n"
    if signer is None:
        if signed:
            return "signed", "it is signed and this store was opened without a key"
        if data[64:65] != b"\n":
            return "damaged", "truncated or not a flowkit document"
        return "damaged", "checksum mismatch"
    if signed:
        return "unsigned", "its signature does not match this store's key (damaged or forged)"
    return "unsigned", "it is not signed"


def object_sig(signer: Signer, digest: str, format: str, size: int) -> str:
    """The signature of an artifact in a signed store (hex)."""
    return signer.mac(f"{_OBJECT_DOMAIN}{digest}\x00{format}\x00{size}".encode()).hex()


def check_object_sig(signer: Signer, digest: str, format: str, size: int, sig: str | None) -> bool:
    """True if ``sig`` is the signature of this artifact."""
    return sig is not None and hmac.compare_digest(object_sig(signer, digest, format, size), sig)


def as_key(key: bytes | str) -> bytes:
    """A signing key as bytes (text is UTF-8); an empty key is refused."""
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if not raw:
        raise ValueError("a store key must not be empty")
    return raw


__all__ = [
    "SIGNED_PREFIX",
    "Signer",
    "as_key",
    "body_of",
    "check_object_sig",
    "encode",
    "judge",
    "object_sig",
    "seal",
]

"""Content digests: sha256 over domain-tagged canonical pre-images.

Every digest flowkit computes is ``sha256`` over the canonical JSON of a list whose first item
is a *tag* naming what is hashed, so two different kinds of thing can never share a digest:

* ``["blob", format, sha256(bytes)]`` — a stored artifact (see :class:`BlobHasher`);
* ``["code", ...]`` — a task's code (named components, or a pinned ``version=``);
* ``["interface", spec]`` — a task's typed interface;
* ``["call", identity, code, interface, {param: digest}]`` — a cache key;
* ``["list", [digest, ...]]`` — an ordered list of artifacts (a mapped task's outputs).

Canonical JSON: keys sorted, no spaces, UTF-8 (not ASCII-escaped), NaN/Infinity refused.
Digests are 64 lowercase hex characters. The golden digests in ``tests/test_hashing.py`` pin
every function here: changing a pre-image changes every cache key, so it must be deliberate
(bump the store format in ``flowkit.store`` when it happens).

The hot pre-images (``blob`` and ``call``, computed on every cache hit) are built with
f-strings when every string in them encodes to itself between quotes (the result is printable,
has no ``\\`` and only the template's ``"``): the bytes are then identical to the encoder's,
which stays the fallback.

Pure functions; no flowkit imports.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

DIGEST_LENGTH: Final = 64

_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(obj: Any) -> bytes:
    """The canonical byte form of a JSON-able value: sorted keys, no spaces, UTF-8."""
    return _encoder.encode(obj).encode("utf-8")


def _plain_quoted(pre: str, quotes: int) -> bool:
    """True if ``pre`` holds exactly ``quotes`` quotes and nothing the encoder escapes."""
    return pre.isprintable() and "\\" not in pre and pre.count('"') == quotes


def hash_struct(tag: str, *parts: Any) -> str:
    """sha256 hex digest of the canonical JSON of ``[tag, *parts]``.

    >>> hash_struct("list", [])[:12]
    '7ad43f899d94'
    """
    return hashlib.sha256(canonical_json([tag, *parts])).hexdigest()


def blob_digest(format: str, content_sha256: str) -> str:
    """The digest of an artifact: its format name and the sha256 of its bytes."""
    if type(format) is str and type(content_sha256) is str:
        pre = f'["blob","{format}","{content_sha256}"]'
        if _plain_quoted(pre, 6):
            return hashlib.sha256(pre.encode("utf-8")).hexdigest()
    return hash_struct("blob", format, content_sha256)


class BlobHasher:
    """Streaming hasher for artifact bytes: feed chunks as they are written or read.

    >>> h = BlobHasher()
    >>> h.update(b"4"); h.update(b"2")
    >>> h.size, h.digest("json") == blob_digest("json", hashlib.sha256(b"42").hexdigest())
    (2, True)
    """

    __slots__ = ("_sha", "size")

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._sha.update(data)
        self.size += data.nbytes if isinstance(data, memoryview) else len(data)

    def content_sha256(self) -> str:
        """sha256 hex of the raw bytes seen so far (untagged)."""
        return self._sha.hexdigest()

    def digest(self, format: str) -> str:
        """The tagged artifact digest of the bytes seen so far, stored as ``format``."""
        return blob_digest(format, self._sha.hexdigest())


def code_digest(components: Mapping[str, str]) -> str:
    """Digest of a task's code from its named components (``{"function `f`": digest, ...}``).

    This is the pre-image production keys use (``codehash.fingerprint`` calls it).
    """
    return hash_struct("code", dict(components))


def version_digest(version: str) -> str:
    """Digest standing for a task's code when it is pinned with ``version=``."""
    return hash_struct("code", "version", version)


def interface_digest(spec: Any) -> str:
    """Digest of a task's interface, given any JSON-able description of it."""
    return hash_struct("interface", spec)


def call_key(identity: str, code: str, interface: str, inputs: Mapping[str, str]) -> str:
    """The cache key of one task call.

    ``identity`` is the task's name, ``code`` its code digest (:func:`code_digest` or
    :func:`version_digest`), ``interface`` its interface digest and ``inputs`` the artifact
    digest of every cached input, by parameter name (order does not matter).
    """
    if type(identity) is str and type(code) is str and type(interface) is str:
        # a loop, not all(<generator>): this runs for every call of every kept task
        pairs = []
        for k, v in sorted(inputs.items()):
            if type(k) is not str or type(v) is not str:
                break
            pairs.append(f'"{k}":"{v}"')
        else:
            pre = f'["call","{identity}","{code}","{interface}",{{{",".join(pairs)}}}]'
            # exactly the quotes put here, nothing the encoder would escape: identical bytes
            if _plain_quoted(pre, 8 + 4 * len(pairs)):
                return hashlib.sha256(pre.encode("utf-8")).hexdigest()
    return hash_struct("call", identity, code, interface, dict(inputs))


def list_digest(digests: Sequence[str]) -> str:
    """Digest of an ordered list of artifacts, from their digests (order matters)."""
    return hash_struct("list", list(digests))


_DIGEST_RE = re.compile(r"[0-9a-f]{64}")


def is_digest(text: object) -> bool:
    """True if ``text`` is a digest made here: a str of exactly 64 lowercase hex characters.

    Every digest read from a store goes through this before it names a path.
    """
    return type(text) is str and _DIGEST_RE.fullmatch(text) is not None


__all__ = [
    "DIGEST_LENGTH",
    "BlobHasher",
    "blob_digest",
    "call_key",
    "canonical_json",
    "code_digest",
    "hash_struct",
    "interface_digest",
    "is_digest",
    "list_digest",
    "version_digest",
]

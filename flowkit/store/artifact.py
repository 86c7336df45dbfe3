"""Artifacts: what names a stored value (digest, format, size, signature; its bytes when they
are small enough to be kept inline), and the validated path of its object
(``objects/<d[:2]>/<d>``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from flowkit.fsio import ObjectCorrupt
from flowkit.hashing import blob_digest

DIGEST_RE = re.compile(r"[0-9a-f]{64}")

#: Serialized values up to this many bytes are kept inline, in the document that names them
#: (a cache entry, a task record), instead of as an object of their own.
INLINE_MAX = 1024

#: Formats that are always objects: loading them unpacks the object's file (files/<d>).
UNPACKED = frozenset({"file", "dir"})


@dataclass(frozen=True, slots=True)
class Artifact:
    """A stored value: its digest, the serialiser format, the size in bytes and, in a signed
    store, its signature. ``inline`` holds the bytes themselves for a small value that has
    no object. Neither ``sig`` nor ``inline`` is part of its identity: equal artifacts name
    equal bytes, and an inline artifact's digest is the one its object would have."""

    digest: str
    format: str
    size: int
    sig: str | None = field(default=None, compare=False)
    inline: bytes | None = field(default=None, compare=False, repr=False)

    def to_dict(self, compact: bool = False) -> dict[str, Any]:
        """The artifact as JSON: ``inline`` holds the UTF-8 text of an inline ``json`` value,
        ``inline64`` the base64 of other inline bytes. ``compact`` (task records, where 100k
        of them must stay small) leaves out what the inline bytes give: digest and size."""
        data = self.inline
        if data is None:
            d: dict[str, Any] = {"digest": self.digest, "format": self.format, "size": self.size}
        else:
            d = {"format": self.format} if compact else _plain(self)
            text = _as_text(self.format, data)
            if text is None:
                d["inline64"] = base64.b64encode(data).decode("ascii")
            else:
                d["inline"] = text
        if self.sig is not None:
            d["sig"] = self.sig
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Artifact:
        """Rebuild an artifact; ValueError unless every field is well formed (the digest is
        64 lowercase hex digits: it becomes a path). An inline artifact's digest and size are
        recomputed from its bytes, and refused if the ones it states disagree."""
        if not isinstance(d, dict):
            raise ValueError(f"not an artifact: {d!r}")
        if "inline" in d or "inline64" in d:
            return _inline_from_dict(d)
        digest, fmt, size, sig = d.get("digest"), d.get("format"), d.get("size"), d.get("sig")
        # inline checks, no helper calls: this runs for every output of every cache hit
        if not (
            type(digest) is str
            and DIGEST_RE.fullmatch(digest) is not None
            and type(fmt) is str
            and fmt
            and type(size) is int
            and size >= 0
            and (sig is None or (type(sig) is str and DIGEST_RE.fullmatch(sig) is not None))
        ):
            raise ValueError(f"not an artifact: {d!r}")
        return cls(digest, fmt, size, sig)


def inline_artifact(fmt: str, data: bytes, sig: str | None = None) -> Artifact:
    """The inline artifact of ``data`` serialized as ``fmt`` (digest computed here)."""
    return Artifact(blob_digest(fmt, hashlib.sha256(data).hexdigest()), fmt, len(data), sig, data)


def check_inline(artifact: Artifact) -> str | None:
    """Why an inline artifact's bytes do not match its digest and size (None: they do)."""
    data = artifact.inline
    if data is None:
        return "it has no inline bytes"
    if len(data) != artifact.size:
        return f"{len(data)} inline bytes, expected {artifact.size}"
    if blob_digest(artifact.format, hashlib.sha256(data).hexdigest()) != artifact.digest:
        return "its inline bytes do not match its digest"
    return None


def _plain(a: Artifact) -> dict[str, Any]:
    return {"digest": a.digest, "format": a.format, "size": a.size}


def _as_text(fmt: str, data: bytes) -> str | None:
    """The inline bytes as text, when they are JSON (UTF-8): readable in the document."""
    if fmt != "json":
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _inline_from_dict(d: dict[str, Any]) -> Artifact:
    fmt, text, b64, sig = d.get("format"), d.get("inline"), d.get("inline64"), d.get("sig")
    if not (type(fmt) is str and fmt and fmt not in UNPACKED):
        raise ValueError(f"not an inline artifact (format {fmt!r}): {d!r:.200}")
    if sig is not None and (type(sig) is not str or DIGEST_RE.fullmatch(sig) is None):
        raise ValueError(f"not an artifact (signature): {d!r:.200}")
    try:
        if text is not None and b64 is None and type(text) is str and fmt == "json":
            data = text.encode("utf-8")
        elif b64 is not None and text is None and type(b64) is str:
            data = base64.b64decode(b64, validate=True)
        else:
            raise ValueError("inline bytes must be one `inline` text (json) or `inline64`")
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise ValueError(f"not an inline artifact ({exc}): {d!r:.200}") from None
    if len(data) > INLINE_MAX:
        raise ValueError(f"not an inline artifact: {len(data)} bytes, over {INLINE_MAX}")
    art = inline_artifact(fmt, data, sig)
    stated_digest, stated_size = d.get("digest", art.digest), d.get("size", art.size)
    if stated_digest != art.digest or type(stated_size) is not int or stated_size != art.size:
        raise ValueError(
            f"inline artifact disagrees with its bytes: states digest {stated_digest!r:.80} "
            f"and size {stated_size!r:.20}, its bytes give {art.digest} and {art.size}"
        )
    return art


def is_digest(text: Any) -> bool:
    """True if ``text`` is 64 lowercase hex digits (what an object may be named)."""
    return type(text) is str and DIGEST_RE.fullmatch(text) is not None


def object_path(digest: str) -> str:
    """``objects/<d[:2]>/<d>``; ObjectCorrupt if ``digest`` is not 64 lowercase hex."""
    if type(digest) is not str or DIGEST_RE.fullmatch(digest) is None:
        raise ObjectCorrupt(
            f"{digest!r} is not an object digest (64 lowercase hex digits); refusing to "
            "use it as a path"
        )
    return f"objects/{digest[:2]}/{digest}"


__all__ = [
    "DIGEST_RE",
    "INLINE_MAX",
    "UNPACKED",
    "Artifact",
    "check_inline",
    "inline_artifact",
    "is_digest",
    "object_path",
]

"""Artifacts: what names a stored value (digest, format, size, signature), and the validated
path of its object (``objects/<d[:2]>/<d>``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flowkit.fsio import ObjectCorrupt

DIGEST_RE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Artifact:
    """A stored value: its digest, the serialiser format, the size in bytes and, in a signed
    store, its signature (not part of its identity: equal artifacts name equal bytes)."""

    digest: str
    format: str
    size: int
    sig: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"digest": self.digest, "format": self.format, "size": self.size}
        if self.sig is not None:
            d["sig"] = self.sig
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Artifact:
        """Rebuild an artifact; ValueError unless every field is well formed (the digest is
        64 lowercase hex digits: it becomes a path)."""
        if not isinstance(d, dict):
            raise ValueError(f"not an artifact: {d!r}")
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


__all__ = ["DIGEST_RE", "Artifact", "is_digest", "object_path"]

"""Compressed documents: a document whose path ends in ``.gz`` has a gzip body.

The checksum or signature line covers the compressed bytes (a damaged file is caught before it
is decompressed), and decompression stops at :data:`UNPACKED_MAX` bytes, so a small planted
file cannot expand into gigabytes (a gzip bomb) on the reader. The gzip header's time is 0:
the same document gives the same bytes.
"""

from __future__ import annotations

import gzip
import zlib

from flowkit.fsio import ObjectCorrupt

SUFFIX = ".gz"
UNPACKED_MAX = 256 << 20  # a decompressed document larger than this is refused
LEVEL = 6  # benchmarks/RESULTS.md, "Store cost (format 3)": level 9 saves 1%, at twice the time


def is_compressed(rel: str) -> bool:
    """True if the document at ``rel`` is stored gzip-compressed."""
    return rel.endswith(SUFFIX)


def pack(body: bytes) -> bytes:
    """``body`` gzip-compressed, deterministically (header time 0)."""
    return gzip.compress(body, compresslevel=LEVEL, mtime=0)


def unpack(data: bytes, where: str, limit: int | None = None) -> bytes:
    """The decompressed body of one gzip member; ObjectCorrupt if it is not one whole gzip
    member, or if it would decompress to more than ``limit`` bytes (default
    :data:`UNPACKED_MAX`)."""
    if limit is None:
        limit = UNPACKED_MAX
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip header and trailer
    try:
        body = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ObjectCorrupt(f"{where}: not a valid gzip body ({exc})") from exc
    if len(body) > limit or inflater.unconsumed_tail:
        raise ObjectCorrupt(
            f"{where}: decompresses to more than {limit} bytes; refusing it (a document this "
            "large is not one flowkit writes)"
        )
    if not inflater.eof:
        raise ObjectCorrupt(f"{where}: truncated gzip body")
    if inflater.unused_data:
        raise ObjectCorrupt(f"{where}: bytes after the gzip body")
    return body


__all__ = ["SUFFIX", "UNPACKED_MAX", "is_compressed", "pack", "unpack"]

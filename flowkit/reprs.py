"""Short reprs for messages: a value, or any text, cut to a readable length with an ellipsis.

One helper for every message that quotes a value (a literal argument, a workflow default, a
CLI default), so they all cut the same way. Bottom layer: no flowkit imports.
"""

from __future__ import annotations

from typing import Any

SHORT = 40  # characters a quoted value may take in a one-line message


def shorten(text: str, limit: int = SHORT) -> str:
    """``text`` cut to ``limit`` characters, the last three an ellipsis.

    >>> shorten("abcdefgh", 6)
    'abc...'
    """
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def short_repr(value: Any, limit: int = SHORT) -> str:
    """``repr(value)`` cut to ``limit`` characters (see :func:`shorten`).

    >>> short_repr(list(range(20)))
    '[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11...'
    """
    return shorten(repr(value), limit)


__all__ = ["SHORT", "short_repr", "shorten"]


def format_duration(seconds: Any) -> str:
    """``0.42s``, ``12.3s``, ``2m05s``, ``1h02m`` (the CLI's and the UI's way); ``-`` when
    unknown, negative (clock skew) or absurd."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        return "-"
    if not 0 <= seconds < 1e9:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        m, s = divmod(round(seconds), 60)
        return f"{m}m{s:02d}s"
    h, rest = divmod(round(seconds), 3600)
    return f"{h}h{rest // 60:02d}m"

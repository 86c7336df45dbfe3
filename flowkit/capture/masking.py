"""Secret values kept out of captured logs: a task that prints a revealed ``fk.Secret`` gets
``***`` in its stored log and its live lines instead of the value.

Process-wide (a secret revealed on a Ray worker is registered in that worker). Values under
4 characters are not registered: masking them would mangle ordinary text.
"""

from __future__ import annotations

import threading

MASK = "***"
MIN_LENGTH = 4

_lock = threading.Lock()
_values: tuple[str, ...] = ()  # longest first, so a secret containing another is masked whole


def redact(value: str) -> None:
    """Mask ``value`` wherever captured text contains it, from now on."""
    global _values
    if len(value) < MIN_LENGTH or value in _values:
        return
    with _lock:
        _values = tuple(sorted({*_values, value}, key=len, reverse=True))


def scrub(text: str) -> str:
    for value in _values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def active() -> bool:
    return bool(_values)

"""What a trigger's sensor reports: the events it found since its cursor, and its new cursor.

A sensor is polled: :meth:`Sensor.look` compares what is there now (runs of a workflow, the
version an alias names, the objects under a prefix) with its cursor (what it had seen) and
returns a :class:`Look`. Its first look (``cursor=None``) records the present state and
finds nothing, so a trigger added today does not fire for last year's runs or objects.

Each :class:`Found` event carries a ``key`` derived from what was seen, never from when it
was seen: two schedulers looking at the same state compute the same keys, so the claim
``triggers/<name>/fired/<key>.json`` lets exactly one of them fire it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Protocol

from flowkit.events import Event

_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")


class CursorError(ValueError):
    """A stored cursor that is not what its sensor writes (damaged or planted)."""


@dataclasses.dataclass(frozen=True)
class Found:
    """One event to fire; ``key`` names its claim (letters, digits, ``_.-``)."""

    key: str
    event: Event

    def __post_init__(self) -> None:
        if _KEY_RE.fullmatch(self.key) is None:
            raise ValueError(f"event key {self.key!r} cannot name a claim file")


@dataclasses.dataclass(frozen=True)
class Look:
    """What one look found, oldest first, and the cursor to keep once they are fired."""

    found: list[Found]
    cursor: dict[str, Any]


class Sensor(Protocol):
    """Polls one source. ``look`` raises whatever its source raises when it cannot be read
    (the trigger then logs a warning and keeps its cursor), and :class:`CursorError` for a
    cursor it did not write."""

    def look(self, cursor: Mapping[str, Any] | None, now: float) -> Look: ...


__all__ = ["CursorError", "Found", "Look", "Sensor"]

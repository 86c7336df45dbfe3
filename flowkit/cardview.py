"""A task's card (:mod:`flowkit.card`) as a reader of the store sees it: :class:`CardView`.

Cards come from a run's task record, which readers do not trust: :func:`read_cards` keeps
only well-formed ones (a known ``kind`` with fields of the right types) and a table's cells
only as JSON scalars, so a planted record can make no reader crash.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flowkit.errors import FlowkitError

_SCALARS = (str, int, float, bool, type(None))


class CardView:
    """One card: ``kind`` (``markdown``, ``table`` or ``image``), ``title``, and by kind
    ``text`` (the Markdown source), ``columns`` / ``rows`` / ``total_rows`` (a table's first
    rows and its length), or :meth:`image` (the PNG bytes)."""

    __slots__ = ("_card",)

    def __init__(self, card: dict[str, Any]) -> None:
        self._card = card

    @property
    def kind(self) -> str:
        return str(self._card["kind"])

    @property
    def title(self) -> str | None:
        title = self._card.get("title")
        return title if isinstance(title, str) else None

    @property
    def text(self) -> str:
        """A Markdown card's source ("" for other kinds)."""
        text = self._card.get("text")
        return text if isinstance(text, str) else ""

    @property
    def columns(self) -> list[str]:
        found = self._card.get("columns")
        return [str(c) for c in found] if isinstance(found, list) else []

    @property
    def rows(self) -> list[list[Any]]:
        """A table's first rows (cells are JSON scalars; anything else reads as None)."""
        found = self._card.get("rows")
        if not isinstance(found, list):
            return []
        return [
            [c if isinstance(c, _SCALARS) else None for c in r]
            for r in found
            if isinstance(r, list)
        ]

    @property
    def total_rows(self) -> int:
        """How many rows the table had (its card keeps the first ones)."""
        total = self._card.get("total_rows")
        return total if type(total) is int and total >= 0 else len(self.rows)

    def image(self) -> bytes:
        """An image card's PNG bytes."""
        data = self._card.get("png")
        if self.kind != "image" or not isinstance(data, str):
            raise FlowkitError(f"this is a {self.kind} card, not an image")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FlowkitError(f"the image card is damaged ({exc})") from exc

    def __repr__(self) -> str:
        return f"<CardView {self.kind} {self.title or ''}>".replace(" >", ">")


def read_cards(found: Any) -> list[CardView]:
    """The well-formed cards of an attempt record's ``cards``."""
    if not isinstance(found, list):
        return []
    return [CardView(c) for c in found if isinstance(c, dict) and _well_formed(c)]


def _well_formed(card: dict[str, Any]) -> bool:
    kind = card.get("kind")
    if kind == "markdown":
        return isinstance(card.get("text"), str)
    if kind == "table":
        return isinstance(card.get("columns"), list) and isinstance(card.get("rows"), list)
    if kind == "image":
        return isinstance(card.get("png"), str)
    return False

"""Call ids as the pages read them: ``train[3]`` is item 3 of map node ``train``."""

from __future__ import annotations

import re

_ITEM_RE = re.compile(r"(.+)\[[0-9]+\]")


def map_node(call: str) -> str | None:
    """The map node a call is an item of (``train`` for ``train[3]``), or None."""
    item = _ITEM_RE.fullmatch(call)
    return None if item is None else item.group(1)


def graph_node(call: str) -> str:
    """The graph node of a call: its map node for an item, else the call's own id."""
    item = _ITEM_RE.fullmatch(call)
    return call if item is None else item.group(1)


__all__ = ["graph_node", "map_node"]

"""A text log with a memory bound: the head and the tail are kept, the middle is cut.

Sizes are UTF-8 bytes (what the log costs once stored). Up to ``limit`` bytes everything is
kept; past it the first ``limit // 2`` bytes (to a character boundary) and the last
``limit`` minus those are, and :meth:`BoundedLog.text` puts a ``[... N bytes cut ...]`` line
between them.
"""

from __future__ import annotations

from collections import deque


def utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def split_at_byte(text: str, n: int, *, round_up: bool = False) -> tuple[str, str]:
    """``text`` cut after its first ``n`` UTF-8 bytes, at a character boundary (the one
    before byte ``n``, or after it with ``round_up``)."""
    if text.isascii():
        return text[:n], text[n:]
    raw = text.encode("utf-8", "surrogatepass")
    step = 1 if round_up else -1
    while 0 < n < len(raw) and raw[n] & 0xC0 == 0x80:  # inside a multi-byte character
        n += step
    head = raw[:n].decode("utf-8", "surrogatepass")
    return head, text[len(head) :]


class BoundedLog:
    """Append-only text, at most ``limit`` UTF-8 bytes of it kept (see the module)."""

    __slots__ = ("_head", "_head_size", "_limit", "_tail", "_tail_room", "_tail_size", "cut")

    def __init__(self, limit: int) -> None:
        self._limit = max(limit, 2)
        self._head: list[str] = []
        self._head_size = 0
        self._tail: deque[str] | None = None  # None until the head is full
        self._tail_size = 0
        self._tail_room = 0  # what the head left of the limit
        self.cut = 0  # bytes dropped from the middle

    def append(self, text: str) -> None:
        size = utf8_size(text)
        if self._tail is None:
            room = self._limit // 2 - self._head_size
            if size <= room:
                self._head.append(text)
                self._head_size += size
                return
            first, text = split_at_byte(text, room)
            self._head.append(first)
            self._head_size += utf8_size(first)
            self._tail = deque()
            self._tail_room = self._limit - self._head_size
            size = utf8_size(text)
        self._tail.append(text)
        self._tail_size += size
        if self._tail_size > self._tail_room:
            self._trim(self._tail)

    def _trim(self, tail: deque[str]) -> None:
        """Drop the oldest tail text until the tail fits in what the head left."""
        excess = self._tail_size - self._tail_room
        while excess > 0:
            oldest = tail[0]
            size = utf8_size(oldest)
            if size <= excess:
                tail.popleft()
            else:
                dropped, tail[0] = split_at_byte(oldest, excess, round_up=True)
                size = utf8_size(dropped)
            self._tail_size -= size
            self.cut += size
            excess -= size

    def text(self) -> str:
        head = "".join(self._head)
        if self._tail is None:
            return head
        marker = f"\n[... {self.cut} bytes cut ...]\n" if self.cut else ""
        return head + marker + "".join(self._tail)

"""Resource requests a task declares and a backend honours (Ray maps them to
``num_cpus`` / ``num_gpus`` / ``memory``; in-process backends only record them)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {
    "": 1,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
}


@dataclass(frozen=True)
class Resources:
    """What one call of a task needs.

    Example::

        @fk.task(resources=fk.Resources(cpus=2, gpus=0, memory="4Gi"))
        def train(...): ...
    """

    cpus: float = 1
    gpus: float = 0
    memory: str | int | None = None

    def __post_init__(self) -> None:
        if self.cpus < 0 or self.gpus < 0:
            raise ValueError(f"Resources(cpus={self.cpus}, gpus={self.gpus}): counts must be >= 0")
        if self.memory is not None:
            self.memory_bytes  # noqa: B018  (validates the string early)

    @property
    def memory_bytes(self) -> int | None:
        """``memory`` in bytes (``"4Gi"`` → 4294967296), or None when not requested."""
        if self.memory is None:
            return None
        if isinstance(self.memory, int):
            return self.memory
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?)?[bB]?\s*", self.memory)
        if not m:
            raise ValueError(
                f"Resources(memory={self.memory!r}): use bytes or a size like '512Mi' or '4Gi'"
            )
        return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])

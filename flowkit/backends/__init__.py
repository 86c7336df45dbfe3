"""The backends that ship with flowkit: ``local`` (inline, serial), ``threads`` and
``processes`` (the template for writing a backend; imported on first use, since
``multiprocessing`` costs ``import flowkit`` time).

More (Ray, …) are separate distributions registered in the ``flowkit.backends``
entry-point group; see ``docs/backends.md`` for the contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowkit.backends.local import LocalBackend
from flowkit.backends.threads import ThreadsBackend

if TYPE_CHECKING:
    from flowkit.backends.processes import ProcessesBackend


def __getattr__(name: str) -> Any:
    if name == "ProcessesBackend":
        from flowkit.backends.processes import ProcessesBackend

        return ProcessesBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["LocalBackend", "ProcessesBackend", "ThreadsBackend"]

"""The backends that ship with flowkit: ``local`` (inline, serial) and ``threads``.

More (Ray, …) are separate distributions registered in the ``flowkit.backends``
entry-point group; see :mod:`flowkit.backend` for the contract.
"""

from flowkit.backends.local import LocalBackend
from flowkit.backends.threads import ThreadsBackend

__all__ = ["LocalBackend", "ThreadsBackend"]

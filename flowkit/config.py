"""Defaults read from the environment.

* ``FLOWKIT_STORE`` — the store URL used when ``fk.run`` gets no ``store=`` (default
  ``./.flowkit``, resolved against the working directory when the store is opened).
"""

from __future__ import annotations

import os

DEFAULT_STORE = "./.flowkit"


def default_store_url() -> str:
    """``$FLOWKIT_STORE`` if set and non-empty, else ``./.flowkit``."""
    return os.environ.get("FLOWKIT_STORE") or DEFAULT_STORE


__all__ = ["DEFAULT_STORE", "default_store_url"]

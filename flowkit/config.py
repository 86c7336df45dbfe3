"""Defaults read from the environment.

* ``FLOWKIT_STORE`` — the store URL used when ``fk.run`` gets no ``store=`` (default
  ``./.flowkit``, resolved against the working directory when the store is opened).
* ``FLOWKIT_STORE_KEY`` — the key that signs and verifies a store's documents and objects
  when ``fk.Store`` gets no ``key=`` (unset or empty: the store is not signed).
* ``FLOWKIT_STORE_TIMEOUT`` — seconds a store operation may wait for a remote endpoint
  (default 60) when ``fk.Store`` gets no ``timeout=``.
"""

from __future__ import annotations

import math
import os

from flowkit.errors import StoreError

DEFAULT_STORE = "./.flowkit"
DEFAULT_STORE_TIMEOUT = 60.0


def default_store_url() -> str:
    """``$FLOWKIT_STORE`` if set and non-empty, else ``./.flowkit``."""
    return os.environ.get("FLOWKIT_STORE") or DEFAULT_STORE


def store_key() -> bytes | None:
    """``$FLOWKIT_STORE_KEY`` as UTF-8 bytes, or None when it is unset or empty."""
    text = os.environ.get("FLOWKIT_STORE_KEY")
    return text.encode("utf-8") if text else None


def store_timeout() -> float:
    """``$FLOWKIT_STORE_TIMEOUT`` in seconds (default 60); a bad value is a StoreError."""
    text = os.environ.get("FLOWKIT_STORE_TIMEOUT")
    if not text:
        return DEFAULT_STORE_TIMEOUT
    try:
        return check_timeout(float(text))
    except (ValueError, StoreError) as exc:
        raise StoreError(
            f"FLOWKIT_STORE_TIMEOUT={text!r} is not a number of seconds above 0; "
            "set it to e.g. 60, or unset it for the default"
        ) from exc


def check_timeout(seconds: float) -> float:
    """``seconds`` as a float if it is a finite number above 0, else a StoreError."""
    value = float(seconds)
    if not (math.isfinite(value) and value > 0):
        raise StoreError(f"store timeout {seconds!r}: give a number of seconds above 0")
    return value


__all__ = [
    "DEFAULT_STORE",
    "DEFAULT_STORE_TIMEOUT",
    "check_timeout",
    "default_store_url",
    "store_key",
    "store_timeout",
]

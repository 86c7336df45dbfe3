"""Stable names for code objects: the same name whether a script runs as ``__main__`` or is
imported (``flowkit run flow.py`` imports ``flow.py`` as module ``flow``).

Cache keys and stored class references use these names, so ``python flow.py`` and
``flowkit run flow.py`` share one cache and a value stored by one is read as an instance of the
other's class. A script run as ``__main__`` is named by its file's stem; an interactive
``__main__`` (a notebook, ``python -c``) keeps ``__main__``.

Pure functions over ``sys.modules``; no flowkit imports.
"""

from __future__ import annotations

import os
import sys
from typing import Any

MAIN = "__main__"

# Set in a worker process (a Ray worker) that runs a driver's code: the driver's ``__main__``
# functions and classes arrive there by value, named after the driver's script, not the worker's.
_adopted_main: str | None = None


def adopt_main(name: str) -> None:
    """Name ``__main__`` as ``name`` in this process: the main module of the driver whose
    code this worker runs (its ``__main__`` classes came by value and keep that name)."""
    global _adopted_main
    _adopted_main = name


def main_is_adopted() -> bool:
    """True in a worker whose ``__main__`` code came by value from a driver."""
    return _adopted_main is not None


def main_module_name() -> str:
    """The name ``__main__`` stands for: the stem of the script file, else ``__main__``."""
    if _adopted_main is not None:
        return _adopted_main
    main = sys.modules.get(MAIN)
    path = getattr(main, "__file__", None)
    if not isinstance(path, str):
        return MAIN
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if isinstance(name, str) and name and name != MAIN:
        return name  # python -m pkg.mod: the module's own dotted name
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem if stem.isidentifier() else MAIN


def module_name(module: str) -> str:
    """``module`` with ``__main__`` replaced by :func:`main_module_name`."""
    return main_module_name() if module == MAIN else module


def qualified_name(obj: Any) -> str:
    """``module.qualname`` of a function or class, with ``__main__`` normalised."""
    module = getattr(obj, "__module__", None) or "?"
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "?")
    return f"{module_name(module)}.{qualname}"


def class_ref(cls: type) -> str:
    """``module:qualname`` of a class, with ``__main__`` normalised (stored in values)."""
    return f"{module_name(cls.__module__)}:{cls.__qualname__}"


__all__ = [
    "MAIN",
    "adopt_main",
    "class_ref",
    "main_is_adopted",
    "main_module_name",
    "module_name",
    "qualified_name",
]

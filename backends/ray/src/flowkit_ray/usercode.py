"""Shipping the user's own code to Ray workers that do not have it installed.

Policy (``user_modules="auto"``, the default): every top-level module imported in the
driver that is *not* installed -- not the standard library, not in a distribution known to
``importlib.metadata`` (editable installs count as installed), not under the
interpreter's prefixes -- is registered with Ray's cloudpickle
(``register_pickle_by_value``). Functions and classes from those modules then travel
inside the pickled task, as functions from a script's ``__main__`` always do, so a
workflow in ``my_pipeline.py`` next to ``helpers.py`` runs on a cluster that has neither.
Modules under a ``runtime_env`` ``working_dir`` or ``py_modules`` entry are left alone:
Ray puts those on the workers' path itself.

Registration is process-wide (it is cloudpickle's registry) and is never undone. Pass
``user_modules=[...]`` to name the modules yourself, or ``None`` to turn this off (then
use ``runtime_env={"working_dir": ...}``).
"""

from __future__ import annotations

import logging
import os
import sys
import sysconfig
from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib.metadata import packages_distributions
from types import ModuleType

import ray.cloudpickle

# Ray's vendored cloudpickle is untyped.
_register_by_value: Callable[[ModuleType], None] = ray.cloudpickle.register_pickle_by_value

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _installed_top_level() -> frozenset[str]:
    return frozenset(packages_distributions())


@lru_cache(maxsize=1)
def _installed_dirs() -> tuple[str, ...]:
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.add(path)
    return tuple(os.path.realpath(d) + os.sep for d in dirs if d)


def _module_path(module: ModuleType) -> str | None:
    file = getattr(module, "__file__", None)
    if isinstance(file, str):
        return os.path.realpath(file)
    paths = list(getattr(module, "__path__", []) or [])  # namespace package
    return os.path.realpath(paths[0]) + os.sep if paths else None


def is_user_module(name: str, module: ModuleType, shipped_dirs: Iterable[str] = ()) -> bool:
    """True for a top-level module the cluster cannot be expected to import."""
    if name.startswith("__") or name in sys.builtin_module_names:
        return False  # __main__ (and aliases like __mp_main__) already travel by value
    if name in sys.stdlib_module_names:
        return False
    if name in _installed_top_level():
        return False
    path = _module_path(module)
    if path is None:
        return False
    if path.startswith(_installed_dirs()):
        return False
    return not any(path.startswith(os.path.realpath(d) + os.sep) for d in shipped_dirs)


class UserModules:
    """Registers user modules by value, scanning ``sys.modules`` again only when it grew."""

    def __init__(self, setting: str | Iterable[str] | None, shipped_dirs: Iterable[str] = ()):
        self.auto = setting == "auto"
        self.named = [] if setting is None or isinstance(setting, str) else list(setting)
        self.shipped_dirs = tuple(shipped_dirs)
        self.registered: set[str] = set()
        self._seen: set[str] = set()
        self._n_modules = -1

    def refresh(self) -> None:
        """Register what is new since the last call (cheap when nothing was imported)."""
        for name in self.named:
            self._register(name)
        if not self.auto or len(sys.modules) == self._n_modules:
            return
        self._n_modules = len(sys.modules)
        for full_name, module in list(sys.modules.items()):
            name = full_name.partition(".")[0]
            if name in self._seen or module is None:
                continue
            self._seen.add(name)
            top = sys.modules.get(name)
            if top is not None and is_user_module(name, top, self.shipped_dirs):
                self._register(name)

    def _register(self, name: str) -> None:
        if name in self.registered:
            return
        module = sys.modules.get(name)
        if module is None:
            return  # named but not imported (yet): nothing refers to it
        try:
            _register_by_value(module)
        except ValueError as e:
            logger.debug("cannot ship %s by value: %s", name, e)
            return
        self.registered.add(name)
        logger.debug("shipping user module %s to Ray workers by value", name)

"""Where code lives: user code, the standard library, or an installed distribution.

Policy: a file under a site-packages / dist-packages directory (or sysconfig's purelib/platlib)
is installed code, counted by its distribution's version; a file under the standard library
directories (or a frozen / builtin module) is stdlib, counted as ``python==X.Y``; flowkit itself
counts as installed even when installed editable. Everything else is user code: scripts,
``__main__``, notebook cells, code generated with ``exec`` (``<string>`` file names), the user's own
packages and editable installs. Results are cached per path and per top-level package.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import types
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

# Packages that count as installed code even when installed editable (flowkit itself).
INSTALLED_TOPLEVELS = frozenset({"flowkit", "flowkit_ray"})
PYTHON_VERSION = f"python=={sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class Origin:
    """Where a module or function comes from: ``kind`` is "user", "stdlib" or "installed"."""

    kind: str
    top: str = ""  # the top-level import name, for stdlib and installed code


USER = Origin("user")


def _norm(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


@cache
def _roots() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Installed-code roots, then stdlib roots; computed on first use, not at import."""
    import sysconfig  # with its config data: not worth paying in `import flowkit`

    base = {
        "base": sys.base_prefix,
        "platbase": sys.base_exec_prefix,
        "installed_base": sys.base_prefix,
        "installed_platbase": sys.base_exec_prefix,
    }
    stdlib = {sysconfig.get_path(key, vars=base) for key in ("stdlib", "platstdlib")}
    stdlib.add(os.path.dirname(os.__file__))
    site = {sysconfig.get_path(key) for key in ("purelib", "platlib")}
    return (
        ("installed", tuple(sorted(_norm(d) for d in site if d))),
        ("stdlib", tuple(sorted(_norm(d) for d in stdlib if d))),
    )


_lock = threading.Lock()
_path_origins: dict[str, Origin] = {}
_versions: dict[str, str] = {}
_packages_distributions: Mapping[str, list[str]] | None = None


def _installed_dirs() -> dict[str, str]:
    """Directories of packages that always count as installed (flowkit), by top-level name."""
    found: dict[str, str] = {}
    for top in INSTALLED_TOPLEVELS:
        path = getattr(sys.modules.get(top), "__file__", None)
        if path:
            found[top] = _norm(os.path.dirname(path))
    return found


def _first_part_under(path: str, root: str) -> str | None:
    """The first path part below ``root`` if ``path`` is inside it."""
    if not path.startswith(root + os.sep):
        return None
    return path[len(root) + 1 :].split(os.sep, 1)[0]


def _top(part: str) -> str:
    return part.split(".", 1)[0]


def path_origin(filename: str) -> Origin:
    """Classify a source file (a function's ``co_filename`` or a module's ``__file__``)."""
    if filename.startswith("<frozen "):
        return Origin("stdlib", _top(filename[len("<frozen ") : -1]))
    if not filename or filename.startswith("<"):
        return USER  # exec'd or generated code (notebook cells, dataclass methods): hash it
    with _lock:
        cached = _path_origins.get(filename)
    if cached is None:
        cached = _classify(_norm(filename))
        with _lock:
            _path_origins[filename] = cached
    return cached


def _classify(path: str) -> Origin:
    for top, root in _installed_dirs().items():
        if path == root or path.startswith(root + os.sep):
            return Origin("installed", top)
    parts = path.split(os.sep)
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            idx = len(parts) - 1 - parts[::-1].index(marker)
            return Origin("installed", _top(parts[idx + 1]) if idx + 1 < len(parts) else "")
    for kind, roots in _roots():
        for root in roots:
            part = _first_part_under(path, root)
            if part is not None:
                return Origin(kind, _top(part))
    return USER


def function_origin(fn: types.FunctionType) -> Origin:
    """By the file of the function's code: ``functools.wraps`` copies ``__module__``, not code."""
    return path_origin(fn.__code__.co_filename)


def module_origin(module: types.ModuleType) -> Origin:
    name = module.__name__
    top = name.split(".", 1)[0]
    if top in INSTALLED_TOPLEVELS:
        return Origin("installed", top)
    path = getattr(module, "__file__", None)
    if not path:
        paths = list(getattr(module, "__path__", []) or [])  # a namespace package
        path = paths[0] if paths else None
    if path:
        origin = path_origin(path)
        # Prefer the import name: a file path cannot tell `sklearn` from `scikit_learn`.
        return origin if origin.kind == "user" else Origin(origin.kind, top)
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return Origin("stdlib", top)
    return USER  # __main__ in a notebook, modules built at run time


def module_origin_by_name(name: str) -> Origin:
    module = sys.modules.get(name)
    return module_origin(module) if isinstance(module, types.ModuleType) else USER


def spec_origin(top: str) -> Origin | None:
    """The origin of a top-level module that may not be imported yet (nothing is executed)."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if top in INSTALLED_TOPLEVELS:
        return Origin("installed", top)
    if spec.origin in ("built-in", "frozen"):
        return Origin("stdlib", top)
    locations = list(spec.submodule_search_locations or [])
    path = spec.origin or (locations[0] if locations else "")
    origin = path_origin(path) if path else USER
    return origin if origin.kind == "user" else Origin(origin.kind, top)


def version(origin: Origin) -> str:
    """``"dist==version"`` for installed code, ``"python==X.Y"`` for the standard library."""
    return PYTHON_VERSION if origin.kind == "stdlib" else _distribution_version(origin.top)


def _distribution_version(top: str) -> str:
    global _packages_distributions
    with _lock:
        cached = _versions.get(top)
    if cached is not None:
        return cached
    # Imported here, not at module level: importlib.metadata (and the email package it
    # pulls in) is a large share of `import flowkit` (benchmarks/RESULTS.md, "Design
    # measurements"), and only cached runs need it.
    import importlib.metadata

    try:
        # Fast path: the import name is the distribution name (numpy, pandas, ray, flowkit).
        result = f"{top}=={importlib.metadata.version(top)}"
    except (importlib.metadata.PackageNotFoundError, ValueError):
        if _packages_distributions is None:
            # One scan of every installed distribution (~0.1 s), once per process.
            _packages_distributions = importlib.metadata.packages_distributions()
        dists = sorted(set(_packages_distributions.get(top, [])))
        if dists:
            result = ", ".join(f"{d}=={importlib.metadata.version(d)}" for d in dists)
        else:
            found = getattr(sys.modules.get(top), "__version__", None)
            result = f"{top}=={found}" if isinstance(found, str) else f"{top} (unversioned)"
    with _lock:
        _versions[top] = result
    return result

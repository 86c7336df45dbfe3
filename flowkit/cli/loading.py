"""Load ``FILE.py[:WORKFLOW]`` for the command line.

Policy:

* The file is imported as a module named after its stem (``pipelines/train.py`` ->
  ``train``), not as ``__main__``, so its ``if __name__ == "__main__":`` block does not run.
  If that name is taken by another module already imported (other than one this loader
  imported earlier), a private name is used. The
  module is registered in ``sys.modules`` while it executes (dataclasses and pickling by
  reference need that).
* The file's folder goes first on ``sys.path``, as ``python FILE.py`` would do, so sibling
  imports work. Modules previously imported from that same folder are dropped from
  ``sys.modules`` first, so calling the CLI twice in one process sees edited files.
* ``:WORKFLOW`` names a workflow by attribute or by ``@fk.workflow(name=...)``. Without it,
  the file must define exactly one workflow (workflows merely imported into the file do not
  count); otherwise the error lists the choices.
* Every problem is a :class:`~flowkit.cli.common.UsageError` with one line: a missing file,
  a syntax error (``file:line``), an exception while importing (with the innermost
  ``file:line`` in the user's file), a flowkit error raised by a decorator (type mismatch,
  graph error), an unknown workflow name.
* **Shadowed modules.** With the file's folder first on ``sys.path``, a file there named like a
  standard-library module (``numbers.py``; ``sys.stdlib_module_names``) or an installed one
  (``attr.py``, ``pyarrow.py``) would be imported instead of the real module by flowkit and by
  every library, and fail far from its cause. Such a file is refused with a
  :class:`ShadowedModuleError` naming it, the module it hides and who uses that module:

  - at once, when the module is already imported from the folder, or when flowkit itself
    imports the module (possibly later, at run time: ``numbers``, ``pyarrow``…);
  - otherwise when anything imports it, during the load or later in the run (an import hook
    watches exactly those names; a module that nobody imports, such as an unused
    ``calendar.py``, is harmless and allowed).

  A workflow file whose own name is such a module is loaded under a private name instead.
  A file that is the real module (an editable install of the user's own package) is not a
  shadow: only files the folder adds in front of another location count.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from types import FrameType, ModuleType
from typing import Any

from flowkit.cli.common import UsageError
from flowkit.codehash import origins
from flowkit.errors import FlowkitError
from flowkit.workflow import WorkflowDef


@dataclass(frozen=True)
class Target:
    """A parsed ``FILE.py[:WORKFLOW]``."""

    path: str
    workflow: str | None


class LoadError(UsageError):
    """The file could not be loaded; ``cause`` is the original exception, if any."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class ShadowedModuleError(LoadError):
    """A file beside the workflow hides a standard-library or installed module of that name."""


def parse_target(spec: str) -> Target:
    """Split ``FILE.py:WORKFLOW``; the part after the last ``:`` counts only if it is a name."""
    head, sep, tail = spec.rpartition(":")
    if sep and head and tail.isidentifier():
        return Target(head, tail)
    return Target(spec, None)


def load_module(path: str) -> ModuleType:
    """Import the Python file at ``path`` as a fresh module (see the module docstring)."""
    if not os.path.isfile(path):
        where = "a folder, not a file" if os.path.isdir(path) else "not found"
        raise LoadError(f"{path}: {where}; give the path of a Python file defining a workflow")
    full = os.path.abspath(path)
    folder = os.path.dirname(full)
    shown_folder = os.path.dirname(path)
    _refuse_imported_shadows(folder, shown_folder, "already imported")
    _forget_modules_from(folder)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    shadows = _watch_shadows(folder, shown_folder)
    name = _module_name(full, shadows)
    spec = importlib.util.spec_from_file_location(name, full)
    if spec is None or spec.loader is None:
        raise LoadError(f"{path}: cannot be imported as a Python module (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        _exec_checked(spec.loader, module, folder, shown_folder, f"imported while loading {path}")
    except ShadowedModuleError:
        sys.modules.pop(name, None)
        raise
    except SyntaxError as e:
        sys.modules.pop(name, None)
        # the path as the user wrote it when the error is in the file itself
        shown = path if not e.filename or os.path.abspath(e.filename) == full else e.filename
        where = f"{shown}:{e.lineno}" if e.lineno else shown
        raise LoadError(f"syntax error in {where}: {e.msg}", e) from e
    except FlowkitError as e:
        sys.modules.pop(name, None)
        raise LoadError(f"{path}: {type(e).__name__}: {e}", e) from e
    except SystemExit as e:
        sys.modules.pop(name, None)
        raise LoadError(
            f"{path} called sys.exit({e.code!r}) while being imported; move that call under "
            '`if __name__ == "__main__":`',
            e,
        ) from e
    except Exception as e:
        sys.modules.pop(name, None)
        where = _innermost_user_frame(e, full) or path
        raise LoadError(
            f"error while importing {path} (at {where}): {type(e).__name__}: {e}", e
        ) from e
    return module


def _exec_checked(
    loader: importlib.abc.Loader, module: ModuleType, folder: str, shown: str, when: str
) -> None:
    """Execute ``module``; a shadowing import is reported as the cause of whatever failed."""
    try:
        loader.exec_module(module)
    except Exception:
        _check_shadows(folder, shown, when)  # even when the importer wrapped the refusal
        raise
    _check_shadows(folder, shown, when)  # even when the importer swallowed it


def find_workflows(module: ModuleType) -> dict[str, WorkflowDef[..., Any]]:
    """Workflows defined in ``module``, by attribute name, in definition order."""
    found: dict[str, WorkflowDef[..., Any]] = {}
    seen: set[int] = set()
    for attr, value in vars(module).items():
        if isinstance(value, WorkflowDef) and id(value) not in seen:
            if getattr(value.fn, "__module__", None) == module.__name__:
                found[attr] = value
                seen.add(id(value))
    return found


def select_workflow(module: ModuleType, target: Target) -> WorkflowDef[..., Any]:
    """The workflow ``target`` names in ``module`` (or the only one defined there)."""
    defined = find_workflows(module)
    if target.workflow is None:
        if len(defined) == 1:
            return next(iter(defined.values()))
        if not defined:
            raise LoadError(
                f"{target.path} defines no workflow (a function decorated with @fk.workflow)"
            )
        raise LoadError(
            f"{target.path} defines {len(defined)} workflows; pick one with "
            f"{target.path}:NAME, one of: {', '.join(defined)}"
        )
    value = getattr(module, target.workflow, None)
    if isinstance(value, WorkflowDef):
        return value
    for wf in defined.values():
        if wf.name == target.workflow:
            return wf
    choices = ", ".join(defined) if defined else "(none)"
    raise LoadError(f"{target.path} has no workflow {target.workflow!r}; workflows: {choices}")


def load_workflow(spec: str) -> WorkflowDef[..., Any]:
    """Load ``FILE.py[:WORKFLOW]`` and return the workflow."""
    target = parse_target(spec)
    return select_workflow(load_module(target.path), target)


# Module names this loader gave out (a later load may take such a name over).
_GIVEN: set[str] = set()


def _module_name(full: str, shadows: Sequence[str]) -> str:
    stem = os.path.splitext(os.path.basename(full))[0]
    existing = sys.modules.get(stem)
    # `flowkit run calendar.py`: the name `calendar` must keep meaning the real module.
    usable = stem.isidentifier() and stem not in shadows
    if usable and (existing is None or stem in _GIVEN or _file_of(existing) == full):
        _GIVEN.add(stem)
        return stem
    safe = "".join(c if c.isalnum() else "_" for c in stem)
    return f"_flowkit_cli_{safe}"


def _file_of(module: ModuleType) -> str | None:
    f = getattr(module, "__file__", None)
    return os.path.abspath(f) if isinstance(f, str) else None


def _forget_modules_from(folder: str) -> None:
    """Drop top-level modules imported from ``folder`` so they are read again."""
    for name, module in list(sys.modules.items()):
        f = _file_of(module) if module is not None else None
        if f is not None and os.path.dirname(f) == folder and "." not in name:
            del sys.modules[name]


def _innermost_user_frame(e: BaseException, full: str) -> str | None:
    """``file:line`` of the deepest frame in the loaded file (or any file of its folder)."""
    folder = os.path.dirname(full)
    best = None
    for frame in traceback.extract_tb(e.__traceback__):
        if os.path.dirname(os.path.abspath(frame.filename)) == folder:
            best = f"{frame.filename}:{frame.lineno}"
    return best


# ---- shadowed modules ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Shadow:
    """A module file in the workflow's folder that hides a real module of the same name."""

    name: str
    file: str  # absolute path of the user's file (a package's __init__.py)
    shown: str  # the same, as the user spelled the workflow's folder
    real: str  # where the real module is
    what: str  # "the standard-library module `numbers`", "the installed module `attr` (…)"

    def message(self, usage: str) -> str:
        return (
            f"{self.shown} shadows {self.what}, {usage}: Python imports your file instead of "
            f"{self.real}; rename your file"
        )


class _ShadowGuard(importlib.abc.MetaPathFinder):
    """Refuses imports of the shadowing files of loaded workflows' folders.

    First on ``sys.meta_path``, it costs one dictionary look-up per import of a module that is
    not imported yet. Everything a message needs is computed when the folder is scanned: with
    the folder first on ``sys.path``, importing anything (``importlib.metadata``…) could load
    another of its files.
    """

    def __init__(self) -> None:
        self.watched: dict[str, _Shadow] = {}
        self.refused: list[tuple[_Shadow, str]] = []

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        shadow = self.watched.get(fullname) if path is None else None
        if shadow is None:
            return None
        folder = _package_folder(shadow.file)
        if folder not in sys.path or _folder_file(fullname, folder) != shadow.file:
            return None  # the folder left sys.path, or the file is gone
        usage = f"imported by {_importer(shadow)}"
        self.refused.append((shadow, usage))
        raise ShadowedModuleError(shadow.message(usage))

    def raise_refused(self, folder: str) -> None:
        """Raise for an import refused while loading, in case the importer swallowed it."""
        refused, self.refused = self.refused, []
        for shadow, usage in refused:
            if _package_folder(shadow.file) == folder:
                raise ShadowedModuleError(shadow.message(usage))


_GUARD = _ShadowGuard()


def _watch_shadows(folder: str, shown: str) -> list[str]:
    """Find the folder's shadowing files; refuse those flowkit imports, watch the others.

    Returns their names. Runs with the folder off ``sys.path``, so that what it imports itself
    and what it resolves are the real modules.
    """
    if _GUARD not in sys.meta_path:
        sys.meta_path.insert(0, _GUARD)
    for name in [n for n, s in _GUARD.watched.items() if _package_folder(s.file) == folder]:
        del _GUARD.watched[name]
    with _off_path(folder):
        shadows = [
            shadow
            for name in _module_names_in(folder)
            if name not in sys.modules  # imported from elsewhere: the folder cannot hide it
            for shadow in [_shadow(name, folder, shown)]
            if shadow is not None
        ]
        for shadow in shadows:
            if shadow.name in _flowkit_imports():
                raise ShadowedModuleError(shadow.message("used by flowkit"))
    for shadow in shadows:
        _GUARD.watched[shadow.name] = shadow
    return [shadow.name for shadow in shadows]


def _check_shadows(folder: str, shown: str, when: str) -> None:
    _GUARD.raise_refused(folder)
    _refuse_imported_shadows(folder, shown, when)


def _refuse_imported_shadows(folder: str, shown: str, when: str) -> None:
    """Refuse a module imported from ``folder`` under the name of a real module."""
    imported = [
        (name, f)
        for name, module in list(sys.modules.items())
        if "." not in name and module is not None
        for f in [_file_of(module)]
        if f is not None and _package_folder(f) == folder
    ]
    if not imported:
        return
    with _off_path(folder):
        for name, f in imported:
            shadow = _shadow(name, folder, shown, file=f)
            if shadow is not None:
                raise ShadowedModuleError(shadow.message(when))


def _shadow(name: str, folder: str, shown: str, file: str | None = None) -> _Shadow | None:
    """The folder's module ``name`` as a shadow, if it hides a standard-library or installed
    module. Call with the folder off ``sys.path``."""
    file = file or _folder_file(name, folder)
    real = _origin_file(_resolve(name)) if file else None
    if file is None or real is None or _norm(real) == _norm(file):
        return None  # built-in or frozen (those always win), absent, or the same file
    origin = origins.path_origin(real)
    if origin.kind == "stdlib" and name in sys.stdlib_module_names:
        what = f"the standard-library module `{name}`"
    elif origin.kind == "installed":
        what = f"the installed module `{name}` ({origins.version(origin)})"
    else:
        return None  # another user module: the folder's is the one meant
    shown_file = os.path.join(shown, os.path.relpath(_package_root(file), folder))
    return _Shadow(name, file, shown_file, _package_root(real), what)


def _resolve(name: str) -> ModuleSpec | None:
    """What ``import name`` would load now, regardless of ``sys.modules`` (nothing runs)."""
    for finder in list(sys.meta_path):
        find = getattr(finder, "find_spec", None)
        if finder is not _GUARD and find is not None:
            spec = find(name, None)
            if spec is not None:
                return spec  # type: ignore[no-any-return]
    return None


@contextlib.contextmanager
def _off_path(folder: str) -> Iterator[None]:
    """``sys.path`` without ``folder`` (nor ``''`` when it is the working directory)."""
    saved = list(sys.path)
    sys.path[:] = [p for p in saved if _norm(p or os.curdir) != _norm(folder)]
    try:
        yield
    finally:
        sys.path[:] = saved


def _folder_file(name: str, folder: str) -> str | None:
    """The file ``import name`` would load from ``folder`` alone (a package's __init__)."""
    try:
        spec = importlib.machinery.PathFinder.find_spec(name, [folder])
    except (ImportError, ValueError):
        return None
    return _origin_file(spec)


def _module_names_in(folder: str) -> list[str]:
    """Top-level module names the folder provides: files with an import suffix, packages."""
    suffixes = tuple(importlib.machinery.all_suffixes())
    names: set[str] = set()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        if entry.is_file() and entry.name.endswith(suffixes):
            names.add(entry.name.split(".", 1)[0])
        elif entry.is_dir() and os.path.exists(os.path.join(entry.path, "__init__.py")):
            names.add(entry.name)
    return sorted(n for n in names if n.isidentifier())


_IMPORT_LINE = re.compile(
    r"^[ \t]*(?:from[ \t]+([A-Za-z_]\w*)[\w.]*[ \t]+import\b|import[ \t]+([\w., \t]+))",
    re.MULTILINE,
)


@functools.cache
def _flowkit_imports() -> frozenset[str]:
    """Top-level modules that flowkit's own code imports, at import time or later at run time.

    Read from its source (a few ms, once, and only when a folder has a shadowing file).
    """
    names: set[str] = set()
    for top in sorted(origins.INSTALLED_TOPLEVELS):
        try:
            spec = importlib.util.find_spec(top)  # not imported: flowkit_ray may be absent
        except (ImportError, ValueError):
            continue
        for root in (spec.submodule_search_locations or []) if spec else []:
            for dirpath, _dirs, files in os.walk(root):
                for filename in files:
                    if filename.endswith(".py"):
                        names.update(_imports_in(os.path.join(dirpath, filename)))
    return frozenset(names)


def _imports_in(path: str) -> set[str]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return set()
    names: set[str] = set()
    for match in _IMPORT_LINE.finditer(text):
        if match.group(1):
            names.add(match.group(1))
        else:  # import a.b as c, d
            parts = (p.split() for p in match.group(2).split(","))
            names.update(words[0].split(".")[0] for words in parts if words)
    return names


def _importer(shadow: _Shadow) -> str:
    """Who is importing: the innermost frame outside the import machinery."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        module = frame.f_globals.get("__name__")
        machinery = filename.startswith("<frozen importlib") or (
            isinstance(module, str) and module.split(".")[0] == "importlib"
        )
        if not machinery:
            if _package_folder(os.path.abspath(filename)) == _package_folder(shadow.file):
                return os.path.join(os.path.dirname(shadow.shown), os.path.basename(filename))
            return f"`{module}`" if isinstance(module, str) else filename
        frame = frame.f_back
    return "an unknown module"


def _origin_file(spec: ModuleSpec | None) -> str | None:
    """The file a spec loads (a package's ``__init__``), or ``None`` (built-in, namespace)."""
    if spec is None or not spec.has_location or not spec.origin:
        return None
    return os.path.abspath(spec.origin)


def _package_root(file: str) -> str:
    """A package's folder for its ``__init__`` file, else the file itself."""
    base = os.path.basename(file)
    return os.path.dirname(file) if base.split(".", 1)[0] == "__init__" else file


def _package_folder(file: str) -> str:
    """The folder a top-level module file (or package ``__init__``) is imported from."""
    return os.path.dirname(_package_root(file))


def _norm(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))

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
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from flowkit.cli.common import UsageError
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
    _forget_modules_from(folder)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = _module_name(full)
    spec = importlib.util.spec_from_file_location(name, full)
    if spec is None or spec.loader is None:
        raise LoadError(f"{path}: cannot be imported as a Python module (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
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


def _module_name(full: str) -> str:
    stem = os.path.splitext(os.path.basename(full))[0]
    existing = sys.modules.get(stem)
    if stem.isidentifier() and (existing is None or stem in _GIVEN or _file_of(existing) == full):
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

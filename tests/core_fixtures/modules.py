"""Load a throw-away user module written into a temporary folder.

Tests that need exact ``file:line`` locations, string annotations or ``from __future__ import
annotations`` write the user's code to a real file and import it, like a user script would be.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
import uuid
from pathlib import Path
from types import ModuleType


def load_module(folder: Path, source: str, stem: str = "user_flow") -> ModuleType:
    """Write ``source`` (dedented) to ``folder/<stem>.py`` and import it under a unique name."""
    path = folder / f"{stem}.py"
    path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    name = f"{stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def line_of(source: str, marker: str) -> int:
    """1-based line number, in the file :func:`load_module` writes, of ``marker``'s first line."""
    lines = textwrap.dedent(source).lstrip("\n").splitlines()
    return next(i for i, line in enumerate(lines, 1) if marker in line)

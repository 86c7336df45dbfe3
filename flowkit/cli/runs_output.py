"""How ``flowkit runs output`` hands a stored value to the shell.

A value that plain JSON can hold (``None``, numbers, strings, lists, tuples and dicts of them;
no NaN) is JSON: on stdout, or in ``-o FILE``. Anything else needs ``-o FILE``: bytes are
written as they are, an ``fk.File`` as a copy of the file, an ``fk.Directory`` as a copy of
the folder, and any other value in the format flowkit stores it in (``npy``, ``arrow``,
``pandas``, ``json``, ``pickle``), with a note on stderr saying how to read it back.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from flowkit import serialize
from flowkit.cli.common import UsageError
from flowkit.files import Directory, File

# How to read a file written in one of flowkit's formats with the format's own library.
_READ_BACK = {
    "npy": "numpy.load(FILE)",
    "arrow": "pyarrow.ipc.open_stream(FILE).read_all()",
    "pandas": "pyarrow.ipc.open_stream(FILE).read_pandas()",
}


def json_text(value: Any) -> str | None:
    """``value`` as indented JSON, or None when plain JSON cannot hold it as it is."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None


def kind(value: Any) -> str:
    """What a value is, for messages: ``a DataFrame (pandas.core.frame)``."""
    t = type(value)
    where = "" if t.__module__ == "builtins" else f" ({t.__module__})"
    return f"a {t.__qualname__}{where}"


def write_value(value: Any, path: str) -> str:
    """Write ``value`` to ``path`` (see the module docstring); returns what was written."""
    text = json_text(value)
    if text is not None:
        _write_bytes(path, (text + "\n").encode("utf-8"))
        return f"JSON to {path}"
    if isinstance(value, (bytes, bytearray)):
        _write_bytes(path, bytes(value))
        return f"{len(value)} bytes to {path}"
    if isinstance(value, File):
        shutil.copyfile(value.path, path)
        return f"a copy of the file {value.name} to {path}"
    if isinstance(value, Directory):
        if os.path.lexists(path):
            raise UsageError(f"{path} exists: -o names the folder to create for a Directory")
        _copy_tree(value.path, path)
        return f"a copy of the folder {value.name} to {path}"
    with open(path, "wb") as f:
        fmt = serialize.dump(value, f, what=kind(value))
    native = _READ_BACK.get(fmt)
    how = f"{native}, or " if native else ""
    return (
        f"{kind(value)} to {path} in flowkit's `{fmt}` format; read it back with {how}"
        f"flowkit.serialize.load({fmt!r}, open(FILE, 'rb').read())"
    )


def _copy_tree(source: str, target: str) -> None:
    """Copy the files' bytes only: the unpacked copy in the store is read-only, the user's
    copy should not be."""
    for folder, _, names in os.walk(source):
        here = os.path.join(target, os.path.relpath(folder, source))
        os.makedirs(here, exist_ok=True)
        for name in names:
            shutil.copyfile(os.path.join(folder, name), os.path.join(here, name))


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


__all__ = ["json_text", "kind", "write_value"]

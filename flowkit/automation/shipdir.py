"""What a Ray Job takes along: the workflow's folder as the runtime env's ``working_dir``.

Ray zips the folder, uploads it through the job server and unpacks it as the job driver's
working directory (and on every worker of the job), so the workflow file and the modules
beside it import on the cluster as they do here. Left out, as ``excludes`` patterns:

* flowkit stores, virtual envs, VCS folders and caches (:data:`EXCLUDED`), and the run's own
  store when it lies inside the folder (``./.flowkit``: it stays where it is, the cluster
  writes to it by its absolute path);
* files over :data:`LARGE_BYTES` (data sets, checkpoints): each is named in a warning, as
  they belong in the store or on shared storage, and Ray refuses a package over 500 MiB.

The walk skips excluded folders, so a large ``.venv`` costs nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Folder names never shipped (wherever they are in the tree).
EXCLUDED = (
    ".flowkit",
    ".venv",
    "venv",
    ".git",
    ".hg",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".ipynb_checkpoints",
    "node_modules",
)
#: Files larger than this stay behind (with a warning naming them).
LARGE_BYTES = 16 * 2**20


@dataclass(frozen=True)
class Shipment:
    """The ``working_dir`` and ``excludes`` of a job's runtime env, and the large files left."""

    working_dir: str
    excludes: tuple[str, ...]
    left_large: tuple[str, ...]

    def runtime_env(self) -> dict[str, object]:
        return {"working_dir": self.working_dir, "excludes": list(self.excludes)}


def plan(working_dir: str, *, keep_out: tuple[str, ...] = ()) -> Shipment:
    """What to ship of ``working_dir``; ``keep_out``: absolute paths to leave out too (the
    run's store when it is inside the folder)."""
    root = os.path.abspath(working_dir)
    excludes = list(EXCLUDED)  # a name without a slash matches at any depth (gitignore)
    for path in keep_out:
        rel = os.path.relpath(os.path.abspath(path), root)
        if rel != os.curdir and not rel.startswith(os.pardir):
            excludes.append(_anchored(rel))
    skip = {os.path.abspath(p) for p in keep_out}
    large = tuple(_large_files(root, skip))
    excludes.extend(_anchored(rel) for rel in large)
    if large:
        log.warning(
            "not shipped to the Ray job (larger than %d MiB): %s; read such files from the "
            "store or from storage the cluster reaches",
            LARGE_BYTES // 2**20,
            ", ".join(large),
        )
    return Shipment(root, tuple(excludes), large)


def _anchored(rel: str) -> str:
    """A gitignore pattern matching exactly the path ``rel`` under the root."""
    escaped = "".join("\\" + c if c in "[]*?!#\\" else c for c in rel.replace(os.sep, "/"))
    return "/" + escaped


def _large_files(root: str, skip: set[str]) -> Iterator[str]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d for d in dirs if d not in EXCLUDED and os.path.join(folder, d) not in skip
        )
        for name in sorted(files):
            path = os.path.join(folder, name)
            try:
                size = os.lstat(path).st_size
            except OSError:
                continue
            if size > LARGE_BYTES:
                yield os.path.relpath(path, root)


__all__ = ["EXCLUDED", "LARGE_BYTES", "Shipment", "plan"]

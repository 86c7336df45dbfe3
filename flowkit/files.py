"""``fk.File`` and ``fk.Directory``: local paths that travel between tasks by content.

A task that returns ``fk.File(path)`` hands the *content* of that file to its consumers. When
the value is stored (a cached task's output), the file or directory is packed into a
deterministic tar archive (sorted names, zero times and owners, modes reduced to 644/755), so
its digest depends only on the names and bytes inside. The top-level name counts: renaming
``model.bin`` to ``weights.bin`` is a different value. Loading unpacks it once into a local
folder and gives back a ``File``/``Directory`` pointing there; treat that copy as read-only
(it is shared by every later load of the same digest).

Symbolic links to files are stored as the content they point to; a link to a directory inside
a ``Directory`` is refused (copy it in instead), so a value never depends on what lies outside.

Inside a container (``list[fk.File]``, a dataclass field...) a path cannot be stored by
content: storing such a value raises :class:`~flowkit.errors.SerializationError` rather than
caching a path that may vanish. Return files as their own outputs instead.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import stat
import tarfile
import uuid
from collections.abc import Iterator
from typing import IO, Any

from flowkit.errors import SerializationError

# Set while flowkit pickles a value *for the store*; a File met then is nested in a container.
_STORING: contextvars.ContextVar[bool] = contextvars.ContextVar("flowkit_storing", default=False)


class _PathValue(os.PathLike[str]):
    __slots__ = ("path",)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path: str = os.path.abspath(os.fspath(path))

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _PathValue) and type(other) is type(self) and other.path == self.path
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.path))

    @property
    def name(self) -> str:
        """The last component of the path."""
        return os.path.basename(self.path)

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def __reduce__(self) -> tuple[Any, ...]:
        if _STORING.get():
            raise SerializationError(
                f"{self!r} is inside a container; a path can only be stored by content when it "
                "is a whole task output. Return the file or directory as its own output."
            )
        return (type(self), (self.path,))


class File(_PathValue):
    """A local file whose content is the value.

    >>> f = File("/tmp/data.csv")
    >>> f.name, os.fspath(f)
    ('data.csv', '/tmp/data.csv')
    """

    __slots__ = ()

    def open(self, mode: str = "rb") -> IO[Any]:
        """Open the file (read-only modes are the safe ones on a loaded copy)."""
        return open(self.path, mode)

    def read_bytes(self) -> bytes:
        with open(self.path, "rb") as f:
            return f.read()

    def read_text(self, encoding: str = "utf-8") -> str:
        with open(self.path, encoding=encoding) as f:
            return f.read()


class Directory(_PathValue):
    """A local directory whose whole tree (names and bytes) is the value.

    >>> Directory("/tmp/run1/").name
    'run1'
    """

    __slots__ = ()

    def files(self) -> list[File]:
        """Every regular file below the directory, in sorted path order."""
        out: list[File] = []
        for dirpath, dirnames, filenames in os.walk(self.path):
            dirnames.sort()
            out.extend(File(os.path.join(dirpath, n)) for n in sorted(filenames))
        return out


def default_unpack_root() -> str:
    """Where values loaded from a remote store are unpacked: ``$FLOWKIT_CACHE_DIR/files``
    (default ``~/.cache/flowkit/files``). Local stores unpack next to their objects instead."""
    base = os.environ.get("FLOWKIT_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "flowkit"
    )
    return os.path.join(base, "files")


@contextlib.contextmanager
def storing() -> Iterator[None]:
    """Mark the current context as pickling for the store (see the module docstring)."""
    token = _STORING.set(True)
    try:
        yield
    finally:
        _STORING.reset(token)


# -- deterministic tar packing ------------------------------------------------------------


def _info(name: str, st: os.stat_result | None, kind: bytes) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    if kind == tarfile.DIRTYPE:
        ti.mode = 0o755
    else:
        assert st is not None
        ti.size = st.st_size
        ti.mode = 0o755 if st.st_mode & 0o111 else 0o644
    return ti


def _add_file(tar: tarfile.TarFile, src: str, name: str) -> None:
    with open(src, "rb") as f:  # follows symlinks: the content is the value
        tar.addfile(_info(name, os.fstat(f.fileno()), tarfile.REGTYPE), f)


def pack(value: File | Directory, sink: IO[bytes]) -> None:
    """Write ``value`` as a deterministic tar stream to ``sink``."""
    path = value.path
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        if isinstance(value, File):
            if not os.path.isfile(path):
                raise SerializationError(f"{value!r} is not an existing regular file")
            _add_file(tar, path, value.name)
            return
        if not os.path.isdir(path):
            raise SerializationError(f"{value!r} is not an existing directory")
        root = value.name
        tar.addfile(_info(root, None, tarfile.DIRTYPE))
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            rel = os.path.relpath(dirpath, path)
            prefix = root if rel == "." else f"{root}/{rel.replace(os.sep, '/')}"
            for d in dirnames:
                full = os.path.join(dirpath, d)
                if os.path.islink(full):
                    raise SerializationError(
                        f"{value!r} contains a link to a directory ({full}); copy it in instead"
                    )
                tar.addfile(_info(f"{prefix}/{d}", None, tarfile.DIRTYPE))
            for n in sorted(filenames):
                full = os.path.join(dirpath, n)
                if not stat.S_ISREG(os.stat(full).st_mode):
                    raise SerializationError(f"{value!r} contains {full}, not a regular file")
                _add_file(tar, full, f"{prefix}/{n}")


def unpack(
    source: str | IO[bytes], dest: str, kind: type[File] | type[Directory]
) -> File | Directory:
    """Unpack a tar made by :func:`pack` into ``dest`` (once; reused if already there).

    ``source`` is a path to the archive or a readable binary stream. Unpacking goes to a
    temporary sibling folder that is renamed into place, so concurrent loads are safe.
    """
    if not os.path.isdir(dest):
        tmp = f"{dest}.tmp-{uuid.uuid4().hex}"
        os.makedirs(tmp)
        try:
            with (
                tarfile.open(source, mode="r:")
                if isinstance(source, str)
                else tarfile.open(fileobj=source, mode="r|")
            ) as tar:
                _extract(tar, tmp)
            try:
                os.rename(tmp, dest)
            except OSError:
                if not os.path.isdir(dest):  # lost a race: another process put it in place
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    names = os.listdir(dest)
    if len(names) != 1:
        raise SerializationError(f"damaged {kind.__name__} archive in {dest}: {names}")
    return kind(os.path.join(dest, names[0]))


def _extract(tar: tarfile.TarFile, dest: str) -> None:
    for member in tar:
        name = member.name
        if (
            name.startswith("/")
            or ".." in name.split("/")
            or not (member.isfile() or member.isdir())
        ):
            raise SerializationError(f"refusing unsafe archive member {name!r}")
        target = os.path.join(dest, *name.split("/"))
        if member.isdir():
            os.makedirs(target, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        src = tar.extractfile(member)
        assert src is not None
        with open(target, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        os.chmod(target, member.mode)


__all__ = ["Directory", "File", "default_unpack_root", "pack", "storing", "unpack"]

"""``LocalIO``: an :class:`~flowkit.fsio.protocol.ObjectIO` over a local folder, with plain
``os`` calls (no fsspec on the hot path).

Writes go through a temporary file in ``<root>/tmp`` renamed into place with ``os.replace``
(atomic on one filesystem). Folders created or checked are remembered (no stat storm on the hot
path), and large objects are memory-mapped for reading. Small files are read with
``os.open``/``os.read`` (half the cost of a buffered ``open`` on a cache hit). It never follows
a symbolic link below the root: the last component is opened with ``O_NOFOLLOW`` and every
folder on a path is checked once per process, so a link planted in a store cannot make flowkit
read, write or delete anything outside it.

Conditional writes (:mod:`flowkit.fsio.conditional`): a create is a temporary file hard-linked
to its name (the link fails if anything is there), a compare-and-replace holds the ``flock``
of ``<root>/locks/<sha256 of the path>`` while it reads, compares and renames.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import mmap
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Any, cast

from flowkit.fsio.conditional import Guarantee, version_of
from flowkit.fsio.streams import NOFOLLOW, read_file

# Folders whose subfolders are made, never removed or renamed (shards ``objects/ab``, a task's
# ``cache/<task>``), so a listing of them stays true for the life of a LocalIO.
_SHARDED = frozenset({"cache/", "fingerprints/", "objects/"})
MMAP_MIN = 1 << 20  # local objects this big are memory-mapped; remote ones checked before put
LOCKS = "locks"  # <root>/locks/<sha256 of a path>: the flock of a compare-and-replace there
# a filesystem without hard links: create with O_EXCL instead (readers may see it half written)
_NO_LINKS = frozenset(
    getattr(errno, n) for n in ("EPERM", "ENOTSUP", "EOPNOTSUPP", "EMLINK") if hasattr(errno, n)
)


class _LazyTemp(io.RawIOBase):
    """A write stream onto a temporary file of ``io`` that is created on the first write."""

    def __init__(self, io_: LocalIO) -> None:
        super().__init__()
        self._io = io_
        self._file: IO[bytes] | None = None
        self.path = ""

    def writable(self) -> bool:
        return True

    def open_now(self) -> IO[bytes]:
        if self._file is None:
            self.path, self._file = self._io.open_temp()
        return self._file

    def write(self, b: Any) -> int:
        f = self._file if self._file is not None else self.open_now()
        return f.write(b)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()

    def discard(self) -> None:
        """Close and remove the temporary file, if one was made."""
        self.close()
        if self.path:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def _nofollow_opener(path: str, flags: int) -> int:
    return os.open(path, flags | NOFOLLOW)


def _link_error(path: str) -> OSError:
    return OSError(errno.ELOOP, "a folder in the store is a symbolic link", path)


class LocalIO:
    """Plain-``os`` access below a local root. Paths are ``/``-separated, relative."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._prefix = os.path.join(root, "")  # root + separator: os.path.join for relative paths
        self._dirs: set[str] = set()  # "<folder>/" known to exist and not be links ("": root)
        self._listed: set[str] = set()  # "<folder>/" whose real subfolders were all added

    def path(self, rel: str) -> str:
        return self._prefix + rel

    def _parent(self, rel: str) -> None:
        """Check (once) that no folder on ``rel``'s path is a symbolic link."""
        i = rel.rfind("/")
        if i > 0 and rel[: i + 1] not in self._dirs:
            self._check_dir(rel[:i], create=False)

    def _check_dir(self, rel_dir: str, *, create: bool) -> None:
        """Walk ``rel_dir`` from the root: every part must be a real folder (made if
        ``create``); FileNotFoundError if one is missing, OSError(ELOOP) if one is a link."""
        path = self.root
        if create and "" not in self._dirs:
            os.makedirs(path, exist_ok=True)  # the root itself may be (or lie behind) a link
            self._dirs.add("")
        parts = rel_dir.split("/")
        for i, part in enumerate(parts):
            path = os.path.join(path, part)
            parent = "/".join(parts[:i]) + "/" if i else ""
            prefix = parent + part + "/"
            if prefix not in self._dirs and parent in _SHARDED and parent not in self._listed:
                self._list_subfolders(parent)
            if prefix in self._dirs:
                continue  # checked already (``objects/`` for every ``objects/ab``)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(path)
                st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode):
                raise (
                    _link_error(path)
                    if stat.S_ISLNK(st.st_mode)
                    else NotADirectoryError(errno.ENOTDIR, "not a folder", path)
                )
            self._dirs.add(prefix)

    def _list_subfolders(self, parent: str) -> None:
        """Mark every real subfolder of the checked folder ``parent`` (one of ``_SHARDED``) as
        checked, from one listing: its 256 shards cost one ``scandir``, not 256 ``lstat``
        calls. A link is never marked (``is_dir(follow_symlinks=False)``); a shard made later is
        checked on its own."""
        if parent not in self._dirs:
            return  # only below a folder already known not to be a link
        self._listed.add(parent)
        with contextlib.suppress(OSError), os.scandir(self._prefix + parent) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    self._dirs.add(parent + entry.name + "/")

    def check_dir(self, rel_dir: str) -> str:
        """The absolute path of the existing folder ``rel_dir`` (FileNotFoundError if it is
        missing, OSError(ELOOP) if a folder on its path is a link); made by no one."""
        if rel_dir + "/" not in self._dirs:
            self._check_dir(rel_dir, create=False)
        return self._prefix + rel_dir

    def ensure_dir(self, rel_dir: str) -> str:
        """Make the folder ``rel_dir`` (checked: no links on its path); its absolute path."""
        if rel_dir + "/" not in self._dirs:
            self._check_dir(rel_dir, create=True)
        return self._prefix + rel_dir

    def read(self, rel: str, *, once: bool = False) -> bytes:
        """The file's bytes (``once``: possibly a prefix, see :func:`read_file`)."""
        self._parent(rel)
        return read_file(self._prefix + rel, once=once)

    def read_object(self, rel: str, size: int) -> tuple[Any, str]:
        self._parent(rel)
        p = self._prefix + rel
        if size < MMAP_MIN:
            return read_file(p, size), p
        with open(p, "rb", opener=_nofollow_opener) as f:
            if os.fstat(f.fileno()).st_size == 0:
                return b"", p
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), p

    def temp(self) -> str:
        """A new path in ``<root>/tmp`` for a write in progress."""
        return os.path.join(self.ensure_dir("tmp"), uuid.uuid4().hex)

    def open_temp(self) -> tuple[str, IO[bytes]]:
        """A new temporary file, opened for writing, and its path."""
        tmp = self.temp()
        return tmp, open(tmp, "wb")  # the caller closes it

    def commit(self, tmp: str, rel: str) -> None:
        i = rel.rfind("/")
        if i > 0:
            self.ensure_dir(rel[:i])
        os.replace(tmp, self._prefix + rel)

    def put(self, fill: Callable[[IO[bytes]], str | None]) -> None:
        """Stream ``fill``'s bytes to a temporary file, then rename it to the path ``fill``
        returned (None: nothing is kept). The temporary file is made on the first write, so a
        ``fill`` that writes nothing costs no file. Always renamed, even over an existing
        object: the bytes are already written, a rename costs no more than an unlink, it heals
        an object damaged in place (same size, wrong bytes) and it keeps a re-used object
        young for gc."""
        sink = _LazyTemp(self)
        try:
            with sink:
                rel = fill(cast(IO[bytes], sink))
                if rel is not None:
                    sink.open_now()
            if rel is not None:
                self.commit(sink.path, rel)
        except BaseException:
            sink.discard()
            raise
        else:
            if rel is None:
                sink.discard()

    def write(self, rel: str, data: bytes) -> None:
        tmp, f = self.open_temp()
        try:
            with f:
                f.write(data)
            self.commit(tmp, rel)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    # -- conditional writes (flowkit.fsio.conditional) ------------------------------------

    def guarantee(self) -> Guarantee:
        """Atomic against every process and machine: a hard link fails if its name exists,
        and every compare-and-replace of a path holds that path's ``flock``."""
        return "atomic"

    def create(self, rel: str, data: bytes) -> bool:
        """Write ``data`` to a temporary file and hard-link it to ``rel``; the link fails if
        anything (a file, a planted link) is there already. No half-written file is ever
        visible, and no lock is needed."""
        tmp, f = self.open_temp()
        try:
            with f:
                f.write(data)
            i = rel.rfind("/")
            if i > 0:
                self.ensure_dir(rel[:i])
            try:
                os.link(tmp, self._prefix + rel, follow_symlinks=False)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in _NO_LINKS:
                    raise
                return self._create_exclusive(rel, data)
            return True
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _create_exclusive(self, rel: str, data: bytes) -> bool:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW
        try:
            fd = os.open(self._prefix + rel, flags, 0o644)
        except FileExistsError:
            return False
        with open(fd, "wb") as f:
            f.write(data)
        return True

    def read_versioned(self, rel: str) -> tuple[bytes, str]:
        """The file's bytes and their SHA-256 (its version)."""
        data = self.read(rel)
        return data, version_of(data)

    def replace(self, rel: str, data: bytes, version: str) -> bool:
        """Under the path's ``flock``: read it again, and write (temporary file renamed into
        place) only if its bytes still have ``version``. The kernel drops the lock of a
        killed process."""
        import fcntl  # POSIX only; imported here so that the rest works everywhere

        lock = os.path.join(self.ensure_dir(LOCKS), hashlib.sha256(rel.encode()).hexdigest())
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = self.read(rel)
            except (FileNotFoundError, NotADirectoryError):
                return False
            if version_of(current) != version:
                return False
            self.write(rel, data)
            return True
        finally:
            os.close(fd)  # releases the lock

    def size(self, rel: str) -> int | None:
        """Size of a regular file (None if it is missing, or not a regular file)."""
        try:
            self._parent(rel)
            st = os.lstat(self._prefix + rel)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def list(self, rel: str) -> list[str]:
        try:
            if rel:
                self._check_dir(rel, create=False)
            return os.listdir(self._prefix + rel)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def remove(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            self._parent(rel)
            os.unlink(self._prefix + rel)  # a link itself, never what it points to

    def walk(self, rel: str) -> Iterator[tuple[str, int, float | None]]:
        try:
            self._check_dir(rel, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return
        base = self._prefix + rel
        for dirpath, _, names in os.walk(base):  # does not descend into linked folders
            for n in names:
                p = os.path.join(dirpath, n)
                with contextlib.suppress(FileNotFoundError):
                    st = os.lstat(p)
                    yield (
                        os.path.relpath(p, self.root).replace(os.sep, "/"),
                        st.st_size,
                        st.st_mtime,
                    )


__all__ = ["MMAP_MIN", "LocalIO"]

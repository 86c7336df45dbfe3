"""``fk.File`` and ``fk.Directory``: local paths that travel between tasks by content.

A task that returns ``fk.File(path)`` hands the *content* of that file to its consumers. When
the value is stored (a cached task's output), the file or directory is packed into a
deterministic tar archive (sorted names, zero times and owners, modes reduced to 644/755), so
its digest depends only on the names and bytes inside. The top-level name counts: renaming
``model.bin`` to ``weights.bin`` is a different value. Loading unpacks it into a local folder
and gives back a ``File``/``Directory`` pointing there. That copy is shared by every later load
of the same digest, so it is made read-only (writing to it raises ``PermissionError``, except
for root) and checked against a manifest on every load: a copy that was changed, deleted or
left half-written is unpacked again from the verified object. Unpacking refuses links,
devices, absolute names, ``..`` and anything outside the value's top-level name, and never
keeps setuid/setgid/sticky bits (files are 0444, or 0555 if executable; folders 0555).

Symbolic links to files are stored as the content they point to; a link to a directory inside
a ``Directory`` is refused (copy it in instead), so a value never depends on what lies outside.

Inside a container (``list[fk.File]``, a dataclass field...) a path cannot be stored by
content: storing such a value raises :class:`~flowkit.errors.SerializationError` rather than
caching a path that may vanish. Return files as their own outputs instead.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
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


# -- unpacking: safe members, read-only copies, verified on every load --------------------------

MANIFEST = "manifest.json"  # in the copy's folder: what the copy holds, written last
COPY = "copy"  # the folder holding the value's top-level file or directory
_FILE_MODES = (0o444, 0o555)  # loaded copies are read-only (executable or not)
_DIR_MODE = 0o555
_ATTEMPTS = 3  # verify / re-unpack rounds before giving up (other processes may heal too)


def unpack(
    source: str | IO[bytes], dest: str, kind: type[File] | type[Directory]
) -> File | Directory:
    """A verified, read-only copy of a tar made by :func:`pack`, kept in the folder ``dest``.

    ``source`` is the archive's path or a seekable binary stream (the store has verified
    those bytes against their digest). The copy is ``dest/copy/<name>``; ``dest/manifest.json``
    lists its folders and files (size, sha256 and the file's times when it was unpacked).

    Every load re-checks the copy against the manifest: sizes and times (cheap), and the
    sha256 of a file whose size or times changed. A copy that is missing, incomplete (no
    manifest: a killed unpack) or changed (a consumer wrote to it) is unpacked again from
    ``source``. Unpacking goes to a temporary sibling folder renamed into place, so a copy
    that is there is whole, and concurrent loads are safe.
    """
    for _ in range(_ATTEMPTS):
        found = verified_copy(dest, kind)
        if found is not None:
            return found
        if isinstance(source, str):
            with open(source, "rb") as f:
                _replace_copy(f, dest, kind, stream=False)
        else:
            source.seek(0)
            _replace_copy(source, dest, kind, stream=True)
    raise SerializationError(
        f"cannot keep an intact copy of a {kind.__name__} in {dest}: it changed while loading "
        "(something is writing there); make sure nothing modifies loaded copies"
    )


def _replace_copy(
    source: IO[bytes], dest: str, kind: type[File] | type[Directory], *, stream: bool
) -> None:
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    tmp = f"{dest}.tmp-{uuid.uuid4().hex}"
    os.mkdir(tmp)
    try:
        with tarfile.open(fileobj=source, mode="r|" if stream else "r:") as tar:
            manifest = _extract(tar, tmp, kind)
        _write_manifest(tmp, manifest)
        _swap_in(tmp, dest, kind)
    finally:
        remove_copy(tmp)


def _swap_in(tmp: str, dest: str, kind: type[File] | type[Directory]) -> None:
    """Rename the new copy ``tmp`` to ``dest``, moving a bad copy there out of the way (a good
    one, just put there by a concurrent loader, is kept: it may be in use already). Other
    loaders may be doing the same at the same moment (a bad copy moved away between our
    rename and our look): so it is tried again, a few turns at most."""
    error: OSError | None = None
    for _ in range(_SWAP_TRIES):
        try:
            os.rename(tmp, dest)
            return
        except OSError as exc:
            error = exc
        if not os.path.lexists(dest):
            continue  # moved away by another loader meanwhile: ours goes in at the next turn
        if verified_copy(dest, kind) is not None:
            return
        old = f"{dest}.old-{uuid.uuid4().hex}"
        with contextlib.suppress(FileNotFoundError):  # gone already: another loader's doing
            os.rename(dest, old)
        remove_copy(old)
    assert error is not None
    raise error


_SWAP_TRIES = 10


def remove_copy(path: str) -> None:
    """Delete a loaded copy (made writable first); a link is removed, never followed."""
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    for dirpath, _, _ in os.walk(path):  # top-down, never into linked folders
        with contextlib.suppress(OSError):
            os.chmod(dirpath, 0o755)
    shutil.rmtree(path, ignore_errors=True)


def _member_parts(member: tarfile.TarInfo, dest: str) -> list[str]:
    """The checked path parts of a member; SerializationError if the member is unsafe."""
    name = member.name.rstrip("/") if member.isdir() else member.name
    if not (member.isreg() or member.isdir()):
        raise SerializationError(
            f"refusing archive member {name!r}: only regular files and folders are unpacked "
            "(no links, devices or fifos)"
        )
    parts = name.split("/")
    if name.startswith("/") or "\x00" in name or any(p in ("", ".", "..") for p in parts):
        raise SerializationError(f"refusing unsafe archive member {name!r}")
    data_filter = getattr(tarfile, "data_filter", None)  # Python 3.12, 3.11.4+, 3.10.12+
    if data_filter is not None:
        try:
            data_filter(member, dest)
        except tarfile.FilterError as exc:
            raise SerializationError(f"refusing unsafe archive member {name!r}: {exc}") from exc
    return parts


def _extract(tar: tarfile.TarFile, root: str, kind: type[File] | type[Directory]) -> dict[str, Any]:
    """Unpack into ``root/copy`` with read-only modes; the manifest of what was written."""
    base = os.path.join(root, COPY)
    os.mkdir(base)
    top: str | None = None
    entries: list[list[Any]] = []
    seen: set[str] = set()
    for member in tar:
        parts = _member_parts(member, base)
        top = _checked_place(member, parts, kind, top, seen)
        target = os.path.join(base, *parts)
        if member.isdir():
            os.makedirs(target, exist_ok=True)
            continue
        entries.append(["/".join(parts), member.size, _write_member(tar, member, target)])
    if top is None:
        raise SerializationError(f"empty {kind.__name__} archive")
    dirs = _all_dirs(base)  # those an archive implies without a member too
    for d in sorted(dirs, key=len, reverse=True):  # children before parents
        os.chmod(os.path.join(base, *d.split("/")), _DIR_MODE)
    os.chmod(base, _DIR_MODE)
    for e in entries:
        e.extend(_stamp(os.lstat(os.path.join(base, *e[0].split("/")))))
    return {"format": 1, "kind": kind.__name__, "name": top, "dirs": sorted(dirs), "files": entries}


def _checked_place(
    member: tarfile.TarInfo,
    parts: list[str],
    kind: type[File] | type[Directory],
    top: str | None,
    seen: set[str],
) -> str:
    """The value's top-level name (``parts[0]`` of the first member); SerializationError if
    the member lies outside it or appears twice (``seen`` collects the members)."""
    rel = "/".join(parts)
    if top is None:
        if len(parts) != 1 or member.isdir() != (kind is Directory):
            raise SerializationError(
                f"archive of a {kind.__name__} starts with {rel!r}, not its top-level "
                f"{'folder' if kind is Directory else 'file'}"
            )
        top = parts[0]
    elif kind is File or parts[0] != top or len(parts) < 2:
        raise SerializationError(f"refusing archive member {rel!r} outside {top!r}")
    if rel in seen:
        raise SerializationError(f"refusing archive member {rel!r}: it appears twice")
    seen.add(rel)
    return top


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: str) -> str:
    """Write a regular member to ``target`` (a new file, read-only); its sha256."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    src = tar.extractfile(member)
    assert src is not None
    h = hashlib.sha256()
    with open(target, "xb") as out:
        while chunk := src.read(1 << 20):
            h.update(chunk)
            out.write(chunk)
    os.chmod(target, _FILE_MODES[bool(member.mode & 0o111)])
    return h.hexdigest()


def _all_dirs(base: str) -> list[str]:
    """The folders below ``base``, relative and ``/``-separated."""
    return [
        os.path.relpath(dirpath, base).replace(os.sep, "/")
        for dirpath, _, _ in os.walk(base)
        if dirpath != base
    ]


def _stamp(st: os.stat_result) -> list[int]:
    """What the cheap check compares: size, mtime, ctime (no one can set it) and inode."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _write_manifest(folder: str, manifest: dict[str, Any]) -> None:
    tmp = os.path.join(folder, f".{MANIFEST}.{uuid.uuid4().hex}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, separators=(",", ":"))
    os.replace(tmp, os.path.join(folder, MANIFEST))


def _read_manifest(dest: str, kind: type[File] | type[Directory]) -> dict[str, Any] | None:
    try:
        with open(os.path.join(dest, MANIFEST), encoding="utf-8") as f:
            m = json.load(f)
    except (OSError, ValueError):
        return None  # missing (never finished, or deleted) or damaged: unpack again
    try:
        ok = (
            m["format"] == 1
            and m["kind"] == kind.__name__
            and isinstance(m["name"], str)
            and m["name"] not in ("", ".", "..")
            and "/" not in m["name"]
            and all(isinstance(d, str) for d in m["dirs"])
            and all(isinstance(e, list) and len(e) == 7 for e in m["files"])
        )
    except (KeyError, TypeError):
        return None
    return m if ok else None


def _present(base: str) -> set[str]:
    """Every path below ``base`` (``/``-separated), links included but not followed."""
    out: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(base):
        rel = os.path.relpath(dirpath, base).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        out.update(prefix + n for n in dirnames)
        out.update(prefix + n for n in filenames)
    return out


def verified_copy(dest: str, kind: type[File] | type[Directory]) -> File | Directory | None:
    """The copy in ``dest`` if it still matches its manifest, else None (unpack it again)."""
    m = _read_manifest(dest, kind)
    if m is None:
        return None
    base = os.path.join(dest, COPY)
    try:
        if _present(base) != set(m["dirs"]) | {e[0] for e in m["files"]}:
            return None
        changed = []
        for e in m["files"]:
            st = os.lstat(os.path.join(base, *e[0].split("/")))
            if not stat.S_ISREG(st.st_mode) or st.st_size != e[1]:
                return None
            if _stamp(st) != e[3:]:
                changed.append((e, st))
        for e, st in changed:  # same size, other times: the content decides
            if _sha256_of(os.path.join(base, *e[0].split("/"))) != e[2]:
                return None
            e[3:] = _stamp(st)
        if changed:
            with contextlib.suppress(OSError):
                _write_manifest(dest, m)  # the content is intact: remember its new times
    except OSError:
        return None
    return kind(os.path.join(base, m["name"]))


def _sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb", opener=lambda p, fl: os.open(p, fl | getattr(os, "O_NOFOLLOW", 0))) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


__all__ = [
    "Directory",
    "File",
    "default_unpack_root",
    "pack",
    "remove_copy",
    "storing",
    "unpack",
    "verified_copy",
]

"""The store is data: crafted files planted in a store never reach outside it or run code.

An attacker here can write anything into the store (a shared folder, a bucket) but does not
hold the signing key. Each test plants something — a digest that is a path, a symbolic link,
a tar archive with links or setuid bits, a changed or half-written unpacked copy, a forged
cache entry with a pickle whose ``__reduce__`` runs code — and checks that nothing outside the
store is read, written or deleted, that no planted code runs, and that values come back right.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowkit as fk
from flowkit import files
from flowkit.errors import SerializationError, StoreError
from flowkit.files import Directory, File
from flowkit.hashing import blob_digest
from flowkit.store import (
    Artifact,
    ObjectCorrupt,
    ObjectMissing,
    ObjectUnavailable,
    ObjectUnsigned,
    Store,
)

KEY = "team-secret"
OUTSIDE = "outside.txt"
BIG = {"answer": 42, "pad": "x" * 2000}  # over INLINE_MAX: stored as an object


def entry_rel(store: Store, key: str) -> str:
    """Where the cache entry of ``key`` is (``cache/<task>/<key>.json``)."""
    found = [rel for rel, _, _ in store.walk("cache") if rel.endswith(f"/{key}.json")]
    assert len(found) == 1, found
    return found[0]


def snapshot(root: Path) -> dict[str, tuple[int, bytes | str]]:
    """Every path below ``root``: (mode, bytes or link target)."""
    out: dict[str, tuple[int, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st_ = p.lstat()
            if stat.S_ISLNK(st_.st_mode):
                out[str(p)] = (st_.st_mode, os.readlink(p))
            elif stat.S_ISREG(st_.st_mode):
                out[str(p)] = (st_.st_mode, p.read_bytes())
            else:
                out[str(p)] = (st_.st_mode, b"")
    return out


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the store with a precious file in it."""
    d = tmp_path / "home"
    d.mkdir()
    (d / OUTSIDE).write_text("precious")
    return d


@pytest.fixture(params=["unsigned", "signed"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A new local store two levels below ``tmp_path`` (so ``../..`` lands in it)."""
    s = Store(tmp_path / "a" / "store", key=KEY if request.param == "signed" else None)
    s.check()
    return s


# -- 1. digests and names are validated before they become paths --------------------------------


BAD_DIGESTS = [
    "../../home/outside.txt",
    "../../x",
    "/etc/passwd",
    "A" * 64,
    "a" * 63,
    "a" * 65,
    "a" * 63 + "/",
    "a" * 64 + "\n",
    "g" * 64,
    "",
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_artifact_from_dict_refuses_a_non_digest(digest: str) -> None:
    with pytest.raises(ValueError, match="not an artifact"):
        Artifact.from_dict({"digest": digest, "format": "json", "size": 2})


@pytest.mark.parametrize(
    "fields",
    [
        {"digest": "a" * 64, "format": "json", "size": -1},
        {"digest": "a" * 64, "format": "", "size": 2},
        {"digest": "a" * 64, "format": "json", "size": True},
        {"digest": "a" * 64, "format": "json", "size": 2, "sig": "../x"},
        {"digest": 7, "format": "json", "size": 2},
    ],
)
def test_artifact_from_dict_refuses_malformed_fields(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not an artifact"):
        Artifact.from_dict(fields)


def test_a_planted_digest_path_is_refused_and_the_outside_file_is_untouched(
    tmp_path: Path, outside: Path
) -> None:
    """The issue's case: a verified read of ``objects/../../x`` deleted a file outside."""
    s = Store(tmp_path / "a" / "store")
    s.check()
    s.put(BIG)  # objects/ exists, so objects/../.. resolves
    precious = outside / OUTSIDE
    planted = Artifact("../../home/outside.txt", "json", precious.stat().st_size)
    before = snapshot(outside)
    with pytest.raises(ObjectCorrupt, match="not an object digest"):
        s.get(planted)
    assert not s.has(planted)
    with pytest.raises(StoreError, match="not an object digest"):
        s.delete_object(planted.digest)
    with pytest.raises(ObjectCorrupt):
        Store.object_path(planted.digest)
    assert snapshot(outside) == before


@pytest.mark.parametrize(
    "rel", ["../home/outside.txt", "/etc/passwd", "runs/../../x", "runs/./x", "", "a//b", "x\0y"]
)
def test_document_paths_outside_the_store_are_refused(
    store: Store, outside: Path, rel: str
) -> None:
    before = snapshot(outside)
    with pytest.raises(ObjectCorrupt, match="refusing"):
        store.read_doc(rel)
    with pytest.raises(StoreError, match="refusing"):
        store.write_doc(rel, {"x": 1})
    with pytest.raises(StoreError, match="refusing"):
        store.delete(rel)
    with pytest.raises(StoreError, match="refusing"):
        store.list_dir(rel)
    assert snapshot(outside) == before


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rel=st.text(alphabet=st.sampled_from("ab./-_\\\0:~ "), max_size=12))
def test_any_accepted_document_path_stays_below_the_root(tmp_path: Path, rel: str) -> None:
    s = Store(tmp_path / "store")
    try:
        s._rel(rel)
    except StoreError:
        return
    root = os.path.abspath(s.root)
    full = os.path.normpath(os.path.join(root, rel))
    assert full.startswith(root + os.sep)
    assert ".." not in rel.split("/") and not rel.startswith("/")


def test_run_ids_from_the_listing_are_validated(store: Store) -> None:
    store.write_run("r-1", {"status": "succeeded"})
    runs = Path(store.root) / "runs"
    (runs / "bad id").mkdir()
    (runs / ".hidden").mkdir()
    assert [r["id"] for r in store.list_runs()] == ["r-1"]
    with pytest.raises(StoreError, match="invalid run id"):
        store.write_task_records("../../x", 0, [])


def test_a_planted_entry_with_a_path_digest_is_a_miss_end_to_end(
    tmp_path: Path, outside: Path
) -> None:
    s = Store(tmp_path / "a" / "store")
    first = fk.run(add_one_wf, x=1, store=s)
    key = next(t.key for t in first.tasks if t.key)
    rel = entry_rel(s, key)
    doc = s.read_doc(rel)
    size = (outside / OUTSIDE).stat().st_size
    doc["outputs"][0] = {"digest": "../../home/outside.txt", "format": "json", "size": size}
    s.write_doc(rel, doc)
    before = snapshot(outside)
    again = fk.run(add_one_wf, x=1, store=s)
    assert again.output == 2
    assert not any(t.cached for t in again.tasks)
    assert snapshot(outside) == before


@fk.task(cache=True)
def add_one(x: int) -> int:
    return x + 1


@fk.workflow
def add_one_wf(x: int) -> int:
    return add_one(x)


# -- symbolic links planted in a local store ------------------------------------------------------


def test_a_planted_object_link_is_not_followed(store: Store, outside: Path) -> None:
    art = store.put(BIG)
    obj = Path(store.root) / Store.object_path(art.digest)
    obj.unlink()
    obj.symlink_to(outside / OUTSIDE)
    before = snapshot(outside)
    with pytest.raises(ObjectCorrupt):
        store.get(art)
    assert snapshot(outside) == before
    assert not obj.is_symlink()  # the link itself was removed, so the next put heals it
    assert store.get(store.put(BIG)) == BIG


def test_a_planted_document_link_is_not_followed(store: Store, outside: Path) -> None:
    store.write_run("r", {"status": "ok"})
    doc = Path(store.root) / "runs" / "r" / "run.json"
    (outside / "fake.json").write_bytes(doc.read_bytes())
    doc.unlink()
    doc.symlink_to(outside / "fake.json")
    with pytest.raises(ObjectCorrupt, match="not a regular file"):
        store.read_doc("runs/r/run.json")


@pytest.mark.parametrize("folder", ["objects", "tmp", "files", "cache", "fingerprints"])
def test_a_planted_folder_link_is_never_written_through(
    tmp_path: Path, outside: Path, folder: str
) -> None:
    s = Store(tmp_path / "a" / "store")
    s.check()
    value = BIG
    art = Store(tmp_path / "other").put(value)  # its digest, to plant the right prefix
    src = tmp_path / "f.txt"
    src.write_text("10")
    planted = f"objects/{art.digest[:2]}" if folder == "objects" else folder
    link = Path(s.root) / planted
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.exists():
        shutil.rmtree(link)
    link.symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)
    fresh = Store(s.root)  # a new process: nothing known about the folders yet

    def write_through_the_link() -> None:
        if folder in ("cache", "fingerprints"):
            fresh.write_doc(f"{folder}/ab/cd.json", {"x": 1})
        elif folder == "files":
            fresh.get(fresh.put(File(src)))
        else:
            fresh.put(value)

    with pytest.raises(StoreError, match="symbolic link"):
        write_through_the_link()
    if folder == "objects":
        with pytest.raises(ObjectCorrupt):
            fresh.get(art)
        with pytest.raises(StoreError, match="symbolic link"):
            fresh.delete_object(art.digest)
        assert list(fresh.walk("objects")) == []  # gc never walks out through the link
    assert snapshot(outside) == before


# -- 2. tar members are unpacked safely ----------------------------------------------------------


def tar_bytes(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, **extra: Any) -> Any:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    for k, v in extra.items():
        setattr(info, k, v)
    return info


def d(name: str) -> tuple[tarfile.TarInfo, None]:
    return member(name, tarfile.DIRTYPE, 0o755), None


UNSAFE: dict[str, tuple[type[File] | type[Directory], bytes]] = {
    "symlink": (
        Directory,
        tar_bytes(d("top"), (member("top/l", tarfile.SYMTYPE, linkname="/etc/passwd"), None)),
    ),
    "relative symlink": (
        Directory,
        tar_bytes(d("top"), (member("top/l", tarfile.SYMTYPE, linkname="x"), None)),
    ),
    "hardlink": (
        Directory,
        tar_bytes(d("top"), (member("top/h", tarfile.LNKTYPE, linkname="top/x"), None)),
    ),
    "char device": (
        Directory,
        tar_bytes(d("top"), (member("top/c", tarfile.CHRTYPE, devmajor=1, devminor=3), None)),
    ),
    "fifo": (Directory, tar_bytes(d("top"), (member("top/f", tarfile.FIFOTYPE), None))),
    "absolute": (File, tar_bytes((member("/tmp/evil"), b"x"))),
    "dotdot": (Directory, tar_bytes(d("top"), (member("top/../../evil"), b"x"))),
    "outside the top name": (Directory, tar_bytes(d("top"), (member("other/evil"), b"x"))),
    "second file in a File": (File, tar_bytes((member("a"), b"x"), (member("b"), b"y"))),
    "nested File": (File, tar_bytes((member("a/b"), b"x"))),
    "duplicate": (Directory, tar_bytes(d("top"), (member("top/a"), b"1"), (member("top/a"), b"2"))),
    "dir for a File": (File, tar_bytes(d("top"))),
    "empty": (Directory, tar_bytes()),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_archives_are_refused(tmp_path: Path, outside: Path, case: str) -> None:
    kind, data = UNSAFE[case]
    before = snapshot(outside)
    dest = tmp_path / "files" / "d"
    with pytest.raises(SerializationError):
        files.unpack(io.BytesIO(data), str(dest), kind)
    assert snapshot(outside) == before
    assert not dest.exists()
    assert os.listdir(tmp_path / "files") == []  # no half copy left behind


@pytest.mark.parametrize("mode", [0o4755, 0o2755, 0o1777, 0o6777, 0o777, 0o600])
def test_setuid_setgid_and_sticky_bits_are_dropped(tmp_path: Path, mode: int) -> None:
    data = tar_bytes(d("top"), (member("top/run", mode=mode), b"#!/bin/sh\n"))
    back = files.unpack(io.BytesIO(data), str(tmp_path / "dest"), Directory)
    for p in [Path(back.path), Path(back.path) / "run"]:
        m = stat.S_IMODE(p.lstat().st_mode)
        assert m & 0o7000 == 0
        assert m & 0o222 == 0  # read-only copy
    exec_bits = stat.S_IMODE((Path(back.path) / "run").stat().st_mode) & 0o111
    assert bool(exec_bits) == bool(mode & 0o111)


def test_a_planted_archive_object_is_refused_through_the_store(store: Store, outside: Path) -> None:
    data = UNSAFE["symlink"][1]
    digest = blob_digest("dir", hashlib.sha256(data).hexdigest())
    rel = Store.object_path(digest)
    store._io.write(rel, data)
    planted = Artifact(digest, "dir", len(data))
    before = snapshot(outside)
    expected_error = ObjectUnsigned if store.signed else SerializationError
    with pytest.raises(expected_error):
        store.get(planted)
    assert snapshot(outside) == before


names = st.text(alphabet=st.sampled_from("ab./"), min_size=1, max_size=8)
kinds = st.sampled_from(
    [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=st.lists(st.tuples(names, kinds, st.integers(0, 0o7777)), min_size=1, max_size=5))
def test_any_archive_unpacks_inside_its_folder_with_safe_modes_or_is_refused(
    tmp_path: Path, spec: list[tuple[str, bytes, int]]
) -> None:
    members = []
    for name, kind, mode in spec:
        info = member(name, kind, mode, linkname="../x" if kind in (b"1", b"2") else "")
        members.append((info, b"data" if kind == tarfile.REGTYPE else None))
    data = tar_bytes(*members)
    base = tmp_path / uuid.uuid4().hex
    base.mkdir()
    dest = base / "files" / "copy"
    try:
        value = files.unpack(io.BytesIO(data), str(dest), Directory)
    except SerializationError:
        assert sorted(os.listdir(base)) in ([], ["files"])
        assert not dest.exists()
        return
    assert os.path.realpath(value.path).startswith(os.path.realpath(dest) + os.sep)
    for p in [*Path(base).rglob("*")]:
        st_ = p.lstat()
        assert stat.S_ISREG(st_.st_mode) or stat.S_ISDIR(st_.st_mode)
        assert stat.S_IMODE(st_.st_mode) & 0o7000 == 0


# -- 3. unpacked File/Directory copies: read-only, verified, healed -------------------------------


def test_a_consumer_that_appends_to_its_input_does_not_change_later_loads(
    store: Store, tmp_path: Path
) -> None:
    """The issue's case: later loads read 11, 11, 12, 13 instead of 10."""
    src = tmp_path / "count.txt"
    src.write_text("10")
    art = store.put(File(src))
    seen = []
    for _ in range(3):
        f = store.get(art)
        seen.append(f.read_text())
        try:
            with open(f.path, "a") as out:  # root ignores the read-only mode
                out.write("1")
        except PermissionError:
            pass
    assert seen == ["10", "10", "10"]


_APPENDER = """
import os, sys
from flowkit.files import File
from flowkit.store import Store
root = sys.argv[1]
src = os.path.join(root, "count.txt")
with open(src, "w") as f:
    f.write("10")
store = Store(os.path.join(root, "store"))
art = store.put(File(src))
for _ in range(3):
    loaded = store.get(art)
    print(loaded.read_text())
    try:
        with open(loaded.path, "a") as f:
            f.write("1")
        print("appended")
    except PermissionError:
        print("PermissionError")
"""


def test_an_unprivileged_consumer_gets_permission_error(tmp_path: Path) -> None:
    """As any user but root, writing to a loaded copy fails outright."""
    command = [sys.executable, "-c", _APPENDER]
    work = tempfile.mkdtemp(prefix="fk-unprivileged-")  # not below root's private tmp_path
    try:
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv to drop privileges")
            os.chown(work, 65534, 65534)
            command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
            probe = [*command[:-2], "-c", "import flowkit"]
            if subprocess.run(probe, capture_output=True, timeout=120, check=False).returncode:
                # e.g. a clone under a private mktemp folder: its venv is root's alone
                pytest.skip("this interpreter and flowkit are not readable by an unprivileged user")
        done = subprocess.run(
            [*command, work], capture_output=True, text=True, check=True, timeout=120
        )
    finally:
        files.remove_copy(work)
    assert done.stdout.split() == ["10", "PermissionError"] * 3


def test_loaded_copies_are_read_only(store: Store, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.txt").write_text("a")
    (tree / "run.sh").write_text("#!/bin/sh\n")
    (tree / "run.sh").chmod(0o755)
    back = store.get(store.put(Directory(tree)))
    for p in [Path(back.path), *Path(back.path).rglob("*")]:
        assert stat.S_IMODE(p.stat().st_mode) & 0o222 == 0, p
    assert os.access(Path(back.path) / "run.sh", os.X_OK)


def copy_dir(value: File | Directory) -> Path:
    """``files/<d>`` of a loaded value (its copy is ``files/<d>/copy/<name>``)."""
    return Path(value.path).parent.parent


def test_a_deleted_copy_heals_on_the_next_load(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights")
    art = store.put(File(src))
    first = store.get(art)
    os.chmod(Path(first.path).parent, 0o755)
    Path(first.path).unlink()  # the old code then raised "damaged File archive" for good
    assert store.get(art).read_bytes() == b"weights"
    files.remove_copy(str(copy_dir(first)))  # the whole folder
    assert store.get(art).read_bytes() == b"weights"


def test_a_half_written_copy_is_not_taken_for_a_whole_one(store: Store, tmp_path: Path) -> None:
    tree = tmp_path / "data"
    tree.mkdir()
    for i in range(5):
        (tree / f"part-{i}").write_text(str(i) * 100)
    art = store.put(Directory(tree))
    dest = Path(store._scratch(art.digest))
    (dest / "copy" / "data").mkdir(parents=True)  # a killed unpack: some files, no manifest
    (dest / "copy" / "data" / "part-0").write_text("0" * 100)
    back = store.get(art)
    assert sorted(p.name for p in Path(back.path).iterdir()) == [f"part-{i}" for i in range(5)]


def test_same_size_changes_with_restored_times_are_caught(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "v.txt"
    src.write_text("10")
    art = store.put(File(src))
    f = Path(store.get(art).path)
    st_ = f.stat()
    f.chmod(0o644)
    f.write_text("99")
    os.utime(f, ns=(st_.st_atime_ns, st_.st_mtime_ns))  # the ctime still moves
    assert store.get(art).read_text() == "10"


@pytest.mark.parametrize("damage", ["extra file", "file replaced by a link", "manifest garbage"])
def test_a_changed_directory_copy_is_unpacked_again(
    store: Store, tmp_path: Path, outside: Path, damage: str
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_text("a")
    art = store.put(Directory(tree))
    back = Path(store.get(art).path)
    os.chmod(back, 0o755)
    if damage == "extra file":
        (back / "b.txt").write_text("b")
    elif damage == "file replaced by a link":
        os.chmod(back / "a.txt", 0o644)
        (back / "a.txt").unlink()
        (back / "a.txt").symlink_to(outside / OUTSIDE)
    else:
        (copy_dir(Directory(back)) / files.MANIFEST).write_text("{")
    again = Path(store.get(art).path)
    assert sorted(p.name for p in again.iterdir()) == ["a.txt"]
    assert not (again / "a.txt").is_symlink() and (again / "a.txt").read_text() == "a"
    assert (outside / OUTSIDE).read_text() == "precious"


@pytest.mark.parametrize("damaged", [False, True])
def test_concurrent_loads_and_heals_all_see_whole_copies(
    store: Store, tmp_path: Path, damaged: bool
) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    for i in range(20):
        (tree / "sub" / f"f{i}").write_text(str(i) * 50)
    art = store.put(Directory(tree))
    if damaged:  # every thread finds the copy damaged and may heal it at the same time
        victim = Path(store.get(art).path, "sub", "f3")
        os.chmod(victim.parent, 0o755)
        victim.unlink()
    barrier = threading.Barrier(8)
    seen: list[dict[str, str]] = []

    def load() -> None:
        barrier.wait()
        back = store.get(art)
        seen.append({p.name: p.read_text() for p in Path(back.path, "sub").iterdir()})

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [{f"f{i}": str(i) * 50 for i in range(20)}] * 8
    back = store.get(art)
    leftovers = [n for n in os.listdir(copy_dir(back).parent) if ".tmp-" in n or ".old-" in n]
    assert leftovers == []


@fk.task(cache=True)
def make_counter(text: str) -> fk.File:
    path = Path(os.environ["FK_TEST_DIR"]) / f"counter-{uuid.uuid4().hex}.txt"
    path.write_text(text)
    return fk.File(path)


@fk.task
def read_then_append(f: fk.File) -> str:
    seen = f.read_text()
    try:
        with open(f.path, "a") as out:
            out.write("1")
    except PermissionError:
        pass
    return seen


@fk.workflow
def counter_wf(text: str) -> str:
    return read_then_append(make_counter(text))


def test_later_runs_read_the_stored_file_not_a_consumers_edit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FK_TEST_DIR", str(tmp_path))
    s = Store(tmp_path / "store")
    outputs = [fk.run(counter_wf, text="10", store=s).output for _ in range(4)]
    assert outputs == ["10", "10", "10", "10"]


# -- 4. signed stores: a writer without the key cannot get code run -----------------------------


class Evil(int):
    """An int whose unpickling creates a marker file (stands for any code)."""

    marker = ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_plant, (self.marker, int(self)))


def _plant(marker: str, value: int) -> int:
    Path(marker).write_text("planted code ran")
    return value


@fk.task(cache=True, version="1")
def score(x: int) -> int:
    return x * 2


@fk.workflow
def score_wf(x: int) -> int:
    return score(x)


def forge_entry(url: str, key_: str, marker: Path) -> None:
    """What an attacker without the key does: a pickle that runs code, behind the victim's key."""
    attacker = Store(url, key=None)
    evil = Evil(6)
    Evil.marker = str(marker)
    art = attacker.put(evil)  # small: the pickle is inline, in the entry itself
    rel = entry_rel(attacker, key_)
    raw = attacker._io.read(rel)
    body = json.loads(raw.split(b"\n", 1)[1])  # readable, but the attacker cannot re-sign it
    body["outputs"] = [art.to_dict()]
    attacker.write_doc(rel, body)  # an unsigned (checksummed) document


def test_a_forged_entry_with_a_code_running_pickle_is_never_loaded_by_a_signed_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWKIT_STORE_KEY", raising=False)
    url = str(tmp_path / "shared")
    marker = tmp_path / "pwned"
    victim = Store(url, key=KEY)
    first = fk.run(score_wf, x=3, store=victim)
    key_ = next(t.key for t in first.tasks if t.key)
    forge_entry(url, key_, marker)
    with caplog.at_level(logging.WARNING, logger="flowkit.store"):
        again = fk.run(score_wf, x=3, store=Store(url, key=KEY))
    assert not marker.exists()
    assert again.output == 6 and type(again.output) is int
    assert not any(t.cached for t in again.tasks)  # the forged entry is a miss
    assert "not signed" in caplog.text and key_ in caplog.text
    # the recompute re-signed the entry: the next run hits again
    assert all(t.cached for t in fk.run(score_wf, x=3, store=Store(url, key=KEY)).tasks)


def test_the_same_forgery_runs_code_in_an_unsigned_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the attack is real, so only a signed store is safe from bucket writers."""
    monkeypatch.delenv("FLOWKIT_STORE_KEY", raising=False)
    url = str(tmp_path / "shared")
    marker = tmp_path / "pwned"
    first = fk.run(score_wf, x=3, store=Store(url))
    forge_entry(url, next(t.key for t in first.tasks if t.key), marker)
    fk.run(score_wf, x=3, store=Store(url))
    assert marker.exists()


def test_signed_documents_cannot_be_replayed_under_another_name(tmp_path: Path) -> None:
    s = Store(tmp_path / "s", key=KEY)
    s.check()
    s.write_run("r-1", {"status": "failed"})
    s.write_run("r-2", {"status": "succeeded"})
    raw = s._io.read("runs/r-2/run.json")
    s._io.write("runs/r-1/run.json", raw)  # validly signed, but for another path
    with pytest.raises(ObjectUnsigned):
        s.read_doc("runs/r-1/run.json")
    assert s.read_doc("runs/r-2/run.json") == {"status": "succeeded"}


def test_a_tampered_signed_document_or_artifact_is_absent(tmp_path: Path) -> None:
    s = Store(tmp_path / "s", key=KEY)
    s.check()
    art = s.put([1, 2, 3])
    s.write_doc("cache/t-1/k.json", {"outputs": [art.to_dict()]})
    raw = s._io.read("cache/t-1/k.json")
    s._io.write("cache/t-1/k.json", raw.replace(b"[1,2,3]", b"[1,2,4]")[:-1] + b" ")
    with pytest.raises(ObjectUnsigned):
        s.read_doc("cache/t-1/k.json")
    for forged in (
        Artifact(art.digest, art.format, art.size, "0" * 64),
        Artifact(art.digest, art.format, art.size, "0" * 64, art.inline),
    ):
        with pytest.raises(ObjectUnsigned):
            s.get(forged)
        assert not s.has(forged)
    other = s.put([9])
    with pytest.raises(ObjectUnsigned):  # a genuine signature of another artifact
        s.get(Artifact(art.digest, art.format, art.size, other.sig))
    assert s.get(art) == [1, 2, 3]


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), signed=st.booleans())
def test_any_planted_document_is_a_miss_never_a_crash(
    tmp_path: Path, data: bytes, signed: bool
) -> None:
    s = Store(tmp_path / "planted", key=KEY if signed else None)
    s._io.write("cache/ab/planted.json", data)
    try:
        s.read_doc("cache/ab/planted.json")
    except ObjectUnavailable:
        return
    assert not signed  # no bytes without the key pass a signed store's check
    assert data[64:65] == b"\n"


def test_unsigned_and_foreign_stores_miss_rather_than_fail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWKIT_STORE_KEY", raising=False)
    url = str(tmp_path / "s")
    signed = Store(url, key=KEY)
    signed.check()
    art = signed.put({"v": 1})
    signed.write_doc("cache/ab/k.json", {"outputs": [art.to_dict()]})
    for reader in (Store(url), Store(url, key="another key")):
        with caplog.at_level(logging.WARNING, logger="flowkit.store"):
            caplog.clear()
            with pytest.raises(ObjectMissing):
                reader.read_doc("cache/ab/k.json")
            with pytest.raises(ObjectMissing):
                reader.read_doc("cache/ab/k.json")
        assert caplog.text.count("cache/ab/k.json") == 1  # one warning, naming the file
    with pytest.raises(ObjectUnsigned):
        Store(url, key="another key").get(art)
    unsigned_art = Store(url).put({"v": 2})
    with pytest.raises(ObjectUnsigned):
        signed.get(unsigned_art)

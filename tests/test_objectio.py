"""The storage seam: one ObjectIO protocol (LocalIO, FsspecIO) under the Store, and RunStore.

The same contract runs on both implementations; a third, dict-backed ObjectIO shows that the
Store builds its policies on the protocol alone, whichever implementation it holds.
"""

from __future__ import annotations

import errno
import io
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from flowkit.errors import StoreError
from flowkit.fsio import MMAP_MIN, FsspecIO, LocalIO, ObjectIO, StoreFault
from flowkit.runstore import RunStore
from flowkit.store import ObjectCorrupt, ObjectMissing, Store


def _memory_io() -> FsspecIO:
    import fsspec

    return FsspecIO(fsspec.filesystem("memory"), f"/fk-io-{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["local", "memory"])
def object_io(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectIO:
    if request.param == "local":
        return LocalIO(str(tmp_path / "root"))
    return _memory_io()


def _writes(data: bytes, rel: str) -> Callable[[IO[bytes]], str]:
    def fill(sink: IO[bytes]) -> str:
        sink.write(data)
        return rel

    return fill


# -- the contract, on both implementations ---------------------------------------------------


def test_write_read_size_list_remove(object_io: ObjectIO) -> None:
    object_io.write("a/b.json", b"doc")
    assert object_io.read("a/b.json") == b"doc"
    assert object_io.read("a/b.json", once=True).startswith(b"d")
    assert object_io.size("a/b.json") == 3
    assert object_io.size("a/none") is None
    assert object_io.list("a") == ["b.json"]
    assert object_io.list("nothing") == []
    data, _ = object_io.read_object("a/b.json", 3)
    assert bytes(data) == b"doc"
    object_io.remove("a/b.json")
    object_io.remove("a/b.json")  # already gone: no error
    assert object_io.size("a/b.json") is None
    with pytest.raises(FileNotFoundError):
        object_io.read("a/b.json")


def test_walk_lists_files_relative_to_the_root(object_io: ObjectIO) -> None:
    object_io.write("objects/ab/x", b"1")
    object_io.write("objects/cd/y", b"22")
    found = sorted((rel, size) for rel, size, _ in object_io.walk("objects"))
    assert found == [("objects/ab/x", 1), ("objects/cd/y", 2)]
    assert list(object_io.walk("missing")) == []


def test_put_streams_to_the_path_fill_returns(object_io: ObjectIO) -> None:
    object_io.put(_writes(b"hello", "objects/he/hello"))
    assert object_io.read("objects/he/hello") == b"hello"


def test_put_writes_nothing_when_fill_fails(object_io: ObjectIO) -> None:
    class Refused(Exception):
        pass

    def fill(sink: IO[bytes]) -> str:
        sink.write(b"half")
        raise Refused

    with pytest.raises(Refused):  # the error of fill, unchanged
        object_io.put(fill)
    assert [rel for rel, _, _ in object_io.walk("")] == []  # no object, no temporary file


@pytest.mark.parametrize("data", [b"", b"held in memory"])
def test_put_of_a_fill_that_keeps_nothing_writes_nothing(object_io: ObjectIO, data: bytes) -> None:
    def fill(sink: IO[bytes]) -> None:
        if data:
            sink.write(data)
        return None  # an inline value: no object

    object_io.put(fill)
    assert [rel for rel, _, _ in object_io.walk("")] == []  # no object, no temporary file


def test_local_put_makes_no_temporary_file_before_the_first_write(tmp_path: Path) -> None:
    io_ = LocalIO(str(tmp_path / "root"))
    seen: list[bool] = []

    def fill(sink: IO[bytes]) -> str:
        seen.append((tmp_path / "root" / "tmp").exists())
        sink.write(b"x")
        seen.append(any((tmp_path / "root" / "tmp").iterdir()))
        return "objects/x"

    io_.put(fill)
    assert seen == [False, True] and io_.read("objects/x") == b"x"


def test_put_replaces_a_local_object_damaged_in_place(tmp_path: Path) -> None:
    io_ = LocalIO(str(tmp_path))
    io_.write("objects/x", b"wrong")
    io_.put(_writes(b"right", "objects/x"))
    assert io_.read("objects/x") == b"right"


def test_remote_put_skips_a_big_object_already_there() -> None:
    io_ = _memory_io()
    big = os.urandom(MMAP_MIN)
    io_.write("objects/big", big)
    sent: list[str] = []
    real_upload = io_.upload

    def upload(spool: IO[bytes], rel: str) -> None:
        sent.append(rel)
        real_upload(spool, rel)

    io_.upload = upload  # type: ignore[method-assign]
    io_.put(_writes(big, "objects/big"))
    assert sent == []  # there with the right size: content-addressed, so the same bytes
    io_.put(_writes(b"small", "objects/small"))
    io_.put(_writes(b"small", "objects/small"))
    assert sent == ["objects/small", "objects/small"]  # small ones are simply put again


# -- the Store over any ObjectIO ---------------------------------------------------------------


class DictIO:
    """A third ObjectIO: files in a dict (what a plugin author's implementation looks like)."""

    def __init__(self) -> None:
        self.root = "dict"
        self.files: dict[str, bytes] = {}

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def read(self, rel: str, *, once: bool = False) -> bytes:
        try:
            return self.files[rel]
        except KeyError:
            raise FileNotFoundError(rel) from None

    def read_object(self, rel: str, size: int) -> tuple[Any, str | None]:
        return self.read(rel), None

    def write(self, rel: str, data: bytes) -> None:
        self.files[rel] = bytes(data)

    def put(self, fill: Callable[[IO[bytes]], str | None]) -> None:
        buffer = io.BytesIO()
        rel = fill(buffer)
        if rel is not None:
            self.files[rel] = buffer.getvalue()

    def size(self, rel: str) -> int | None:
        data = self.files.get(rel)
        return None if data is None else len(data)

    def list(self, rel: str) -> list[str]:
        prefix = f"{rel}/" if rel else ""
        return sorted({k[len(prefix) :].split("/")[0] for k in self.files if k.startswith(prefix)})

    def remove(self, rel: str) -> None:
        self.files.pop(rel, None)

    def walk(self, rel: str) -> Iterator[tuple[str, int, float | None]]:
        for k, v in list(self.files.items()):
            if k.startswith(f"{rel}/"):
                yield k, len(v), None


def _dict_store(**kwargs: Any) -> tuple[Store, DictIO]:
    store = Store(f"memory://fk-dict-{uuid.uuid4().hex[:12]}", **kwargs)
    io_ = DictIO()
    store._io_ = io_  # the seam: the store never asks which ObjectIO it holds
    store.check()
    return store, io_


BIG = {"a": list(range(400))}  # over INLINE_MAX once serialized: an object


def test_a_store_works_over_any_object_io() -> None:
    store, io_ = _dict_store(key=b"team key")
    assert "flowkit-store.json" in io_.files
    small = store.put({"a": [1, 2]}, what="task `t` output")
    assert small.inline is not None and list(io_.files) == ["flowkit-store.json"]
    assert store.has(small) and store.get(small) == {"a": [1, 2]}
    art = store.put(BIG, what="task `t` output")
    assert art.inline is None and io_.files[Store.object_path(art.digest)]
    assert store.has(art) and store.get(art) == BIG
    store.write_doc("cache/t-1/k.json", {"x": 1})
    store.write_doc("runs/r/tasks-000000.json.gz", [{"x": 2}])
    assert store.read_doc("cache/t-1/k.json") == {"x": 1}
    assert store.read_doc("runs/r/tasks-000000.json.gz") == [{"x": 2}]
    assert io_.files["runs/r/tasks-000000.json.gz"].split(b"\n", 1)[1][:2] == b"\x1f\x8b"  # gzip
    assert store.list_dir("cache") == ["t-1"]
    io_.files[Store.object_path(art.digest)] = b"damaged"
    with pytest.raises(ObjectCorrupt):
        store.get(art)
    assert Store.object_path(art.digest) not in io_.files  # removed so it is written again
    with pytest.raises(ObjectMissing):
        store.get(art)


def test_an_object_io_failure_is_a_named_fault() -> None:
    store, io_ = _dict_store()

    def full(fill: Callable[[IO[bytes]], str | None]) -> None:
        fill(io.BytesIO())
        raise OSError(errno.ENOSPC, "No space left on device")

    io_.put = full  # type: ignore[method-assign]
    with pytest.raises(StoreFault, match=r"cannot write task `t` output to store .*ENOSPC"):
        store.put(BIG, what="task `t` output")


# -- run records -------------------------------------------------------------------------------


class DictDocs:
    """The least a RunStore needs: documents by path and listings."""

    url = "dict://docs"

    def __init__(self) -> None:
        self.docs: dict[str, Any] = {}

    def read_doc(self, rel: str) -> Any:
        try:
            return self.docs[rel]
        except KeyError:
            raise ObjectMissing(rel) from None

    def write_doc(self, rel: str, obj: Any, *, plain: bool = False) -> None:
        self.docs[rel] = obj

    def list_dir(self, rel: str) -> list[str]:
        prefix = f"{rel}/"
        return sorted({k[len(prefix) :].split("/")[0] for k in self.docs if k.startswith(prefix)})


def test_run_store_owns_run_records() -> None:
    runs = RunStore(DictDocs())
    runs.write_run("r-1", {"status": "succeeded"})
    runs.write_task_records("r-1", 1, [{"name": "b"}])
    runs.write_task_records("r-1", 0, [{"name": "a"}])
    runs.write_run("r-2", {"status": "running"})
    assert [h["id"] for h in runs.list_runs()] == ["r-2", "r-1"]
    assert runs.read_run("r-1") == ({"status": "succeeded"}, [{"name": "a"}, {"name": "b"}])
    assert runs.find_run("r-2") == "r-2"
    with pytest.raises(StoreError, match="ambiguous"):
        runs.find_run("r-")
    with pytest.raises(StoreError, match="invalid run id"):
        runs.write_run("../x", {})


def test_store_run_methods_delegate_to_its_run_store(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    store.check()
    store.runs.write_run("r", {"status": "ok"})
    store.write_task_records("r", 0, [{"name": "t"}])
    assert store.read_run("r") == store.runs.read_run("r") == ({"status": "ok"}, [{"name": "t"}])
    assert store.list_runs() == store.runs.list_runs() == [{"status": "ok", "id": "r"}]

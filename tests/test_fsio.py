"""Raw local reads (fsio.read_file): exact bytes whatever the size, few system calls."""

from __future__ import annotations

import errno
import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowkit.errors import StoreError
from flowkit.fsio import HashingWriter, LocalIO, SinkError, read_file, sink_error_in


@pytest.mark.parametrize("n", [0, 1, 700, 65535, 65536, 65537, 300_000])
def test_read_file_without_a_size_reads_to_the_end(tmp_path: Path, n: int) -> None:
    data = os.urandom(n)
    (tmp_path / "f").write_bytes(data)
    assert read_file(str(tmp_path / "f")) == data


@pytest.mark.parametrize("n", [0, 1, 3, 4096, 70_000])
def test_read_file_with_the_right_size(tmp_path: Path, n: int) -> None:
    data = os.urandom(n)
    (tmp_path / "f").write_bytes(data)
    assert read_file(str(tmp_path / "f"), n) == data


def test_read_file_with_a_wrong_size_shows_it(tmp_path: Path) -> None:
    data = os.urandom(1000)
    (tmp_path / "f").write_bytes(data)
    longer = read_file(str(tmp_path / "f"), 10)
    assert longer == data[:11]  # one byte past the expected size: the caller sees "too long"
    assert read_file(str(tmp_path / "f"), 5000) == data  # shorter: everything there is


def test_local_io_reads_and_misses(tmp_path: Path) -> None:
    io_ = LocalIO(str(tmp_path))
    io_.write("a/b.json", b"doc")
    assert io_.read("a/b.json") == b"doc"
    assert io_.read_object("a/b.json", 3) == (b"doc", os.path.join(str(tmp_path), "a/b.json"))
    assert io_.path("a/b.json") == os.path.join(str(tmp_path), "a/b.json")
    with pytest.raises(FileNotFoundError):
        io_.read("a/missing.json")
    with pytest.raises(FileNotFoundError):
        io_.read_object("missing", 3)
    with pytest.raises(IsADirectoryError):
        io_.read("a")


@pytest.mark.parametrize("n", [0, 700, 65535, 65536, 65537, 300_000])
def test_read_file_once_stops_only_after_a_short_read(tmp_path: Path, n: int) -> None:
    data = os.urandom(n)
    (tmp_path / "f").write_bytes(data)
    assert read_file(str(tmp_path / "f"), once=True) == data  # local reads are never short


# -- links are never followed below a store's root ------------------------------------------

LOOP = rf"\[Errno {errno.ELOOP}\]"  # how an OSError(ELOOP) reads


def test_read_file_does_not_follow_a_link(tmp_path: Path) -> None:
    (tmp_path / "target").write_bytes(b"secret")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(OSError, match=LOOP) as info:
        read_file(str(tmp_path / "link"))
    assert info.value.errno == errno.ELOOP


def test_local_io_refuses_linked_folders_and_files(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_bytes(b"outside")
    root = tmp_path / "root"
    root.mkdir()
    (root / "objects").symlink_to(outside, target_is_directory=True)
    (root / "doc").symlink_to(outside / "f")
    io_ = LocalIO(str(root))
    for call in (
        lambda: io_.read("objects/f"),
        lambda: io_.read_object("objects/f", 7),
        lambda: io_.write("objects/g", b"x"),
        lambda: io_.remove("objects/f"),
        lambda: io_.read("doc"),
    ):
        with pytest.raises(OSError, match=LOOP) as info:
            call()
        assert info.value.errno == errno.ELOOP
    assert io_.size("doc") is None  # a link is not an object of any size
    with pytest.raises(OSError, match=LOOP):
        list(io_.walk("objects"))  # a linked top folder is refused, not walked
    assert sorted(os.listdir(outside)) == ["f"] and (outside / "f").read_bytes() == b"outside"
    io_.remove("doc")  # the link itself goes, never its target
    assert (outside / "f").exists()


def test_hashing_writer_reports_sink_failures_as_sink_errors() -> None:
    class Full(io.RawIOBase):
        def write(self, b: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    w = HashingWriter(Full())  # type: ignore[arg-type]
    with pytest.raises(SinkError) as info:
        w.write(b"abc")
    assert isinstance(info.value, StoreError) and info.value.error.errno == errno.ENOSPC
    assert sink_error_in(RuntimeError("wrapped")) is None
    outer = RuntimeError("serializer wrapped it")
    outer.__cause__ = info.value
    assert sink_error_in(outer) is info.value


@pytest.mark.parametrize("folder", ["objects", "cache", "fingerprints"])
def test_a_linked_shard_among_real_ones_is_refused_after_the_listing(
    tmp_path: Path, folder: str
) -> None:
    """Shards (and a task's cache folders) are checked from one listing of their folder: a
    real one is read, one that is a link is never marked as checked, before or after the
    listing."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "cd.json").write_bytes(b"outside")
    root = tmp_path / "root"
    (root / folder / "aa").mkdir(parents=True)
    (root / folder / "aa" / "cd.json").write_bytes(b"inside")
    (root / folder / "ab").symlink_to(outside, target_is_directory=True)
    io_ = LocalIO(str(root))
    assert io_.read(f"{folder}/aa/cd.json") == b"inside"  # lists the folder once
    for rel in (f"{folder}/ab/cd.json", f"{folder}/ab/cd.json"):  # refused, and again
        with pytest.raises(OSError, match=LOOP):
            io_.read(rel)
    (root / folder / "ac").mkdir()  # made after the listing: checked on its own
    (root / folder / "ac" / "x").write_bytes(b"later")
    assert io_.read(f"{folder}/ac/x") == b"later"


# -- a hashing writer that holds small values in memory ------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(st.binary(max_size=700), max_size=6),
    hold=st.integers(min_value=1, max_value=1500),
)
def test_hashing_writer_holds_what_fits_and_sends_everything_else_in_order(
    chunks: list[bytes], hold: int
) -> None:
    sink = io.BytesIO()
    w = HashingWriter(sink, hold=hold)
    for c in chunks:
        w.write(memoryview(bytearray(c)))  # a buffer the caller may reuse: must be copied
    data = b"".join(chunks)
    assert w.hasher.size == len(data) == w.tell()
    assert w.hasher.content_sha256() == hashlib.sha256(data).hexdigest()
    if len(data) <= hold:
        assert w.held == data and sink.getvalue() == b""  # nothing reached the sink
        w.release()
    else:
        assert w.held is None
    assert sink.getvalue() == data
    w.write(b"more")  # after a release, everything goes straight through
    assert sink.getvalue() == data + b"more" and w.held is None

"""Raw local reads (fsio.read_file): exact bytes whatever the size, few system calls."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flowkit.fsio import LocalIO, read_file


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

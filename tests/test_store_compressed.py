"""Compressed documents (``*.json.gz``): a gzip body under the usual checksum or signature.

Attacks: a gzip bomb (a small file that decompresses to more than the cap), a body that is not
gzip, a truncated one, bytes after it, JSON that does not parse — each under a valid checksum,
so only the decompression can catch them — are refused as damaged, never a crash or a
hang; a damaged task-record batch is skipped with a warning.
"""

from __future__ import annotations

import gzip
import logging
import uuid
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowkit.signing import Signer, seal
from flowkit.store import ObjectCorrupt, Store, compressed

REL = "runs/r/tasks-000000.json.gz"


@pytest.fixture(params=["unsigned", "signed"])
def store(request: pytest.FixtureRequest) -> Store:
    s = Store(
        f"memory://fk-gz-{uuid.uuid4().hex[:12]}", key="k" if request.param == "signed" else None
    )
    s.check()
    return s


def plant(store: Store, rel: str, body: bytes) -> None:
    """Write ``body`` as the (compressed) body of a document, with a valid checksum or
    signature: what a writer with the key, or a bug, could leave."""
    signer = Signer(b"k") if store.signed else None
    store._io.write(rel, seal(body, rel, signer))


def test_a_compressed_document_round_trips_deterministically(store: Store) -> None:
    records = [
        {"name": "square", "node": f"square[{i}]", "status": "succeeded"} for i in range(1000)
    ]
    store.write_doc(REL, records)
    first = store._io.read(REL)
    store.write_doc(REL, records)
    assert store._io.read(REL) == first  # gzip header time 0: the same bytes
    assert store.read_doc(REL) == records
    body = first.split(b"\n", 1)[1]
    assert body[:2] == b"\x1f\x8b" and len(body) < len(str(records)) // 10


def test_only_gz_paths_are_compressed(store: Store) -> None:
    store.write_doc("runs/r/run.json", {"status": "ok"})
    assert store._io.read("runs/r/run.json").endswith(b'{"status":"ok"}')


def bomb(n_mib: int) -> bytes:
    """A gzip member of ``n_mib`` MiB of zeros (about 1 KB per MiB)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    return b"".join([z.compress(chunk) for _ in range(n_mib)] + [z.flush()])


def test_a_gzip_bomb_is_refused(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compressed, "UNPACKED_MAX", 4 << 20)  # the real cap is 256 MiB
    data = bomb(5)
    assert len(data) < 10_000
    plant(store, REL, data)
    with pytest.raises(ObjectCorrupt, match="decompresses to more than 4194304 bytes"):
        store.read_doc(REL)
    plant(store, REL, gzip.compress(b"[" + b"0," * (1 << 20) + b"0]", mtime=0))  # 2 MiB: fine
    assert len(store.read_doc(REL)) == (1 << 20) + 1


def test_the_cap_is_checked_before_the_bytes_are_kept() -> None:
    with pytest.raises(ObjectCorrupt, match="more than 1000 bytes"):
        compressed.unpack(bomb(1), "planted", limit=1000)
    assert compressed.UNPACKED_MAX == 256 << 20


GOOD = gzip.compress(b'[{"name":"a"}]', mtime=0)
DAMAGED = [
    (b"not gzip at all", "not a valid gzip body"),
    (GOOD[:-6], "truncated gzip body"),
    (GOOD[:12], "truncated gzip body"),
    (GOOD + b"trailing", "bytes after the gzip body"),
    (GOOD + GOOD, "bytes after the gzip body"),
    (GOOD[:20] + bytes([GOOD[20] ^ 0xFF]) + GOOD[21:], "gzip"),
    (gzip.compress(b"{not json", mtime=0), "Expecting property name"),
    (gzip.compress(b"\xff\xfe", mtime=0), "utf-8"),
    (b"", "truncated gzip body"),
]


@pytest.mark.parametrize(("body", "reason"), DAMAGED, ids=range(len(DAMAGED)))
def test_a_damaged_gzip_body_under_a_valid_checksum_is_refused(
    store: Store, body: bytes, reason: str
) -> None:
    plant(store, REL, body)
    with pytest.raises(ObjectCorrupt, match=reason):
        store.read_doc(REL)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200), cut=st.integers(min_value=0, max_value=60))
def test_any_gzip_body_is_a_value_or_damaged_never_a_crash(data: bytes, cut: int) -> None:
    for body in (data, GOOD[:cut] + data):
        try:
            compressed.unpack(body, "planted", limit=1 << 16)
        except ObjectCorrupt:
            pass


def test_a_damaged_batch_is_skipped_and_the_others_read(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store.write_run("r", {"status": "succeeded"})
    store.write_task_records("r", 0, [{"name": "a"}])
    store.write_task_records("r", 1, [{"name": "b"}])
    store.write_task_records("r", 2, [{"name": "c"}])
    plant(store, "runs/r/tasks-000001.json.gz", bomb(1)[:100])  # truncated, checksum intact
    raw = store._io.read("runs/r/tasks-000002.json.gz")
    store._io.write("runs/r/tasks-000002.json.gz", raw[:-1] + bytes([raw[-1] ^ 1]))  # a bit flip
    with caplog.at_level(logging.WARNING, logger="flowkit.runstore"):
        _, tasks = store.read_run("r")
    assert tasks == [{"name": "a"}]
    assert "tasks-000001.json.gz" in caplog.text and "tasks-000002.json.gz" in caplog.text


def test_batches_are_read_in_batch_order(store: Store) -> None:
    for n in (10, 2, 1_000_000, 0):
        store.write_task_records("r", n, [{"n": n}])
    store.write_run("r", {})
    assert [t["n"] for t in store.read_run("r")[1]] == [0, 2, 10, 1_000_000]


def records_shaped_like_a_map(n: int) -> list[dict[str, Any]]:
    return [
        {
            "name": "square",
            "node": f"square[{i}]",
            "status": "succeeded",
            "attempts": 1,
            "started": 1769422500.0 + i * 1e-4,
            "ended": 1769422500.0 + i * 1e-4 + 3e-5,
            "key": f"{i:064x}",
            "outputs": {"0": {"format": "json", "inline": str(i * i)}},
        }
        for i in range(n)
    ]


def test_task_records_are_stored_compressed(store: Store) -> None:
    records = records_shaped_like_a_map(1000)
    store.write_task_records("r", 0, records)
    raw = store._io.read("runs/r/tasks-000000.json.gz")
    assert len(raw) * 4 < len(str(records))
    store.write_run("r", {})
    assert store.read_run("r")[1] == records

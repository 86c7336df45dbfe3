"""The store on a local folder, memory:// and a real S3 server (moto on loopback)."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import pickle
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from flowkit.errors import SerializationError, StoreError
from flowkit.files import File
from flowkit.hashing import blob_digest
from flowkit.store import (
    INLINE_MAX,
    MARKER,
    Artifact,
    ObjectCorrupt,
    ObjectMissing,
    Store,
    hash_value,
    resolve_store,
)
from tests.conftest import S3Stores


@pytest.fixture(scope="session")
def s3_stores(s3_endpoint: str) -> S3Stores:
    """S3 stores with the access key id as ``username=``: ``key=`` is the signing key."""
    stores = S3Stores(s3_endpoint)
    stores.options = {
        "username": "flowkit-test",
        "secret": "flowkit-test",
        "endpoint_url": s3_endpoint,
    }
    return stores


VALUES: list[Any] = [
    42,
    {"a": (1, 2), "b": {3}},
    np.arange(10.0),
    np.arange(1000.0),
    pa.table({"x": [1, 2, 3]}),
    b"\x00" * 10,
    "x" * 5000,
]
# Values over INLINE_MAX once serialized: they get an object of their own.
BIG_LIST = list(range(300))
BIG: dict[str, Any] = {"answer": 42, "pad": "x" * 2000}


def raw_write(store: Store, rel: str, data: bytes) -> None:
    """Overwrite a file of the store behind its back (to simulate damage)."""
    store._io.write(rel, data)


def raw_read(store: Store, rel: str) -> bytes:
    return store._io.read(rel)


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return bool(np.array_equal(a, b))
    if isinstance(a, pa.Table):
        return bool(a.equals(b))
    return bool(a == b)


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_put_get_round_trip(any_store: Store, value: Any) -> None:
    art = any_store.put(value)
    assert art.digest == hash_value(value)[0]
    assert (art.inline is not None) == (art.size <= INLINE_MAX)
    assert any_store.has(art)
    assert equal(any_store.get(art), value)
    assert any_store.put(value) == art  # write-once: same artifact, no error
    assert (any_store._io.size(Store.object_path(art.digest)) is None) == (art.inline is not None)


def test_object_is_named_by_its_digest_and_holds_exactly_the_bytes(any_store: Store) -> None:
    art = any_store.put(BIG_LIST)
    data = raw_read(any_store, Store.object_path(art.digest))
    assert data == json.dumps(BIG_LIST, separators=(",", ":")).encode() and art.size == len(data)
    import hashlib

    assert art.digest == blob_digest("json", hashlib.sha256(data).hexdigest())


def test_file_values_come_back_as_local_paths(any_store: Store, tmp_path: Path) -> None:
    src = tmp_path / "report.txt"
    src.write_text("hello")
    art = any_store.put(File(src))
    src.unlink()
    back = any_store.get(art)
    assert isinstance(back, File)
    assert back.read_text() == "hello" and back.name == "report.txt"


def test_local_writes_leave_no_temporary_files(local_store: Store) -> None:
    local_store.put(BIG_LIST)
    with pytest.raises(SerializationError):
        local_store.put(lambda_with_lock())
    assert os.listdir(Path(local_store.root) / "tmp") == []


def lambda_with_lock() -> Any:
    import threading

    return {"lock": threading.Lock()}


def test_large_local_arrow_table_is_memory_mapped(local_store: Store) -> None:
    table = pa.table({"a": np.arange(1_000_000, dtype=np.float64)})
    art = local_store.put(table)
    before = pa.total_allocated_bytes()
    back = Store(local_store.root).get(art)
    assert back.equals(table)
    assert pa.total_allocated_bytes() - before < art.size // 10


# -- damage ----------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_damaged_object_is_detected_removed_and_rewritten(
    any_store: Store, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    art = any_store.put(BIG)
    rel = Store.object_path(art.digest)
    good = raw_read(any_store, rel)
    bad = {
        "truncate": good[: len(good) // 2],
        "flip": good[:3] + bytes([good[3] ^ 0x01]) + good[4:],
        "empty": b"",
        "garbage": b"x" * len(good),
    }[damage]
    raw_write(any_store, rel, bad)
    with caplog.at_level(logging.WARNING, logger="flowkit.store"), pytest.raises(ObjectCorrupt):
        any_store.get(art)
    assert "damaged" in caplog.text
    assert not any_store.has(art)
    with pytest.raises(ObjectMissing):
        any_store.get(art)
    assert any_store.put(BIG) == art
    assert any_store.get(art) == BIG


def test_object_longer_than_its_size_is_damaged(
    any_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    art = any_store.put(BIG)
    rel = Store.object_path(art.digest)
    raw_write(any_store, rel, raw_read(any_store, rel) + b" trailing")
    with caplog.at_level(logging.WARNING, logger="flowkit.store"), pytest.raises(ObjectCorrupt):
        any_store.get(art)
    assert f"expected {art.size}" in caplog.text
    assert not any_store.has(art)


@pytest.mark.parametrize("suffix", [".json", ".json.gz"])
@pytest.mark.parametrize("n", [1, 2_000, 20_000])
def test_documents_of_any_size_round_trip_and_damage_is_caught(
    any_store: Store, n: int, suffix: str
) -> None:
    rel = f"runs/big/tasks-000000{suffix}"
    records = [{"name": f"task-{i}", "key": "k" * 64} for i in range(n)]  # 1 up to ~1.6 MB
    any_store.write_doc(rel, records)
    assert any_store.read_doc(rel) == records
    raw = raw_read(any_store, rel)
    raw_write(any_store, rel, raw[:-2] + b"]]")
    with pytest.raises(ObjectCorrupt, match="checksum"):
        any_store.read_doc(rel)


def test_missing_object(any_store: Store) -> None:
    with pytest.raises(ObjectMissing):
        any_store.get(Artifact("0" * 64, "json", 2))


# -- marker and reachability -----------------------------------------------------------------


def test_check_creates_the_marker_once(any_store: Store) -> None:
    assert json.loads(raw_read(any_store, MARKER)) == {"format": 3}
    any_store.check()


@pytest.mark.parametrize(
    ("marker", "message"),
    [(b'{"format": 4}', "format 4"), (b"{not json", "damaged"), (b'{"other": 1}', "damaged")],
)
def test_unknown_or_damaged_format_is_refused(
    any_store: Store, marker: bytes, message: str
) -> None:
    raw_write(any_store, MARKER, marker)
    with pytest.raises(StoreError, match=message) as info:
        any_store.check()
    assert any_store.url in str(info.value)


def test_non_empty_folder_without_marker_is_refused(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(StoreError, match="not a flowkit store"):
        Store(tmp_path).check()


def test_unreachable_s3_endpoint_names_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = Store(
        "s3://bucket/prefix", username="k", secret="s", endpoint_url=f"http://127.0.0.1:{port}"
    )
    with pytest.raises(StoreError, match="unreachable") as info:
        store.check()
    assert "s3://bucket/prefix" in str(info.value)


def test_missing_bucket_names_the_url(s3_stores: S3Stores) -> None:
    store = Store("s3://no-such-bucket/p", **s3_stores.options)
    with pytest.raises(StoreError, match="does not exist") as info:
        store.check()
    assert "s3://no-such-bucket/p" in str(info.value)


def test_aws_environment_variables_are_honoured(
    s3_stores: S3Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_stores.bucket()
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_stores.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "flowkit-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "flowkit-test")
    store = Store(f"s3://{bucket}/env")
    store.check()
    assert store.get(store.put("via env")) == "via env"


# -- opening, pickling -----------------------------------------------------------------------


def test_urls_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Store(f"file://{tmp_path}").root == str(tmp_path)
    assert Store(tmp_path).local and Store(str(tmp_path)).url == str(tmp_path)
    assert not Store("memory://x").local
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWKIT_STORE", raising=False)
    assert resolve_store(None).root == str(tmp_path / ".flowkit")
    monkeypatch.setenv("FLOWKIT_STORE", "memory://from-env")
    assert resolve_store().url == "memory://from-env"
    store = Store("memory://given")
    assert Store.open(store) is store


def test_store_pickles_as_url_and_options(any_store: Store) -> None:
    art = any_store.put([1, 2, 3])
    any_store._io  # noqa: B018 - make sure a live filesystem exists before pickling
    clone = pickle.loads(pickle.dumps(any_store))
    assert clone == any_store
    assert clone.get(art) == [1, 2, 3]


# -- run records -----------------------------------------------------------------------------


def test_run_records(any_store: Store) -> None:
    any_store.write_run("20240101T000000.000001-aaaaaa", {"workflow": "old", "status": "succeeded"})
    run_id = "20240102T000000.000001-bbbbbb"
    any_store.write_run(run_id, {"workflow": "new", "status": "running"})
    any_store.write_task_records(run_id, 1, [{"name": "b"}])
    any_store.write_task_records(run_id, 0, [{"name": "a"}, {"name": "a2"}])
    any_store.write_run(run_id, {"workflow": "new", "status": "failed"})
    runs = any_store.list_runs()
    assert [r["workflow"] for r in runs] == ["new", "old"]
    assert runs[0]["id"] == run_id and runs[0]["status"] == "failed"
    header, tasks = any_store.read_run("20240102")
    assert header["status"] == "failed"
    assert [t["name"] for t in tasks] == ["a", "a2", "b"]
    assert any_store.list_runs(limit=1) == runs[:1]


def test_read_run_errors(any_store: Store) -> None:
    with pytest.raises(StoreError, match="no run"):
        any_store.read_run("nope")
    any_store.write_run("r-1", {})
    any_store.write_run("r-2", {})
    with pytest.raises(StoreError, match="ambiguous"):
        any_store.read_run("r-")
    with pytest.raises(StoreError, match="invalid run id"):
        any_store.write_run("../escape", {})


def test_killed_run_keeps_written_batches_and_damaged_batches_are_skipped(
    any_store: Store,
) -> None:
    any_store.write_run("r", {"status": "running"})
    any_store.write_task_records("r", 0, [{"name": "a"}])
    any_store.write_task_records("r", 1, [{"name": "b"}])
    raw_write(any_store, "runs/r/tasks-000001.json.gz", b"{trunc")
    _, tasks = any_store.read_run("r")
    assert tasks == [{"name": "a"}]


# -- concurrency -----------------------------------------------------------------------------


def _writer(store: Store, n: int, out: Any) -> None:
    arts = []
    for i in range(n):
        arts.append(store.put({"value": i, "payload": "x" * (i * 100)}))
        arts.append(store.put(np.full(50_000, i)))
    store.write_task_records("shared", 0, [{"pid": os.getpid()}])
    out.put([a.to_dict() for a in arts])


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_three_processes_writing_the_same_objects_all_succeed(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "local":
        store = Store(tmp_path / "store")
        store.check()
    else:
        store = request.getfixturevalue("s3_stores").new()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(store, 8, out)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert results[0] == results[1] == results[2]
    for d in results[0]:
        art = Artifact.from_dict(d)
        assert store.get(art) is not None
    if kind == "local":
        assert os.listdir(Path(store.root) / "tmp") == []
    assert store.read_run("shared")[1][0]["pid"] > 0


# -- older formats ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [1, 2])
def test_an_older_store_is_refused_with_what_to_do(any_store: Store, fmt: int) -> None:
    raw_write(any_store, MARKER, json.dumps({"format": fmt}).encode())
    with pytest.raises(StoreError) as info:
        any_store.check()
    text = str(info.value)
    assert f"store {any_store.url} is in format {fmt} (flowkit 0.1" in text
    assert "this flowkit uses format 3" in text
    assert "FLOWKIT_STORE" in text and "index/, tasks/, objects/, files/ and runs/" in text
    assert "runs/" in text and "not readable by this flowkit" in text


def test_task_records_of_format_2_are_not_read(local_store: Store) -> None:
    """Format 2 wrote plain ``tasks-<n>.json`` batches: this flowkit reads only its own."""
    local_store.write_run("r", {"status": "succeeded"})
    local_store.write_doc("runs/r/tasks-000000.json", [{"name": "old"}])
    local_store.write_task_records("r", 1, [{"name": "new"}])
    assert local_store.read_run("r")[1] == [{"name": "new"}]
    assert sorted(local_store.list_dir("runs/r")) == [
        "run.json",
        "tasks-000000.json",
        "tasks-000001.json.gz",
    ]


# -- documents with NaN and infinities --------------------------------------------------------


def test_documents_hold_nan_and_infinities(any_store: Store) -> None:
    header = {"inputs": {"x": float("nan"), "y": float("inf"), "z": -float("inf")}, "n": 1}
    any_store.write_run("r", header)
    back = any_store.read_run("r")[0]
    assert back["inputs"]["y"] == float("inf") and back["inputs"]["z"] == -float("inf")
    assert back["inputs"]["x"] != back["inputs"]["x"]  # NaN
    assert back["n"] == 1


# -- read-only stores ---------------------------------------------------------------------------


def tree_state(store: Store) -> dict[str, bytes]:
    """Every file of the store and its bytes (local folders and memory://)."""
    if store.local:
        root = Path(store.root)
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    fs = store._io.fs  # type: ignore[union-attr]
    base = store._io.root  # type: ignore[union-attr]
    return {p: fs.cat_file(p) for p in fs.find(base)}


@pytest.mark.parametrize("kind", ["local", "file", "memory"])
def test_a_read_only_store_serves_reads_and_writes_nothing(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWKIT_CACHE_DIR", str(tmp_path / "cache"))
    url = {
        "local": str(tmp_path / "s"),
        "file": f"file://{tmp_path / 's'}",
        "memory": f"memory://ro-{os.getpid()}-{id(tmp_path)}",
    }[kind]
    writer = Store(url)
    writer.check()
    art = writer.put(BIG)
    small = writer.put({"kept": [1, 2]})
    src = tmp_path / "f.txt"
    src.write_text("10")
    file_art = writer.put(File(src))
    writer.write_run("r-1", {"status": "succeeded"})
    writer.write_doc("cache/t-1/k.json", {"outputs": [art.to_dict()]})
    before = tree_state(writer)

    ro = Store(url, read_only=True)
    assert ro.read_only and repr(ro).endswith("read_only)")
    ro.check()
    assert ro.get(art) == BIG and ro.get(small) == {"kept": [1, 2]}
    loaded = ro.get(file_art)
    assert loaded.read_text() == "10"
    assert loaded.path.startswith(str(tmp_path / "cache"))  # unpacked outside the store
    assert ro.read_doc("cache/t-1/k.json") == {"outputs": [art.to_dict()]}
    assert ro.list_runs()[0]["id"] == "r-1"
    new = ro.put({"new": True, "pad": "y" * 2000})
    assert new.digest == hash_value({"new": True, "pad": "y" * 2000})[0]
    with pytest.raises(ObjectMissing):
        ro.get(new)  # computed, not stored
    inline = ro.put({"new": True})  # a small value is the artifact itself
    assert inline.digest == hash_value({"new": True})[0] and ro.get(inline) == {"new": True}
    ro.write_doc("cache/t-1/k2.json", {"x": 1})
    ro.write_run("r-2", {"status": "running"})
    ro.write_task_records("r-2", 0, [{"name": "t"}])
    ro.delete("cache/t-1/k.json")
    ro.delete_object(art.digest)
    assert tree_state(writer) == before
    raw_write(writer, Store.object_path(art.digest), b"damaged")
    before = tree_state(writer)
    with pytest.raises(ObjectCorrupt):
        ro.get(art)  # damaged: a miss, but a read-only store removes nothing
    assert tree_state(writer) == before
    assert pickle.loads(pickle.dumps(ro)).read_only


def test_a_read_only_store_does_not_create_a_missing_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="opened read-only, so flowkit cannot create it"):
        Store(tmp_path / "new", read_only=True).check()
    assert not (tmp_path / "new").exists()


# -- signed stores ------------------------------------------------------------------------------


def test_signed_store_round_trip_and_envelope(any_store: Store) -> None:
    s = Store(any_store.url, key=b"k3y", **any_store.storage_options)
    assert s.signed and not any_store.signed
    for value in ({"a": 1}, BIG):
        art = s.put(value)
        assert art.sig is not None and art == Artifact(art.digest, art.format, art.size)
        assert Artifact.from_dict(art.to_dict()).sig == art.sig
        assert Artifact.from_dict(art.to_dict(compact=True)).sig == art.sig
        assert s.get(art) == value and s.has(art)
    s.write_run("r", {"status": "ok"})
    assert raw_read(s, "runs/r/run.json").startswith(b"hmac-sha256:")
    assert s.read_run("r")[0] == {"status": "ok"}


def test_the_key_comes_from_the_environment_and_travels_with_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWKIT_STORE_KEY", "from-env")
    s = Store(tmp_path / "s")
    assert s.signed
    s.check()
    art = s.put(5)
    monkeypatch.delenv("FLOWKIT_STORE_KEY")
    clone = pickle.loads(pickle.dumps(s))  # a worker without the variable
    assert clone.signed and clone == s and clone.get(art) == 5
    assert not pickle.loads(pickle.dumps(Store(tmp_path / "s"))).signed
    assert "from-env" not in repr(s) and "signed" in repr(s)
    assert Store(tmp_path / "s", key="from-env") == s != Store(tmp_path / "s", key="other")


def test_key_mistakes_are_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(StoreError, match="key= is empty"):
        Store("memory://x", key="")
    with pytest.raises(StoreError, match="username="):
        Store("s3://bucket/p", key="AKIA...", secret="...")  # the old spelling of S3 keys
    assert Store("s3://bucket/p", key="sign", username="AKIA", secret="...").signed


def test_signer_is_hmac_sha256() -> None:
    import hmac

    from flowkit.signing import Signer

    for key in (b"k", b"x" * 64, b"y" * 65, os.urandom(200)):
        for msg in (b"", b"abc", os.urandom(1000)):
            assert Signer(key).mac(msg) == hmac.digest(key, msg, "sha256")

"""Conditional writes in the store: create_doc (only if absent) and read_doc_versioned /
replace_doc (compare-and-swap), the ground the scheduler lease and the fire claims stand on.

Raced by threads and by separate processes on a local folder, memory:// and a real S3 server
(moto); checked against a model by hypothesis; attacked with planted files; and run against an
S3 endpoint that ignores conditional headers (a proxy in front of moto that strips them).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowkit.errors import StoreError
from flowkit.fsio import ObjectCorrupt, ObjectMissing, ObjectUnsigned
from flowkit.store import Store
from tests.automation.contenders import create_and_increment, increment
from tests.automation.s3proxy import CONDITIONS, proxied_store
from tests.conftest import S3Stores

DOC = "race/doc.json"


def _raw_write(store: Store, rel: str, data: bytes) -> None:
    """Put bytes in the store behind flowkit's back (what an attacker or a bug leaves)."""
    store._io.write(rel, data)


# -- semantics, on every kind of store ---------------------------------------------------------


def test_create_doc_creates_once_and_reads_back_like_write_doc(any_store: Store) -> None:
    assert any_store.create_doc(DOC, {"n": 1}) is True
    assert any_store.create_doc(DOC, {"n": 2}) is False
    assert any_store.read_doc(DOC) == {"n": 1}
    any_store.write_doc("race/plain.json", {"n": 1})  # the same envelope, the same bytes
    assert any_store._io.read(DOC) == any_store._io.read("race/plain.json")


def test_compare_and_swap_writes_only_over_the_version_read(any_store: Store) -> None:
    any_store.write_doc(DOC, {"n": 1})
    doc, version = any_store.read_doc_versioned(DOC)
    assert doc == {"n": 1}
    assert any_store.replace_doc(DOC, {"n": 2}, version) is True
    assert any_store.replace_doc(DOC, {"n": 3}, version) is False  # stale
    assert any_store.read_doc(DOC) == {"n": 2}
    _, newer = any_store.read_doc_versioned(DOC)
    assert newer != version
    any_store.delete(DOC)
    assert any_store.replace_doc(DOC, {"n": 4}, newer) is False  # vanished
    with pytest.raises(ObjectMissing):
        any_store.read_doc_versioned(DOC)
    with pytest.raises(ObjectMissing):
        any_store.read_doc(DOC)


def test_a_created_doc_can_be_swapped_and_a_gz_doc_is_compressed(any_store: Store) -> None:
    assert any_store.create_doc("race/doc.json.gz", {"rows": list(range(500))})
    doc, version = any_store.read_doc_versioned("race/doc.json.gz")
    assert doc == {"rows": list(range(500))}
    assert any_store.replace_doc("race/doc.json.gz", {"rows": []}, version)
    assert any_store.read_doc("race/doc.json.gz") == {"rows": []}
    assert len(any_store._io.read("race/doc.json.gz")) < 400


def test_a_document_that_is_not_json_data_is_refused_by_name(any_store: Store) -> None:
    with pytest.raises(StoreError, match=re.escape(DOC)):
        any_store.create_doc(DOC, {"f": object()})
    assert any_store.create_doc(DOC, {"n": 1})
    _, version = any_store.read_doc_versioned(DOC)
    with pytest.raises(StoreError, match=re.escape(DOC)):
        any_store.replace_doc(DOC, {"f": {1, 2}}, version)


@pytest.mark.parametrize("rel", ["../escape.json", "/abs.json", "a//b.json", "a/./b", ""])
def test_paths_leaving_the_store_are_refused(local_store: Store, rel: str) -> None:
    for call in (
        lambda: local_store.create_doc(rel, {}),
        lambda: local_store.replace_doc(rel, {}, "v"),
        lambda: local_store.read_doc_versioned(rel),
    ):
        with pytest.raises(StoreError, match="refusing path"):
            call()


def test_a_read_only_store_refuses_conditional_writes_by_name(local_store: Store) -> None:
    local_store.write_doc(DOC, {"n": 1})
    ro = Store(local_store.root, read_only=True)
    for call in (
        lambda: ro.create_doc("race/new.json", {}),
        lambda: ro.replace_doc(DOC, {"n": 2}, "v"),
        lambda: ro.read_doc_versioned(DOC),
    ):
        with pytest.raises(StoreError, match=f"{ro.url}.*read-only"):
            call()
    assert local_store.read_doc(DOC) == {"n": 1}
    assert not os.path.exists(os.path.join(local_store.root, "race", "new.json"))


def test_guarantees_by_kind(any_store: Store) -> None:
    expected = {"atomic"} if any_store.local or any_store.url.startswith("s3://") else {"process"}
    assert any_store._io.guarantee() in expected  # type: ignore[attr-defined]
    assert not [n for n in any_store.list_dir("tmp") if "probe" in n]  # the S3 probe is gone


# -- signed stores and planted files ------------------------------------------------------------


def test_signed_documents_are_created_signed_and_refused_without_the_key(tmp_path: Path) -> None:
    signed = Store(tmp_path / "s", key="k1")
    signed.check()
    assert signed.create_doc(DOC, {"n": 1})
    assert signed._io.read(DOC).startswith(b"hmac-sha256:")
    assert signed.read_doc_versioned(DOC)[0] == {"n": 1}
    other = Store(tmp_path / "s", key="k2")
    with pytest.raises(ObjectUnsigned) as info:
        other.read_doc_versioned(DOC)
    assert info.value.version is not None
    assert other.create_doc(DOC, {"n": 9}) is False  # there, even if unreadable


@pytest.mark.parametrize(
    "planted",
    [b"", b"not a document", b"0" * 64 + b"\n{}", b"\xff\xfe" * 40, b"hmac-sha256:" + b"0" * 64],
    ids=["empty", "text", "bad-checksum", "binary", "truncated-signature"],
)
def test_a_damaged_document_gives_its_version_so_it_can_be_replaced(
    any_store: Store, planted: bytes
) -> None:
    _raw_write(any_store, DOC, planted)
    with pytest.raises((ObjectCorrupt, ObjectUnsigned)) as info:
        any_store.read_doc_versioned(DOC)
    version = info.value.version
    assert version is not None
    assert any_store.create_doc(DOC, {"n": 1}) is False
    assert any_store.replace_doc(DOC, {"n": 1}, version) is True
    assert any_store.read_doc(DOC) == {"n": 1}


def test_an_unsigned_document_planted_in_a_signed_store_is_replaced_not_read(
    tmp_path: Path,
) -> None:
    Store(tmp_path / "s").write_doc(DOC, {"holder": "mallory", "expires": 1e18})
    signed = Store(tmp_path / "s", key="k")
    with pytest.raises(ObjectUnsigned) as info:
        signed.read_doc_versioned(DOC)
    assert info.value.version is not None
    assert signed.replace_doc(DOC, {"n": 1}, info.value.version)
    assert signed.read_doc(DOC) == {"n": 1}


def test_a_link_or_folder_planted_at_the_path_is_never_followed_or_replaced(
    local_store: Store, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.json"
    outside.write_bytes(b"precious")
    os.makedirs(os.path.join(local_store.root, "race"), exist_ok=True)
    os.symlink(outside, os.path.join(local_store.root, DOC))
    assert local_store.create_doc(DOC, {"n": 1}) is False
    with pytest.raises(ObjectCorrupt, match=re.escape(DOC)):
        local_store.read_doc_versioned(DOC)
    with pytest.raises(StoreError, match=re.escape(DOC)):
        local_store.replace_doc(DOC, {"n": 1}, "0" * 64)
    assert outside.read_bytes() == b"precious"
    os.makedirs(os.path.join(local_store.root, "race", "dir.json"))
    assert local_store.create_doc("race/dir.json", {"n": 1}) is False
    with pytest.raises(ObjectCorrupt, match="not a regular file"):
        local_store.read_doc_versioned("race/dir.json")


def test_create_leaves_no_temporary_file(local_store: Store) -> None:
    for i in range(5):
        local_store.create_doc(DOC, {"i": i})
        _, version = local_store.read_doc_versioned(DOC)
        local_store.replace_doc(DOC, {"i": i}, version)
    assert os.listdir(os.path.join(local_store.root, "tmp")) == []


# -- against a model ----------------------------------------------------------------------------

_OPS = st.lists(
    st.tuples(
        st.sampled_from(["create", "replace", "stale", "delete", "read_versioned"]),
        st.sampled_from(["a.json", "b/c.json"]),
        st.integers(0, 3),
    ),
    max_size=25,
)


class _Model:
    """What the store should hold, and the (version, value) last read of each path."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.values: dict[str, int] = {}
        self.read: dict[str, tuple[str, int]] = {}

    def create(self, rel: str, n: int) -> None:
        assert self.store.create_doc(rel, {"n": n}) is (rel not in self.values)
        self.values.setdefault(rel, n)

    def read_versioned(self, rel: str, n: int) -> None:
        if rel not in self.values:
            with pytest.raises(ObjectMissing):
                self.store.read_doc_versioned(rel)
            return
        doc, version = self.store.read_doc_versioned(rel)
        assert doc == {"n": self.values[rel]}
        self.read[rel] = (version, self.values[rel])

    def replace(self, rel: str, n: int) -> None:
        if rel in self.values:
            _, version = self.store.read_doc_versioned(rel)
            assert self.store.replace_doc(rel, {"n": n}, version)
            self.values[rel] = n

    def stale(self, rel: str, n: int) -> None:
        """Swap against the version read earlier: versions compare values on these stores,
        so it holds iff the value is the same as then."""
        if rel in self.read:
            version, value = self.read[rel]
            ok = self.store.replace_doc(rel, {"n": n}, version)
            assert ok is (self.values.get(rel) == value)
            if ok:
                self.values[rel] = n

    def delete(self, rel: str, n: int) -> None:
        self.store.delete(rel)
        self.values.pop(rel, None)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_OPS)
def test_conditional_writes_follow_a_model(tmp_path: Path, ops: list[tuple[str, str, int]]) -> None:
    for store in (
        Store(tmp_path / uuid.uuid4().hex),
        Store(f"memory://fk-model-{uuid.uuid4().hex[:12]}"),
    ):
        store.check()
        model = _Model(store)
        for op, rel, n in ops:
            getattr(model, op)(f"m/{rel}", n)
        for rel, n in model.values.items():
            assert store.read_doc(rel) == {"n": n}


# -- races: threads ----------------------------------------------------------------------------


def _race_creates(store: Store, rounds: int, workers: int) -> list[list[bool]]:
    barrier = threading.Barrier(workers)

    def contender(i: int) -> list[bool]:
        won = []
        for r in range(rounds):
            barrier.wait()
            won.append(store.create_doc(f"race/{r}.json", {"by": i}))
        return won

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(contender, range(workers)))
    return [[results[i][r] for i in range(workers)] for r in range(rounds)]


def test_threads_racing_to_create_one_document_exactly_one_wins(any_store: Store) -> None:
    for r, winners in enumerate(_race_creates(any_store, rounds=12, workers=6)):
        assert winners.count(True) == 1
        assert any_store.read_doc(f"race/{r}.json") == {"by": winners.index(True)}


def test_threads_incrementing_by_compare_and_swap_lose_no_update(any_store: Store) -> None:
    any_store.write_doc("race/counter.json", {"n": 0})
    with ThreadPoolExecutor(4) as pool:
        attempts = list(pool.map(lambda _: increment(any_store, "race/counter.json", 8), range(4)))
    assert any_store.read_doc("race/counter.json") == {"n": 32}
    assert sum(attempts) >= 32


# -- races: processes --------------------------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A store several processes can share: a local folder, or a bucket on the S3 server."""
    if request.param == "local":
        store = Store(tmp_path / "store")
        store.check()
        return store
    s3: S3Stores = request.getfixturevalue("s3_stores")
    return s3.new()


def test_processes_racing_to_create_and_swap_agree(shared_store: Store) -> None:
    shared_store.write_doc("race/counter.json", {"n": 0})
    ctx = multiprocessing.get_context("spawn")
    procs, rounds, increments = 3, 8, 4
    barrier, out = ctx.Barrier(procs), ctx.Queue()
    workers = [
        ctx.Process(
            target=create_and_increment, args=(shared_store, rounds, barrier, out, increments)
        )
        for _ in range(procs)
    ]
    for w in workers:
        w.start()
    results = dict(out.get(timeout=180) for _ in workers)
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    for r in range(rounds):
        winners = [pid for pid, won in results.items() if won[r]]
        assert len(winners) == 1
        assert shared_store.read_doc(f"race/{r}.json") == {"pid": winners[0]}
    assert shared_store.read_doc("race/counter.json") == {"n": procs * increments}


# -- an S3 endpoint that ignores conditional headers -----------------------------------------


@pytest.fixture
def unconditional_s3(s3_stores: S3Stores) -> Iterator[Store]:
    """A store on an S3-compatible endpoint without conditional writes: a proxy in front of
    the S3 server that drops the conditional headers."""
    with proxied_store(s3_stores, strip=CONDITIONS) as (store, _):
        yield store


def test_an_s3_server_ignoring_conditions_is_detected_and_named_once(
    unconditional_s3: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="flowkit.store"):
        assert unconditional_s3.create_doc(DOC, {"n": 1}) is True
        assert unconditional_s3.create_doc(DOC, {"n": 2}) is False  # checked first
        doc, version = unconditional_s3.read_doc_versioned(DOC)
        assert doc == {"n": 1}
        assert unconditional_s3.replace_doc(DOC, {"n": 3}, version) is True
        assert unconditional_s3.replace_doc(DOC, {"n": 4}, version) is False
    assert unconditional_s3._io.guarantee() == "best-effort"  # type: ignore[attr-defined]
    warnings = [r for r in caplog.records if "no conditional writes" in r.getMessage()]
    assert len(warnings) == 1
    assert unconditional_s3.url in warnings[0].getMessage()
    assert unconditional_s3.read_doc(DOC) == {"n": 3}
    assert unconditional_s3.list_dir("tmp") == []  # the probe object is gone

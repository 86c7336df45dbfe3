"""Claims, the per-fire "exactly once" guard: one claim per path whoever races for it, read
back as the body given; damaged or planted claim files still claim their fire; and on S3 a
claim whose answer was lost (the client retries, the retry finds the claim) is still won by
the request that made it.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from flowkit.automation.claims import claim, claimed
from flowkit.errors import StoreError
from flowkit.store import Store
from tests.automation.s3proxy import proxied_store
from tests.conftest import S3Stores

FIRE = "schedules/nightly/fires/2026-03-29T02-00-00Z.json"


def test_a_fire_is_claimed_once_and_read_back(any_store: Store) -> None:
    assert claimed(any_store, FIRE) is None
    assert claim(any_store, FIRE, {"run_id": "r1", "fire_time": "2026-03-29T02:00:00Z"})
    assert not claim(any_store, FIRE, {"run_id": "r2"})
    assert claimed(any_store, FIRE) == {"run_id": "r1", "fire_time": "2026-03-29T02:00:00Z"}
    doc = any_store.read_doc(FIRE)
    assert set(doc) == {"body", "token", "by", "at"}
    assert doc["by"].endswith(f":{os.getpid()}")


def test_threads_racing_for_each_fire_claim_it_once(any_store: Store) -> None:
    fires, workers = 10, 5
    barrier = threading.Barrier(workers)

    def contender(i: int) -> list[bool]:
        won = []
        for f in range(fires):
            barrier.wait()
            won.append(claim(any_store, f"schedules/s/fires/{f}.json", {"by": i}))
        return won

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(contender, range(workers)))
    for f in range(fires):
        winners = [i for i in range(workers) if results[i][f]]
        assert len(winners) == 1
        assert claimed(any_store, f"schedules/s/fires/{f}.json") == {"by": winners[0]}


@pytest.mark.parametrize(
    "body",
    [["run", "r1"], "r1", None, {1: "one"}, {"when": object()}, {"nested": {2: "x"}}],
    ids=["list", "text", "none", "int-key", "object", "nested-int-key"],
)
def test_a_body_that_is_not_json_data_is_refused_by_name(local_store: Store, body: Any) -> None:
    with pytest.raises(StoreError, match=re.escape(FIRE)):
        claim(local_store, FIRE, body)
    assert claimed(local_store, FIRE) is None


def test_a_read_only_store_refuses_to_claim(local_store: Store) -> None:
    with pytest.raises(StoreError, match="read-only"):
        claim(Store(local_store.root, read_only=True), FIRE, {"run_id": "r"})


# -- planted and damaged claim files ------------------------------------------------------------


@pytest.mark.parametrize(
    "planted",
    [b"", b"garbage", b"0" * 64 + b'\n{"body": {"run_id": "x"}}'],
    ids=["empty", "garbage", "bad-checksum"],
)
def test_a_damaged_claim_file_still_claims_its_fire(
    any_store: Store, planted: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    any_store._io.write(FIRE, planted)
    with caplog.at_level(logging.WARNING, logger="flowkit.automation"):
        assert claimed(any_store, FIRE) == {}
    assert FIRE in caplog.text and "still claims" in caplog.text
    assert not claim(any_store, FIRE, {"run_id": "r"})
    assert any_store._io.read(FIRE) == planted  # left as found


@pytest.mark.parametrize("doc", [[1, 2], {"token": "t"}, {"body": "text"}, {"body": [1]}])
def test_a_document_that_is_no_claim_still_claims_its_fire(local_store: Store, doc: Any) -> None:
    local_store.write_doc(FIRE, doc)
    assert claimed(local_store, FIRE) == {}
    assert not claim(local_store, FIRE, {"run_id": "r"})


def test_an_unsigned_claim_in_a_signed_store_is_never_read_but_still_claims(
    tmp_path: Path,
) -> None:
    claim(Store(tmp_path / "s"), FIRE, {"run_id": "planted"})
    signed = Store(tmp_path / "s", key="k")
    assert claimed(signed, FIRE) == {}  # not {"run_id": "planted"}: it is never parsed
    assert not claim(signed, FIRE, {"run_id": "r"})


def test_a_folder_or_link_at_the_claim_path_claims_it_and_is_never_followed(
    local_store: Store, tmp_path: Path
) -> None:
    os.makedirs(os.path.join(local_store.root, FIRE))
    assert not claim(local_store, FIRE, {"run_id": "r"})
    assert claimed(local_store, FIRE) == {}
    outside = tmp_path / "outside.json"
    outside.write_bytes(b"precious")
    link = "schedules/nightly/fires/linked.json"
    os.symlink(outside, os.path.join(local_store.root, link))
    assert not claim(local_store, link, {"run_id": "r"})
    assert claimed(local_store, link) == {}
    assert outside.read_bytes() == b"precious"


# -- a lost answer on S3 ------------------------------------------------------------------------


def test_a_claim_whose_answer_was_lost_is_still_won_by_its_maker(s3_stores: S3Stores) -> None:
    """The server makes the claim, the answer never comes back, the client retries and the
    retry fails its condition: the claim recognises its own token and reports the win."""
    with proxied_store(s3_stores, lose="/fires/") as (store, proxy):
        assert claim(store, FIRE, {"run_id": "r1"})
        assert proxy.lost  # the first answer was indeed dropped
        assert claimed(store, FIRE) == {"run_id": "r1"}
        assert not claim(store, FIRE, {"run_id": "r2"})

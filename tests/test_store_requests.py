"""What a cached call costs the store, end to end in new processes: S3 requests counted at a
moto server on 127.0.0.1 (``benchmarks/flowkit_store_cost.py``'s counting server), and files on
a local store. Upper bounds, never timings: a cache hit is at most 2 GETs, a stored call at
most 2 PUTs (issue 11); in this workload (small outputs, all inline) exactly one each.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

N = 20  # map items: N + 1 cached calls


def store_cost() -> ModuleType:
    path = Path(__file__).parents[1] / "benchmarks" / "flowkit_store_cost.py"
    spec = importlib.util.spec_from_file_location("flowkit_store_cost", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kind", ["s3"])  # a store kind: marks the test `services`
def test_s3_requests_per_cached_call(kind: str) -> None:
    cost = store_cost().s3_cost(N)
    fill, hit = cost["fill"], cost["hit"]
    assert fill["cached"] == 0 and hit["cached"] == N + 1
    # per call: the lookup that misses and the entry (no object: the outputs are inline)
    assert fill["per_call"] == {"GET": 1.0, "PUT": 1.0}
    assert hit["per_call"] == {"GET": 1.0}  # the entry alone
    assert fill["per_call"]["PUT"] <= 2 and hit["per_call"]["GET"] <= 2  # issue 11's bounds
    # once per run or per task, whatever N is
    assert fill["by_what"]["fingerprint"] == {"PUT": 2}  # square and total, once each
    assert "fingerprint" not in hit["by_what"]  # a hit never reads one
    for phase in (fill, hit):
        assert sum(phase["by_what"]["marker"].values()) <= 2
        assert phase["by_what"]["run record"].get("GET", 0) == 0
        assert sum(phase["by_what"]["run record"].values()) <= 4  # header x2-3, one batch
        assert sum(phase["by_what"].get("bucket", {}).values()) <= 3
        assert "HEAD" not in phase["by_what"]["entry"]


def test_a_cached_call_with_a_small_output_is_one_file() -> None:
    cost = store_cost().local_cost(N)
    assert cost["fill_cached"] == 0 and cost["hit_cached"] == N + 1
    folders = cost["folders"]
    assert folders["cache"]["files"] == N + 1
    assert folders["fingerprints"]["files"] == 2
    assert "objects" not in folders or folders["objects"]["files"] == 0
    assert folders["cache"]["largest_file"] <= 1024  # an entry fits in one block

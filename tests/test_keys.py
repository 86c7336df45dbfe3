"""flowkit.keys: the one derivation of cache keys, and what the runner does with it.

Golden pre-images pin what production computes (not a parallel implementation); the other
tests attack the key: a planted entry whose value does not fit, a lookup counted per call,
gc racing a run that uses old entries.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import flowkit as fk
from flowkit import cache, cachegc, codehash, hashing, keys, naming
from flowkit.store import Store, hash_value


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@fk.task(cache=True)
def double(x: int) -> int:
    return x * 2


@fk.task(cache=True, version="7")
def pinned(x: int) -> int:
    return x + 1


@fk.workflow
def twice(x: int) -> int:
    return double(double(x))


@dataclass(frozen=True)
class Point:
    x: int
    y: int


# -- golden pre-images of what production computes ----------------------------------------------


def test_identity_is_the_module_qualified_function_name() -> None:
    assert keys.identity(double.spec) == f"{naming.module_name(__name__)}.double"
    assert keys.identity(pinned.spec) == f"{naming.module_name(__name__)}.pinned"


def test_production_code_digest_is_the_pinned_pre_image() -> None:
    digest, components = keys.code(double.spec)
    assert digest == codehash.fingerprint(double.fn).digest
    assert digest == hashing.code_digest(components)
    assert digest == sha(hashing.canonical_json(["code", components]))


def test_version_pins_the_code_not_the_identity() -> None:
    digest, components = keys.code(pinned.spec)
    assert components == {"version": "7"}
    assert digest == sha(b'["code","version","7"]')


def test_call_key_golden() -> None:
    a, b = "a" * 64, "b" * 64
    assert keys.call_key("m.f", a, b, {"x": a}) == sha(
        f'["call","m.f","{a}","{b}",{{"x":"{a}"}}]'.encode()
    )


def test_token_of_a_plain_value_is_its_artifact_digest() -> None:
    assert keys.value_token(42) == hashing.blob_digest("json", sha(b"42"))
    assert keys.token("c" * 64, [int, str]) == "c" * 64  # builtins name no user code


def test_token_of_a_value_naming_user_code_covers_that_code() -> None:
    digest = "d" * 64
    tok = keys.token(digest, [Point])
    named = {naming.qualified_name(Point): codehash.object_digest(Point)}
    assert tok == hashing.hash_struct("value", digest, named)
    assert tok != digest
    refs: set[Any] = set()
    d, _, _ = hash_value(Point(1, 2), refs=refs)
    assert Point in refs
    assert keys.value_token(Point(1, 2)) == keys.token(d, refs) != d


# -- the runner with the key ----------------------------------------------------------------------


def test_a_planted_entry_that_does_not_fit_the_annotation_is_a_miss(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    run = fk.run(twice, x=3, store=store)
    assert run.output == 12
    # plant a str as the output of the first call, under its real key
    rec = next(t for t in run.tasks if t.node == "double")
    entry = cache.lookup(store, rec.key or "", keys.identity(double.spec))
    assert entry is not None
    bad = store.put("not an int")
    cache.record(store, cache.CacheEntry(**{**entry.__dict__, "outputs": (bad,)}))
    again = fk.run(twice, x=3, store=store)
    assert again.output == 12
    assert {t.node: t.cached for t in again.tasks}["double"] is False


@pytest.mark.parametrize("backend", ["local", "threads"])
def test_a_miss_is_looked_up_once(backend: str, tmp_path: Path, monkeypatch: Any) -> None:
    calls: list[str] = []
    real = cache.lookup

    def counting(store: Store, key: str, identity: str) -> Any:
        calls.append(key)
        return real(store, key, identity)

    monkeypatch.setattr(cache, "lookup", counting)
    run = fk.run(twice, x=5, store=tmp_path / "store", backend=backend)
    assert run.output == 20
    assert len(calls) == len(set(calls)) == 2  # one lookup per call, none repeated on a worker


def test_gc_keeps_old_entries_and_objects_a_recent_run_used(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    fk.run(twice, x=4, store=store)
    old = time.time() - 40 * 86400
    for rel, _, _ in list(store.walk("index")) + list(store.walk("tasks")):
        doc = store.read_doc(rel)
        store.write_doc(rel, {**doc, "created": old})
    for rel, _, _ in store.walk("objects"):
        os.utime(os.path.join(store.root, rel), (old, old))
    for rel, _, _ in store.walk("runs"):  # the first run is a month old too
        if rel.endswith("run.json"):
            header = store.read_doc(rel)
            store.write_doc(rel, {**header, "started": old})
    hit = fk.run(twice, x=4, store=store)  # today's run hits both month-old entries
    assert all(t.cached for t in hit.tasks)
    report = cachegc.gc(store, older_than_days=30)
    assert report.entries_removed == 0 and report.objects_removed == 0
    assert all(t.cached for t in fk.run(twice, x=4, store=store).tasks)

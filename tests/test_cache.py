"""The cache index on every store kind: lookups, damage, digests, explain and gc."""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from flowkit import cache, cachegc, keys, serialize
from flowkit.cache import CacheEntry
from flowkit.errors import StoreError
from flowkit.hashing import call_key, code_digest
from flowkit.store import Artifact, Store, hash_value
from flowkit.store import fingerprints as fps

IFACE = "i" * 64
_counter = itertools.count()
BIG = "x" * 2000  # over INLINE_MAX once serialized: an object of its own


class Unstable:
    """Pickles to different bytes every time (like objects holding a counter or a clock)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (Unstable, (), {"n": next(_counter)})


def make_entry(
    store: Store,
    identity: str = "train",
    outputs: tuple[Any, ...] = (1,),
    components: dict[str, str] | None = None,
    inputs: dict[str, Any] | None = None,
    version: str | None = None,
    created: float | None = None,
) -> CacheEntry:
    """Store ``outputs`` and record an entry for them; returns the entry."""
    components = components or {"function `train`": "f" * 64}
    digests = {k: keys.value_token(v) or "" for k, v in (inputs or {"x": 1}).items()}
    key = call_key(identity, code_digest(components), IFACE, digests)
    entry = CacheEntry(
        key=key,
        identity=identity,
        outputs=tuple(store.put(v) for v in outputs),
        components=components,
        interface=IFACE,
        inputs=digests,
        version=version,
        created=time.time() if created is None else created,
    )
    cache.record(store, entry)
    return entry


def test_record_lookup_load(any_store: Store) -> None:
    entry = make_entry(any_store, outputs=(1, {"a": (2,)}, np.arange(3)))
    found = cache.lookup(any_store, entry.key, entry.identity)
    assert found == entry
    assert cache.lookup(any_store, entry.key, "another task") is None
    loaded = cache.load_outputs(any_store, found)
    assert loaded is not None
    values = [v for v, _ in loaded]
    assert values[:2] == [1, {"a": (2,)}]
    np.testing.assert_array_equal(values[2], np.arange(3))


GOOD_DOC: dict[str, Any] = {
    "entry_format": 3,
    "key": "k" * 64,
    "identity": "train",
    "outputs": [
        {"digest": "d" * 64, "format": "json", "size": 2000},
        {"digest": hash_value(42)[0], "format": "json", "size": 2, "inline": "42"},
    ],
    "fingerprint": "f" * 64,
    "interface": IFACE,
    "inputs": {"x": "a" * 64},
    "version": None,
    "created": 1.5,
    "run_id": None,
}
BAD_FIELDS: list[tuple[str, Any]] = [
    ("entry_format", 2),
    ("key", 7),
    ("identity", None),
    ("interface", ["x"]),
    ("outputs", 3),
    ("outputs", [{"digest": "d" * 64, "format": "json", "size": "2"}]),
    ("outputs", ["not an artifact"]),
    ("outputs", [{"digest": "d" * 64, "format": "json", "size": 2, "inline": "43"}]),
    ("fingerprint", "../../x"),
    ("fingerprint", None),
    ("inputs", {"x": None}),
    ("inputs", "abc"),
    ("version", 3),
    ("run_id", ["r"]),
    ("created", "soon"),
    ("created", None),
    ("tokens", ["not a digest", "e" * 64]),
    ("tokens", []),
]
OPTIONAL = {"run_id", "tokens"}


# What CacheEntry.from_dict says: its own words, or those of dict() and float() on bad fields.
REFUSED = "cache entry|not an artifact|inline artifact|dictionary update|could not convert"


@pytest.mark.parametrize(("field_name", "bad"), BAD_FIELDS)
def test_malformed_entries_are_refused(field_name: str, bad: Any) -> None:
    assert CacheEntry.from_dict(GOOD_DOC).to_dict() == GOOD_DOC
    with pytest.raises(ValueError, match=REFUSED):
        CacheEntry.from_dict({**GOOD_DOC, field_name: bad})
    missing = {k: v for k, v in GOOD_DOC.items() if k != field_name}
    if field_name not in OPTIONAL:
        with pytest.raises(ValueError, match=REFUSED):
            CacheEntry.from_dict(missing)
    with pytest.raises(ValueError, match=REFUSED):
        CacheEntry.from_dict([GOOD_DOC])


def test_tokens_are_written_only_when_they_differ_from_the_digests() -> None:
    plain = CacheEntry.from_dict(GOOD_DOC)
    assert plain.tokens == tuple(a.digest for a in plain.outputs)
    assert "tokens" not in plain.to_dict()
    named = {**GOOD_DOC, "tokens": ["e" * 64, GOOD_DOC["outputs"][1]["digest"]]}
    assert CacheEntry.from_dict(named).to_dict() == named


def test_unknown_key_is_a_miss(any_store: Store) -> None:
    assert cache.lookup(any_store, "0" * 64, "train") is None


VALUES = [
    7,
    "text",
    (1, [2.5, None]),
    np.linspace(0, 1, 11),
    pa.table({"a": [1, 2], "b": ["x", "y"]}),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_value_digest_equals_the_stored_digest_and_survives_a_round_trip(
    any_store: Store, value: Any
) -> None:
    art = any_store.put(value)
    assert keys.value_token(value) == art.digest
    assert keys.value_token(any_store.get(art)) == art.digest  # upstream == literal


SCALARS = [None, True, 0, -12, 2**70, 2.5, -0.0, "", 'é\n"', 10**5000]


@pytest.mark.parametrize("value", SCALARS, ids=[type(v).__name__ for v in SCALARS])
def test_value_digest_of_scalars_equals_the_serializer_path(value: Any) -> None:
    assert keys.value_token(value) == hash_value(value)[0]


def test_stable_pickle_values_have_a_digest() -> None:
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier(max_depth=2).fit([[0], [1]], [0, 1])
    assert keys.value_token(model) is not None


def test_unstable_value_has_no_digest_and_the_warning_names_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="flowkit.cache"):
        assert keys.value_token(Unstable(), what="input `state` of task `train`") is None
    assert "input `state` of task `train`" in caplog.text
    assert "different bytes" in caplog.text


def test_unpicklable_value_has_no_digest(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="flowkit.cache"):
        assert keys.value_token(threading.Lock(), what="input `lock`") is None
    assert "input `lock`" in caplog.text


# -- damage ----------------------------------------------------------------------------------


def damage(data: bytes, mode: str) -> bytes:
    if mode == "truncate":
        return data[: len(data) // 2]
    if mode == "flip":  # one bit in the middle: "42" becomes "43"
        i = len(data) // 2
        return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
    if mode == "empty":
        return b""
    return os.urandom(max(len(data), 1))


def populate(store: Store) -> list[tuple[CacheEntry, tuple[Any, ...]]]:
    """Entries with inline outputs and with objects, their fingerprints and a run."""
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier(max_depth=1).fit([[0], [1]], [0, 1])
    values: list[tuple[str, dict[str, Any], tuple[Any, ...]]] = [
        ("train", {"x": i}, (42 + i, {"i": (i,)}, np.arange(i + 2), np.arange(300 + i)))
        for i in range(3)
    ]
    values.append(("fit", {"t": 1}, (model,)))
    values.append(("load", {"n": 2}, (pa.table({"a": [1, 2]}), pa.table({"b": list(range(500))}))))
    made = [
        (make_entry(store, identity=t, inputs=i, outputs=o, components={f"function `{t}`": t}), o)
        for t, i, o in values
    ]
    store.write_run("r1", {"status": "succeeded", "started": time.time()})
    store.write_task_records("r1", 0, [{"name": "train", "key": made[0][0].key}])
    return made


def same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return bool(np.array_equal(a, b))
    if isinstance(a, pa.Table):
        return bool(a.equals(b))
    if hasattr(a, "tree_"):  # a fitted model: compare what it predicts
        return bool((a.predict([[0], [1]]) == b.predict([[0], [1]])).all())
    return bool(a == b)


def right_or_miss(loaded: list[tuple[Any, set[Any]]] | None, values: tuple[Any, ...]) -> bool:
    """A miss (None), or exactly the values stored: never a wrong value."""
    if loaded is None:
        return True
    return len(loaded) == len(values) and all(
        same(v, got) for v, (got, _) in zip(values, loaded, strict=True)
    )


@pytest.mark.parametrize("mode", ["truncate", "flip", "empty", "garbage"])
def test_damaging_every_file_gives_misses_never_wrong_values(
    any_store: Store, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    made = populate(any_store)
    files = [rel for rel, _, _ in any_store._io.walk("")]  # the root: below Store's names
    kinds = {rel.split("/")[0] for rel in files}
    assert kinds == {"flowkit-store.json", "cache", "fingerprints", "objects", "runs"}
    assert len(files) > 15
    for rel in files:
        any_store._io.write(rel, damage(any_store._io.read(rel), mode))
    fps.forget()  # a new process: nothing remembered of the fingerprints
    with caplog.at_level(logging.WARNING):
        for entry, _ in made:
            found = cache.lookup(any_store, entry.key, entry.identity)
            assert found is None or cache.load_outputs(any_store, found) is None
        for entry, values in made:  # with intact entries, the damaged objects are misses too
            cache.record(any_store, entry)
            loaded = cache.load_outputs(any_store, entry)
            assert right_or_miss(loaded, values)
            if any(a.inline is None for a in entry.outputs):
                assert loaded is None
        assert cache.explain(any_store, "train", {}, {}).hit is False
        any_store.list_runs()
        any_store.read_run("r1")
        cachegc.gc(any_store, 30)
    with pytest.raises(StoreError):  # the damaged marker is refused, not guessed at
        any_store.check()


def test_damaged_objects_are_rewritten_by_the_next_run(any_store: Store) -> None:
    entry = make_entry(any_store, outputs=(BIG,))
    rel = Store.object_path(entry.outputs[0].digest)
    any_store._io.write(rel, b"43")
    assert cache.load_outputs(any_store, entry) is None
    again = make_entry(any_store, outputs=(BIG,))  # the recomputed call stores it again
    assert cache.load_outputs(any_store, again) == [(BIG, set())]


def test_missing_object_is_a_miss_with_a_warning(
    any_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    entry = make_entry(any_store, outputs=(BIG,))
    any_store.delete_object(entry.outputs[0].digest)
    with caplog.at_level(logging.WARNING, logger="flowkit.cache"):
        assert cache.load_outputs(any_store, entry) is None
    assert "missing" in caplog.text


def test_pickle_from_another_python_is_a_miss(
    local_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    import hashlib
    import io

    from flowkit.hashing import blob_digest

    sink = io.BytesIO()
    serialize.dump(threading.Event, sink)
    header, body = sink.getvalue().split(b"\n", 1)
    forged = json.dumps({**json.loads(header), "python": "2.7"}).encode() + b"\n" + body
    digest = blob_digest("pickle", hashlib.sha256(forged).hexdigest())
    local_store._io.write(Store.object_path(digest), forged)
    art = Artifact(digest, "pickle", len(forged))
    with pytest.raises(serialize.PickleVersionError, match=r"Python 2\.7"):
        local_store.get(art)
    entry = CacheEntry("k" * 64, "t", (art,), {}, IFACE, {}, None)
    with caplog.at_level(logging.WARNING, logger="flowkit.cache"):
        assert cache.load_outputs(local_store, entry) is None
    assert "Python 2.7" in caplog.text


# -- explain ---------------------------------------------------------------------------------


def explain_args(entry: CacheEntry, **changes: Any) -> dict[str, Any]:
    args = {
        "identity": entry.identity,
        "components": dict(entry.components),
        "input_digests": dict(entry.inputs),
        "version": entry.version,
        "interface": entry.interface,
    }
    args.update(changes)
    return args


def test_explain_hit(any_store: Store) -> None:
    entry = make_entry(any_store)
    assert cache.explain(any_store, **explain_args(entry)).hit
    assert cache.explain(any_store, **explain_args(entry), key=entry.key).hit
    assert str(cache.explain(any_store, **explain_args(entry))) == "task `train`: hit"


def test_explain_without_earlier_entries(any_store: Store) -> None:
    result = cache.explain(any_store, "train", {"function `train`": "a" * 64}, {"x": "b" * 64})
    assert not result.hit
    assert result.reasons == ("no earlier entry of task `train` in the store",)


def test_explain_names_what_changed(any_store: Store) -> None:
    components = {
        "function `train`": "1" * 64,
        "helper `clean`": "2" * 64,
        "constant `FACTOR`": "3" * 64,
        "helper `old`": "4" * 64,
    }
    entry = make_entry(any_store, components=components, inputs={"df": 1, "n": 2})
    new_components = {
        "function `train`": "1" * 64,
        "helper `clean`": "9" * 64,
        "constant `FACTOR`": "8" * 64,
        "helper `new`": "7" * 64,
    }
    digests = {"df": keys.value_token(10) or "", "seed": "0" * 64}
    result = cache.explain(
        any_store, **explain_args(entry, components=new_components, input_digests=digests)
    )
    assert not result.hit
    assert result.nearest == entry
    assert set(result.reasons) == {
        "helper `clean` changed",
        "constant `FACTOR` changed",
        "helper `new` added",
        "helper `old` removed",
        "input `df` changed",
        "input `n` removed",
        "input `seed` added",
    }
    assert str(result).startswith("task `train`: miss: ")


def test_explain_version_and_interface(any_store: Store) -> None:
    entry = make_entry(any_store, components={"version": "1"}, version="1")
    result = cache.explain(
        any_store,
        **explain_args(entry, components={"version": "2"}, version="2", interface="j" * 64),
    )
    assert result.reasons == ("version changed", "interface changed")


def test_explain_picks_the_nearest_entry(any_store: Store) -> None:
    far = make_entry(any_store, inputs={"x": 1}, components={"function `train`": "a" * 64})
    near = make_entry(any_store, inputs={"x": 2}, components={"function `train`": "b" * 64})
    result = cache.explain(any_store, **explain_args(near, input_digests=dict(far.inputs)))
    assert result.nearest == near
    assert result.reasons == ("input `x` changed",)


def test_explain_matching_entry_with_lost_outputs(any_store: Store) -> None:
    entry = make_entry(any_store, outputs=(BIG,))
    any_store.delete_object(entry.outputs[0].digest)
    result = cache.explain(any_store, **explain_args(entry))
    assert not result.hit
    assert "missing" in result.reasons[0]


def test_entries_are_grouped_by_task_newest_first(any_store: Store) -> None:
    a = make_entry(any_store, inputs={"x": 1}, created=100.0)
    b = make_entry(any_store, inputs={"x": 2}, created=200.0)
    make_entry(any_store, identity="other/task name")
    assert cache.entries(any_store, "train") == [b, a]
    assert len(cache.entries(any_store, "other/task name")) == 1
    assert "/" not in cache.task_dir("other/task name")


# -- fingerprint documents -------------------------------------------------------------------


def test_components_are_stored_once_per_fingerprint_and_loaded_only_when_used(
    any_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fps.forget()
    written: list[str] = []
    read: list[str] = []
    real_write, real_read = any_store.write_doc, any_store.read_doc

    def write_doc(rel: str, obj: Any) -> None:
        written.append(rel)
        real_write(rel, obj)

    def read_doc(rel: str) -> Any:
        read.append(rel)
        return real_read(rel)

    monkeypatch.setattr(any_store, "write_doc", write_doc)
    monkeypatch.setattr(any_store, "read_doc", read_doc)
    made = [make_entry(any_store, inputs={"x": i}) for i in range(5)]
    fingerprint_docs = [rel for rel in written if rel.startswith("fingerprints/")]
    assert fingerprint_docs == [fps.fingerprint_path(made[0].fingerprint)]  # once for five
    assert made[0].fingerprint == code_digest(made[0].components)
    fps.forget()  # a new process
    found = cache.lookup(any_store, made[3].key, "train")
    assert found is not None and cache.load_outputs(any_store, found) == [(1, set())]
    assert not [rel for rel in read if rel.startswith("fingerprints/")]  # a hit never reads it
    assert dict(found.components) == dict(made[3].components)  # explain does, when it asks
    assert [rel for rel in read if rel.startswith("fingerprints/")] == fingerprint_docs


@pytest.mark.parametrize("harm", ["missing", "damaged", "another fingerprint's"])
def test_a_lost_fingerprint_document_still_hits_and_explain_says_the_code_is_unknown(
    any_store: Store, harm: str, caplog: pytest.LogCaptureFixture
) -> None:
    components = {"function `train`": "1" * 64, "helper `clean`": "2" * 64}
    entry = make_entry(any_store, components=components, inputs={"x": 1}, outputs=(7,))
    other = make_entry(any_store, identity="other", components={"function `other`": "3" * 64})
    rel = fps.fingerprint_path(entry.fingerprint)
    if harm == "missing":
        any_store.delete(rel)
    elif harm == "damaged":
        any_store._io.write(rel, damage(any_store._io.read(rel), "flip"))
    else:  # a genuine document, under the wrong name
        any_store.write_doc(rel, any_store.read_doc(fps.fingerprint_path(other.fingerprint)))
    fps.forget()
    found = cache.lookup(any_store, entry.key, "train")
    assert found is not None and cache.load_outputs(any_store, found) == [(7, set())]
    assert cache.explain(any_store, **explain_args(entry), key=entry.key).hit
    with caplog.at_level(logging.WARNING, logger="flowkit.store"):
        changed = {**components, "helper `clean`": "9" * 64}
        result = cache.explain(any_store, **explain_args(entry, components=changed))
        again = cache.explain(any_store, **explain_args(entry, input_digests={"x": "0" * 64}))
    assert not result.hit
    assert len(result.reasons) == 1 and "code changed (which parts is unknown" in result.reasons[0]
    assert rel in result.reasons[0]
    assert rel in caplog.text  # one warning naming the document
    assert again.reasons == ("input `x` changed",)  # same code: nothing said about it


# -- gc --------------------------------------------------------------------------------------


def age(store: Store, rel: str, days: float) -> None:
    t = time.time() - days * 86400
    os.utime(Path(store.root) / rel, (t, t))


def test_gc_removes_old_entries_and_unreferenced_old_objects(local_store: Store) -> None:
    month_ago = time.time() - 40 * 86400
    old = make_entry(
        local_store,
        inputs={"x": 1},
        outputs=("old only" + BIG, 1),
        created=month_ago,
        components={"function `gone`": "g" * 64},
    )
    shared = make_entry(local_store, inputs={"x": 2}, outputs=("shared" + BIG,), created=month_ago)
    young = make_entry(local_store, inputs={"x": 3}, outputs=("shared" + BIG, "young" + BIG))
    run_art = local_store.put("kept by a recent run" + BIG)
    logs = local_store.put("logs of a recent run" + BIG)
    local_store.write_run("r", {"started": time.time(), "output": run_art.to_dict()})
    local_store.write_task_records(
        "r", 0, [{"name": "t", "tries": [{"n": 1, "logs_ref": logs.to_dict()}]}]
    )
    stray_young = local_store.put("written by a run in progress" + BIG)
    stray_old = local_store.put("nobody needs this" + BIG)
    for art in (*old.outputs, *shared.outputs, *young.outputs, run_art, logs, stray_old):
        if art.inline is None:
            age(local_store, Store.object_path(art.digest), 40)
    for rel, _, _ in list(local_store.walk("fingerprints")):
        age(local_store, rel, 40)

    report = cachegc.gc(local_store, 30)

    assert cache.lookup(local_store, old.key, "train") is None
    assert cache.lookup(local_store, shared.key, "train") is None
    assert cache.load_outputs(local_store, young) == [
        ("shared" + BIG, set()),
        ("young" + BIG, set()),
    ]
    assert cache.entries(local_store, "train") == [young]
    assert local_store.has(run_art) and local_store.has(stray_young) and local_store.has(logs)
    assert not local_store.has(old.outputs[0]) and not local_store.has(stray_old)
    assert report.entries_removed == 2
    assert report.objects_removed == 2
    assert report.bytes_freed == old.outputs[0].size + stray_old.size
    # the fingerprint only the old entry named is gone; the young entry's is kept
    assert report.fingerprints_removed == 1
    names = [rel.rsplit("/", 1)[-1] for rel, _, _ in local_store.walk("fingerprints")]
    assert names == [f"{young.fingerprint}.json"]


def test_gc_keeps_an_old_entry_a_recent_run_named(local_store: Store) -> None:
    old = make_entry(local_store, outputs=(BIG,), created=time.time() - 40 * 86400)
    age(local_store, Store.object_path(old.outputs[0].digest), 40)
    local_store.write_run("r", {"started": time.time()})
    local_store.write_task_records("r", 0, [{"name": "train", "key": old.key, "cached": True}])
    assert cachegc.gc(local_store, 30).entries_removed == 0
    assert cache.load_outputs(local_store, old) == [(BIG, set())]


def test_gc_on_every_store_kind_keeps_young_objects(any_store: Store) -> None:
    old = make_entry(any_store, outputs=(BIG,), created=time.time() - 10 * 86400)
    report = cachegc.gc(any_store, 1)
    assert report.entries_removed == 1 and report.objects_removed == 0
    assert cache.lookup(any_store, old.key, old.identity) is None
    assert any_store.has(old.outputs[0])


# -- concurrency -----------------------------------------------------------------------------


def _record_many(store: Store, out: Any) -> None:
    keys = [make_entry(store, inputs={"x": i}, outputs=(i, np.arange(i))).key for i in range(10)]
    out.put(keys)


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_three_processes_recording_the_same_keys_all_succeed(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "local":
        store = Store(tmp_path / "store")
        store.check()
    else:
        store = request.getfixturevalue("s3_stores").new()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_record_many, args=(store, out)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert results[0] == results[1] == results[2]
    for i, key in enumerate(results[0]):
        entry = cache.lookup(store, key, "train")
        assert entry is not None
        values = cache.load_outputs(store, entry)
        assert values is not None and values[0][0] == i

"""Inline artifacts: a value of at most INLINE_MAX serialized bytes is kept in the document
that names it (a cache entry, a task record), under the digest its object would have.

Attacks: inline bytes, digest or size changed in an entry give a miss with a warning, never a
wrong value; a signed store checks an inline artifact's signature like an object's.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowkit import cache
from flowkit.cache import CacheEntry
from flowkit.files import File
from flowkit.hashing import call_key
from flowkit.signing import encode
from flowkit.store import (
    INLINE_MAX,
    Artifact,
    ObjectCorrupt,
    ObjectUnsigned,
    Store,
    hash_value,
)

KEY = "team key"
IFACE = "i" * 64

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=300),
    lambda inner: (
        st.lists(inner, max_size=8)
        | st.dictionaries(
            st.text(max_size=8).filter(lambda k: not k.startswith("$")), inner, max_size=8
        )
    ),
    max_leaves=40,
)
# strings whose serialized form ("..." and escapes) falls either side of INLINE_MAX
around_the_limit = st.integers(min_value=INLINE_MAX - 40, max_value=INLINE_MAX + 40).flatmap(
    lambda n: st.text(alphabet='ab\u00e9"\\\n', min_size=n // 2, max_size=n)
)


def new_store(tmp: Path | None = None, key: str | None = None) -> Store:
    store = Store(tmp or f"memory://fk-inline-{uuid.uuid4().hex[:12]}", key=key)
    store.check()
    return store


MEMORY = new_store()
SIGNED = new_store(key=KEY)


def through_json(d: dict[str, Any]) -> dict[str, Any]:
    """What a document reader gets back: the dict written and parsed again."""
    back: dict[str, Any] = json.loads(encode(d))
    return back


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return bool(a == b) and type(a) is type(b)


@settings(max_examples=150, deadline=None)
@given(value=json_values | around_the_limit, signed=st.booleans())
def test_inline_round_trip(value: Any, signed: bool) -> None:
    store = SIGNED if signed else MEMORY
    art = store.put(value)
    digest, fmt, size = hash_value(value)
    assert (art.digest, art.format, art.size) == (digest, fmt, size)  # the object's digest
    assert (art.inline is not None) == (size <= INLINE_MAX)
    on_disk = store._io.size(Store.object_path(art.digest))
    assert on_disk == (None if art.inline is not None else size)
    assert store.has(art) and equal(store.get(art), value)
    for compact in (False, True):
        d = through_json(art.to_dict(compact=compact))
        back = Artifact.from_dict(d)
        assert back == art and back.inline == art.inline and back.sig == art.sig
        assert equal(store.get(back), value)
        if art.inline is not None:
            assert ("digest" in d) is not compact and ("size" in d) is not compact
            assert d.get("inline") == art.inline.decode()  # JSON is readable text


def test_scalars_are_inline_without_the_serializer(monkeypatch: pytest.MonkeyPatch) -> None:
    from flowkit import serialize

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the general serializer ran for a scalar")

    monkeypatch.setattr(serialize, "dump", refuse)
    for value in (0, -7, 2**62, "text", 2.5, True, None):
        art = MEMORY.put(value)
        assert art.inline is not None and art.digest == MEMORY.put(value).digest


@pytest.mark.parametrize(
    "value",
    [b"\x00\xff" * 10, (1, 2.5), {"$tagged": 1}, float("nan"), frozenset({"a", "b"})],
    ids=["bytes", "tuple", "dollar-key", "nan", "frozenset"],
)
def test_tagged_json_values_are_inline_too(value: Any) -> None:
    art = MEMORY.put(value)
    assert art.format == "json" and art.inline is not None
    back = MEMORY.get(Artifact.from_dict(through_json(art.to_dict(compact=True))))
    assert equal(back, value) or (value != value and back != back)


def test_small_binary_formats_are_inline_in_base64() -> None:
    np = pytest.importorskip("numpy")
    art = MEMORY.put(np.arange(5))
    assert art.format == "npy" and art.inline is not None
    d = art.to_dict()
    assert "inline64" in d and "inline" not in d
    assert (MEMORY.get(Artifact.from_dict(through_json(d))) == np.arange(5)).all()


def test_files_are_never_inline(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("tiny")
    store = new_store(tmp_path / "store")
    art = store.put(File(tmp_path / "a.txt"))
    assert art.format == "file" and art.inline is None
    assert store._io.size(Store.object_path(art.digest)) == art.size
    with pytest.raises(ValueError, match="not an inline artifact"):
        Artifact.from_dict({"format": "file", "inline64": "AAAA"})


def test_a_local_store_writes_no_file_for_an_inline_value(tmp_path: Path) -> None:
    store = new_store(tmp_path / "store")
    for value in (1, "two", [3], {"four": 4}):
        assert store.put(value).inline is not None
    files = [p.name for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert files == ["flowkit-store.json"]


# -- from_dict refuses what does not add up ---------------------------------------------------

GOOD = MEMORY.put({"answer": 42})
assert GOOD.inline is not None
GOOD_TEXT = GOOD.inline.decode()


@pytest.mark.parametrize(
    "change",
    [
        {"inline": GOOD_TEXT.replace("42", "43")},  # other bytes, same stated digest
        {"digest": "0" * 64},
        {"size": GOOD.size + 1},
        {"size": "13"},
        {"digest": "../../etc/passwd"},
        {"inline": 42},
        {"inline64": "not base64!"},
        {"inline64": "eyJhbnN3ZXIiOjQyfQ=="},  # the same bytes twice: one form only
        {"format": "file"},
        {"format": ""},
        {"sig": "../x"},
        {"inline": "x" * (INLINE_MAX + 1), "digest": None, "size": None},
    ],
    ids=repr,
)
def test_an_inline_artifact_that_disagrees_with_itself_is_refused(change: dict[str, Any]) -> None:
    d = {**GOOD.to_dict(), **change}
    d = {k: v for k, v in d.items() if v is not None}
    with pytest.raises(ValueError, match=r"inline artifact|not an artifact"):
        Artifact.from_dict(d)


def test_get_checks_inline_bytes_it_was_handed(caplog: pytest.LogCaptureFixture) -> None:
    assert GOOD.inline is not None
    lying = Artifact(GOOD.digest, GOOD.format, GOOD.size, None, GOOD.inline.replace(b"2", b"3"))
    with caplog.at_level(logging.WARNING, logger="flowkit.store"), pytest.raises(ObjectCorrupt):
        MEMORY.get(lying)
    assert "inline value" in caplog.text and "do not match its digest" in caplog.text
    assert not MEMORY.has(lying)


# -- tampered entries: a miss with a warning, never a wrong value ----------------------------


def stored_entry(store: Store, value: Any) -> CacheEntry:
    key = call_key("train", "c" * 64, IFACE, {"x": uuid.uuid4().hex})
    entry = CacheEntry(
        key=key,
        identity="train",
        outputs=(store.put(value),),
        components={"function `train`": "f" * 64},
        interface=IFACE,
        inputs={"x": "a" * 64},
        created=time.time(),
    )
    cache.record(store, entry)
    return entry


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(["inline", "digest", "size"]),
    replacement=st.text(alphabet='0123456789abcdef[]{}":,', min_size=1, max_size=64)
    | st.integers(min_value=-5, max_value=5000),
)
def test_a_tampered_inline_output_is_a_miss_never_a_wrong_value(
    caplog: pytest.LogCaptureFixture, field: str, replacement: Any
) -> None:
    value = {"answer": 42}
    entry = stored_entry(MEMORY, value)
    rel = cache.entry_path("train", entry.key)
    doc = MEMORY.read_doc(rel)
    doc["outputs"][0][field] = replacement
    MEMORY.write_doc(rel, doc)  # a valid checksum: only the artifact inside lies
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="flowkit.cache"):
        found = cache.lookup(MEMORY, entry.key, "train")
    if found is None:
        assert "unusable" in caplog.text
        return
    loaded = cache.load_outputs(MEMORY, found)
    assert loaded is None or loaded[0][0] == value  # unchanged after all (same bytes)


def test_a_tampered_signed_entry_is_a_miss(caplog: pytest.LogCaptureFixture) -> None:
    entry = stored_entry(SIGNED, {"answer": 42})
    rel = cache.entry_path("train", entry.key)
    raw = SIGNED._io.read(rel)
    SIGNED._io.write(rel, raw.replace(b'\\"answer\\":42', b'\\"answer\\":43'))
    assert raw != SIGNED._io.read(rel)
    with caplog.at_level(logging.WARNING, logger="flowkit.store"):
        assert cache.lookup(SIGNED, entry.key, "train") is None
    assert rel in caplog.text


# -- signed stores -------------------------------------------------------------------------


def test_an_inline_artifact_is_signed_over_its_recomputed_digest() -> None:
    art = SIGNED.put([1, 2, 3])
    assert art.inline is not None and art.sig is not None
    compact = through_json(art.to_dict(compact=True))
    assert set(compact) == {"format", "inline", "sig"}
    assert SIGNED.get(Artifact.from_dict(compact)) == [1, 2, 3]
    other = SIGNED.put([1, 2, 4])
    swapped = {**compact, "sig": other.sig}  # a genuine signature, of another value
    with pytest.raises(ObjectUnsigned):
        SIGNED.get(Artifact.from_dict(swapped))
    moved = {**compact, "inline": "[1,2,4]"}  # other bytes under this value's signature
    with pytest.raises(ObjectUnsigned):
        SIGNED.get(Artifact.from_dict(moved))
    unsigned = MEMORY.put([1, 2, 3])
    assert unsigned.sig is None
    with pytest.raises(ObjectUnsigned):
        SIGNED.get(unsigned)
    assert not SIGNED.has(unsigned) and SIGNED.has(art)

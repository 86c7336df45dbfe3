"""What the run header writes for the workflow's inputs: small JSON as is, secrets as a marker,
the rest as stored artifacts; and the way back for readers."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from core_fixtures.secrets import MARKER, SETTINGS, files_holding, holding, json_values
from hypothesis import given, settings
from hypothesis import strategies as st

from flowkit.errors import SerializationError
from flowkit.hashing import canonical_json
from flowkit.header_inputs import (
    Unrecorded,
    contains_secret,
    input_value,
    load_inputs,
    record_input,
    record_inputs,
)
from flowkit.secret import REDACTED, Secret
from flowkit.store import Store
from flowkit.store.artifact import INLINE_MAX

ENTRY_MAX = 2 * INLINE_MAX  # a marker: an artifact's fields, inline bytes base64-encoded


def fresh_store(root: str | Path) -> Store:
    store = Store(root)
    store.check()
    return store


@settings(SETTINGS, max_examples=60)
@given(
    data=st.data(),
    text=st.text(min_size=1, max_size=12),
    max_inline=st.integers(0, 600),
)
def test_a_planted_secret_reaches_neither_the_header_nor_the_store(
    data: st.DataObject, text: str, max_inline: int
) -> None:
    value = data.draw(holding(Secret(MARKER + text)))
    with tempfile.TemporaryDirectory() as root:
        recorded = record_inputs({"v": value, "n": 1}, fresh_store(root), max_inline=max_inline)
        header = canonical_json(recorded).decode("utf-8")
        assert MARKER not in header
        assert files_holding(root, MARKER + text) == []
    entry = recorded["v"]
    assert len(canonical_json(entry)) <= max(max_inline, ENTRY_MAX)
    if "$repr" not in entry:  # inline: the secret's place is marked
        assert '{"$secret":true}' in header


@settings(SETTINGS)
@given(value=json_values, max_inline=st.integers(0, 400))
def test_json_values_round_trip_inline_or_stored(value: Any, max_inline: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        store = fresh_store(root)
        entry = record_input("v", value, store, max_inline=max_inline)
        assert len(canonical_json(entry)) <= max(max_inline, ENTRY_MAX)
        assert input_value(entry, store) == value


def test_small_values_are_written_as_they_are(local_store: Store) -> None:
    values = {"n": 3, "rate": 0.5, "name": "x", "depths": [2, 4], "cfg": {"a": None}}
    assert record_inputs(values, local_store) == values


def test_tuples_and_non_finite_floats_are_written_as_headers_always_did(
    local_store: Store,
) -> None:
    recorded = record_inputs({"t": (1, 2), "x": float("nan"), "y": float("-inf")}, local_store)
    assert recorded == {"t": [1, 2], "x": "nan", "y": "-inf"}


def test_a_secret_alone_and_inside_a_small_value(local_store: Store) -> None:
    s = Secret(MARKER + "alone")
    recorded = record_inputs({"token": s, "cfg": {"user": "u", "keys": [s, 1]}}, local_store)
    assert recorded == {
        "token": {"$secret": True},
        "cfg": {"user": "u", "keys": [{"$secret": True}, 1]},
    }
    loaded = load_inputs(recorded, local_store)
    assert loaded == {"token": REDACTED, "cfg": {"user": "u", "keys": [REDACTED, 1]}}


@pytest.mark.parametrize("any_store", ["local", "s3"], indirect=True)
def test_a_one_megabyte_input_becomes_an_object_and_round_trips(any_store: Store) -> None:
    big = "x" * (1 << 20)
    rows = [{"i": i, "text": "y" * 100} for i in range(10_000)]
    recorded = record_inputs({"big": big, "rows": rows}, any_store)
    for name in ("big", "rows"):
        (marker,) = recorded[name]
        assert marker == "$artifact" and "inline" not in recorded[name]["$artifact"]
    assert len(canonical_json(recorded)) < 600
    assert load_inputs(recorded, any_store) == {"big": big, "rows": rows}


def test_an_array_and_a_frame_become_artifacts(local_store: Store) -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    array = np.arange(100_000, dtype="float32").reshape(100, 1000)
    frame = pd.DataFrame({"a": range(5), "b": list("abcde")})
    recorded = record_inputs({"array": array, "small": np.arange(3), "frame": frame}, local_store)
    assert recorded["array"]["$artifact"]["format"] == "npy"
    assert recorded["small"]["$artifact"]["format"] == "npy"  # inline bytes, still an artifact
    assert recorded["frame"]["$artifact"]["format"] == "pandas"
    loaded = load_inputs(recorded, local_store)
    assert np.array_equal(loaded["array"], array) and loaded["array"].dtype == array.dtype
    assert np.array_equal(loaded["small"], np.arange(3))
    pd.testing.assert_frame_equal(loaded["frame"], frame)


def test_dicts_that_look_like_markers_are_stored_not_misread(local_store: Store) -> None:
    tricky = {
        "a": {"$secret": True},
        "b": {"$artifact": {"digest": "0" * 64, "format": "json", "size": 1}},
        "c": {"$repr": "x"},
        "d": {1: "int key"},
    }
    recorded = record_inputs(tricky, local_store)
    assert all(set(entry) == {"$artifact"} for entry in recorded.values())
    assert load_inputs(recorded, local_store) == tricky


def test_what_cannot_be_stored_is_described(local_store: Store) -> None:
    recorded = record_input("lock", threading.Lock(), local_store)
    assert set(recorded) == {"$repr"} and "lock" in recorded["$repr"]
    loaded = input_value(recorded, local_store)
    assert isinstance(loaded, Unrecorded) and repr(loaded) == recorded["$repr"]


class Leaky:
    """An unpicklable object whose repr reveals the secret it holds."""

    def __init__(self, s: Secret) -> None:
        self.s = s
        self.lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Leaky({self.s.reveal()})"


class BrokenRepr:
    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_a_description_masks_secrets_and_survives_a_failing_repr(tmp_path: Path) -> None:
    store = fresh_store(tmp_path / "store")
    value = MARKER + "leaky-repr"
    recorded = record_inputs({"leaky": Leaky(Secret(value)), "broken": BrokenRepr()}, store)
    assert recorded["leaky"] == {"$repr": "Leaky(***)"}
    assert recorded["broken"] == {"$repr": "<BrokenRepr: repr failed with RuntimeError>"}
    assert files_holding(tmp_path, value) == []


def test_a_large_value_holding_a_secret_is_described_not_stored(tmp_path: Path) -> None:
    store = fresh_store(tmp_path / "store")
    value = MARKER + "in-a-big-list"
    recorded = record_input("big", [Secret(value), *range(5000)], store)
    assert set(recorded) == {"$repr"} and MARKER not in recorded["$repr"]
    assert list((tmp_path / "store" / "objects").rglob("*")) == []


@pytest.mark.parametrize(
    "entry",
    [
        {"$artifact": {"digest": "../../etc/passwd", "format": "json", "size": 1}},
        {"$artifact": "not a dict"},
        {"$artifact": {"digest": "a" * 64, "format": "json", "size": -1}},
    ],
)
def test_a_damaged_header_entry_is_refused_by_name(local_store: Store, entry: Any) -> None:
    with pytest.raises(SerializationError, match=r"cannot load workflow input `x`: .*damaged"):
        load_inputs({"x": entry}, local_store)


def test_an_entry_naming_a_missing_object_raises_the_store_error(local_store: Store) -> None:
    from flowkit.store import ObjectMissing

    recorded = record_input("big", "z" * 10_000, local_store)
    digest = recorded["$artifact"]["digest"]
    (Path(local_store.url.removeprefix("file://")) / "objects" / digest[:2] / digest).unlink()
    with pytest.raises(ObjectMissing):
        input_value(recorded, local_store)


@settings(SETTINGS, max_examples=60)
@given(data=st.data(), plain=json_values)
def test_contains_secret_finds_a_planted_one_and_nothing_else(
    data: st.DataObject, plain: Any
) -> None:
    assert contains_secret(data.draw(holding(Secret(MARKER + "x"))))
    assert not contains_secret(plain)


def test_contains_secret_survives_cycles() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    assert not contains_secret(loop)
    loop.append({"k": Secret("in-a-cycle")})
    assert contains_secret(loop)

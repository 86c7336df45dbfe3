"""Golden digests: every key-forming function is pinned, so the key format cannot drift.

If one of these fails, a change altered cache keys or artifact digests for every user: make
it deliberate (bump ``flowkit.store.STORE_FORMAT`` and document it in docs/store.md), then
update the digests here.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowkit import keys
from flowkit.hashing import (
    BlobHasher,
    blob_digest,
    call_key,
    canonical_json,
    code_digest,
    hash_struct,
    interface_digest,
    is_digest,
    list_digest,
    version_digest,
)

A, B, C, D, E = ("a" * 64, "b" * 64, "c" * 64, "d" * 64, "e" * 64)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_canonical_json_sorts_keys_has_no_spaces_and_keeps_utf8() -> None:
    assert canonical_json({"b": [1, 2.5, None, True], "a": "é"}) == (
        b'{"a":"\xc3\xa9","b":[1,2.5,null,true]}'
    )


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        canonical_json(float("nan"))


def test_hash_struct_is_sha256_of_the_tagged_canonical_list() -> None:
    assert hash_struct("blob", "json", "x") == sha(b'["blob","json","x"]')
    assert hash_struct("blob", "json", "x") == (
        "391922fa2913c6e792351a78399ed639ff3dad1598172308e63051af3392bc12"
    )


def test_tags_separate_domains() -> None:
    assert hash_struct("list", [A]) != hash_struct("code", [A])
    assert list_digest([A]) != hash_struct("code", [A])


def test_blob_digest_golden() -> None:
    content = sha(b"42")
    assert blob_digest("json", content) == sha(f'["blob","json","{content}"]'.encode())
    assert blob_digest("json", content) == (
        "a7bdeb4280e8153aab6a0b549074721c7073db928364bc32bb0e376a80d2c49a"
    )
    assert blob_digest("pickle", content) != blob_digest("json", content)


def test_streaming_hasher_equals_one_shot() -> None:
    data = bytes(range(256)) * 1000
    h = BlobHasher()
    for i in range(0, len(data), 777):
        h.update(memoryview(data)[i : i + 777])
    assert h.size == len(data)
    assert h.content_sha256() == sha(data)
    assert h.digest("npy") == blob_digest("npy", sha(data))


def test_code_and_version_digests_golden() -> None:
    components = {"function `train`": A, "helper `clean`": B}
    # the pre-image production uses (codehash.fingerprint), pinned (store format 2)
    assert code_digest(components) == sha(canonical_json(["code", components]))
    assert code_digest(components) == (
        "97e7b3f2b39d80674f90b24a16969a601163ce00cc3600973d66c096b4f1f4cf"
    )
    assert code_digest(dict(reversed(components.items()))) == code_digest(components)
    assert version_digest("1") == sha(b'["code","version","1"]')
    assert version_digest("1") == (
        "c30dfe6abcef20e24102d02814541540025256bcbce4bfccf2d03ddbbd2f347e"
    )


def test_interface_digest_golden() -> None:
    assert interface_digest([[["x", "int"]], "int"]) == (
        "d5314d330dc84ab58fea505a1db140b91cddcf99215a5c0cb091ddfe90624232"
    )


def test_call_key_golden_and_independent_of_input_order() -> None:
    key = call_key("train", C, A, {"x": D, "y": E})
    assert key == sha(f'["call","train","{C}","{A}",{{"x":"{D}","y":"{E}"}}]'.encode())
    assert key == "c5a72451aacb8ff1bcfb5540caf22e727ae8a51ab96f06fdc7576536f053f667"
    assert call_key("train", C, A, {"y": E, "x": D}) == key


@pytest.mark.parametrize(
    "changed",
    [
        ("other", C, A, {"x": D, "y": E}),
        ("train", D, A, {"x": D, "y": E}),
        ("train", C, B, {"x": D, "y": E}),
        ("train", C, A, {"x": E, "y": E}),
        ("train", C, A, {"x": D}),
        ("train", C, A, {"x": D, "z": E}),
    ],
)
def test_every_call_key_component_counts(changed: tuple[str, str, str, dict[str, str]]) -> None:
    assert call_key(*changed) != call_key("train", C, A, {"x": D, "y": E})


def test_list_digest_golden_and_ordered() -> None:
    assert list_digest([A, B]) == (
        "89d7128e55782faec7960463078a0e18e3fdaf4c9fc49af68ecab17b3872d7fe"
    )
    assert list_digest([B, A]) != list_digest([A, B])
    assert list_digest([]) == sha(b'["list",[]]')


def test_is_digest() -> None:
    assert is_digest(A)
    assert not is_digest("A" * 64)
    assert not is_digest("a" * 63)


def test_value_digests_of_json_values_golden() -> None:
    # The artifact digest of 42 is the blob digest of its JSON bytes b"42".
    assert keys.value_token(42) == blob_digest("json", sha(b"42"))
    # dicts keep insertion order in the bytes (store format 2)
    data = b'{"b":{"$tuple":[1,2]},"a":[null,1.5]}'
    assert keys.value_token({"b": (1, 2), "a": [None, 1.5]}) == blob_digest("json", sha(data))
    assert keys.value_token({"b": (1, 2), "a": [None, 1.5]}) == (
        "2d0fae42bcddf8a08b8c2f45ea8a694f5a822e2ec8c645cef8f209c0480d42da"
    )


# The blob and call pre-images are built with f-strings when the encoder would not escape
# anything; these strings cover both sides of that test, so the fast path must give the
# encoder's bytes exactly, and fall back where it cannot.
AWKWARD = [
    "json",
    "",
    "é ü 中文 🙂",
    'quote"inside',
    "back\\slash",
    "tab\there",
    "nl\nhere",
    "\x00nul",
    "\x7fdel",
    "\u2028line sep",
    "\u00a0nbsp",
    "}],{",
    "x",
]


@pytest.mark.parametrize("text", AWKWARD)
def test_blob_digest_fast_path_equals_the_encoder(text: str) -> None:
    assert blob_digest(text, A) == hash_struct("blob", text, A)
    assert blob_digest("json", text) == hash_struct("blob", "json", text)


@pytest.mark.parametrize("text", AWKWARD)
def test_call_key_fast_path_equals_the_encoder(text: str) -> None:
    def generic(identity: str, code: str, interface: str, inputs: dict[str, str]) -> str:
        return hash_struct("call", identity, code, interface, inputs)

    cases: list[tuple[str, str, str, dict[str, str]]] = [
        (text, C, A, {"x": D}),
        ("train", text, A, {"x": D, "y": E}),
        ("train", C, text, {}),
        ("train", C, A, {text: D, "a": E, "zz": A}),
        ("train", C, A, {"x": text, "y": E}),
    ]
    for case in cases:
        assert call_key(*case) == generic(*case)


def test_call_key_input_order_does_not_matter_and_odd_values_fall_back() -> None:
    assert call_key("t", C, A, {"b": D, "a": E}) == call_key("t", C, A, {"a": E, "b": D})
    with pytest.raises(UnicodeEncodeError):  # as the encoder: a lone surrogate is refused
        call_key("t\ud800", C, A, {})
    with pytest.raises(UnicodeEncodeError):
        blob_digest("json", "\udc00")


_texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ['"', "\\", 'a"b', "\n", "\x7f", "é", C]
)


@given(_texts, _texts, _texts, st.dictionaries(_texts, _texts, max_size=4))
def test_call_key_is_the_canonical_json_digest_whatever_the_names(
    identity: str, code: str, interface: str, inputs: dict[str, str]
) -> None:
    # the fast path builds the bytes by hand: it must give the digest of the canonical JSON
    expected = hash_struct("call", identity, code, interface, inputs)  # the general path
    assert call_key(identity, code, interface, inputs) == expected

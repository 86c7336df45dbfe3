"""Hypothesis strategies for secrets: JSON-able values, and values with a Secret planted in them.

A planted secret's text starts with a marker no other generated value holds, so finding the
text anywhere (a header, a store file) can only mean the secret leaked.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from flowkit.secret import Secret

SETTINGS = settings(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

MARKER = "S3CR3T~"  # generated plain values never hold "~" (see ``_text``)

_text = st.text(st.characters(blacklist_characters="~", blacklist_categories=("Cs",)), max_size=8)
keys = _text
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
secret_texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=16).map(
    lambda s: MARKER + s
)


@dataclasses.dataclass
class Holder:
    """A dataclass holding whatever it is given (module level, so it pickles by reference)."""

    label: str
    held: Any


def _in_list(parts: tuple[list[Any], Any, list[Any]]) -> list[Any]:
    before, inner, after = parts
    return [*before, inner, *after]


def _in_dict(parts: tuple[dict[str, Any], str, Any]) -> dict[str, Any]:
    base, key, inner = parts
    return {**base, key: inner}


def holding(secret: Secret, *, dataclasses_too: bool = True) -> st.SearchStrategy[Any]:
    """Values holding ``secret`` somewhere: itself, or nested in lists, tuples, dicts (as a
    value) and, with ``dataclasses_too``, dataclass fields. Every value holds it at least once."""
    small = st.lists(json_values, max_size=3)

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        wrappers = [
            st.tuples(small, inner, small).map(_in_list),
            st.tuples(small, inner, small).map(_in_list).map(tuple),
            st.tuples(st.dictionaries(keys, json_values, max_size=3), keys, inner).map(_in_dict),
        ]
        if dataclasses_too:
            wrappers.append(st.builds(Holder, _text, inner))
        return st.one_of(wrappers)

    return st.recursive(st.just(secret), extend, max_leaves=5)


def files_holding(root: str | Path, text: str) -> list[str]:
    """The files under ``root`` whose bytes (gzip documents decompressed) contain ``text``,
    as UTF-8 or JSON-escaped."""

    needles = {
        text.encode("utf-8"),
        json.dumps(text)[1:-1].encode("utf-8"),
        json.dumps(text, ensure_ascii=False)[1:-1].encode("utf-8"),
    }
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                data = f.read()
            if path.endswith(".gz"):  # a checksum line, then the gzip body (store/compressed.py)
                data = gzip.decompress(data.partition(b"\n")[2])
            if any(n in data for n in needles):
                found.append(path)
    return found

"""Previews of values (:mod:`flowkit.ui.preview`): every kind shown briefly and escaped, tables
by their head and shape, PNG bytes as a data URI, secrets as "secret", and no value, however
hostile, makes :func:`preview` raise."""

from __future__ import annotations

import dataclasses
import re
import struct
import zlib
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

import flowkit as fk
from flowkit.ui.preview import MAX_TEXT, PNG_MAGIC, preview

HOSTILE = '<script>alert(1)</script> " & ü'


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"\x00\xff\x00\x00"
    return (
        PNG_MAGIC
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@dataclasses.dataclass
class Point:
    x: int
    label: str


class Pair(NamedTuple):
    left: str
    right: int


class Angry:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    def __len__(self) -> int:
        raise RuntimeError("no len either")


def test_scalars_text_and_containers_are_escaped() -> None:
    assert str(preview(42)) == '<code class="preview preview-scalar">42</code>'
    assert "None" in preview(None) and "3.5" in preview(3.5)
    html = str(preview({HOSTILE: [HOSTILE, {"k": HOSTILE}]}))
    assert "<script>" not in html and "&lt;script&gt;" in html
    text = str(preview("x" * (MAX_TEXT * 3)))
    assert f"({MAX_TEXT * 3:,} characters)" in text and len(text) < MAX_TEXT + 200
    many = str(preview(list(range(1000))))
    assert "list, 1,000 items" in many and "first 20 of 1,000 items" in many


def test_tables_arrays_records_and_images() -> None:
    frame = pd.DataFrame({"a": range(25), HOSTILE: ["v"] * 25})
    html = str(preview(frame))
    assert "pandas DataFrame, 25 rows x 2 columns (first 10 rows" in html
    assert html.count("<tr>") == 11 and "<script>" not in html
    table = str(preview(pa.table({"x": [1, 2, 3]})))
    assert "pyarrow Table, 3 rows x 1 columns" in table
    array = str(preview(np.zeros((3, 4), dtype="float32")))
    assert "array 3x4 float32" in array
    assert "Point" in preview(Point(1, HOSTILE)) and "&lt;script&gt;" in preview(Point(1, HOSTILE))
    assert "Pair" in preview(Pair("l", 2)) and "right" in preview(Pair("l", 2))
    image = str(preview(_png()))
    assert '<img alt="PNG image' in image and 'src="data:image/png;base64,' in image
    assert "3 bytes" in preview(b"abc")


def test_secrets_and_broken_values() -> None:
    assert "secret" in preview(fk.Secret("hunter2")) and "hunter2" not in preview(
        fk.Secret("hunter2")
    )
    assert "hunter2" not in preview({"token": fk.Secret("hunter2")})
    assert "a Angry that cannot be shown" in preview(Angry())
    assert "cannot be shown" in preview([Angry()])
    assert "cannot be shown" in preview({"a": Angry()})


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=5), inner, max_size=5)
        | st.tuples(inner, inner)
        | st.frozensets(st.integers(), max_size=3)
    ),
    max_leaves=20,
)


_OWN_TAGS = re.compile(
    r'</?(code|pre|div|span|table|thead|tbody|tr|th|td|ol|li|p)( class="[a-z -]+")?( start="0")?>'
)


def _foreign_markup(html: str) -> bool:
    """True if ``html`` holds a tag preview did not write itself (``<`` from a value)."""
    return "<" in _OWN_TAGS.sub("", html)


@settings(max_examples=150, deadline=None)
@given(values)
def test_preview_never_raises_and_never_leaks_markup(value: Any) -> None:
    assert not _foreign_markup(str(preview(value)))


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_any_text_comes_out_escaped(text: str) -> None:
    assert not _foreign_markup(str(preview([text, {text: text}, Point(1, text)])))

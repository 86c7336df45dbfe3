"""A short HTML look at a value: :func:`preview` (a call's output on the task page).

Scalars as they are, text cut to :data:`MAX_TEXT` characters, dicts and lists by their first
items, the head of a pyarrow Table or pandas DataFrame as a table with its shape, a numpy
array's shape, dtype and first values, PNG bytes as an image (a ``data:`` URI: nothing is
fetched), dataclasses and NamedTuples by field, anything else as its ``repr`` cut short.

The value came out of the store and may be anything a task returned: every piece of text is
escaped, nothing is executed, libraries are never imported to recognise a type (a DataFrame
is recognised by its class's module), and :func:`preview` never raises: a value whose
``repr`` fails shows as its type name. An ``fk.Secret`` shows as ``secret``.
"""

from __future__ import annotations

import base64
import dataclasses
import reprlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from markupsafe import Markup, escape

from flowkit.secret import Redacted, Secret

#: Characters of a string (or a repr) shown.
MAX_TEXT: Final = 2000
#: Items of a list or dict, rows of a table, values of an array shown.
MAX_ITEMS: Final = 20
MAX_ROWS: Final = 10
MAX_COLUMNS: Final = 30
#: Characters of one cell of a table or one nested value.
MAX_CELL: Final = 200
#: PNG bytes shown as an image (larger ones are described).
MAX_IMAGE: Final = 5 * 2**20
#: Nesting shown as nested previews; deeper values are one short repr.
MAX_DEPTH: Final = 2

PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"

_short = reprlib.Repr()
_short.maxstring = MAX_CELL
_short.maxother = MAX_CELL
_short.maxlist = _short.maxtuple = _short.maxdict = _short.maxset = 10
_short.maxlevel = 3


def preview(value: Any) -> Markup:
    """``value`` as a small piece of HTML (class ``preview-*`` by kind); never raises."""
    try:
        return _preview(value, 0)
    except Exception:  # a value's own __repr__, __len__, ... may raise anything
        return _type_only(value)


def png_data_uri(data: bytes) -> str:
    """``data:image/png;base64,...`` of PNG bytes (checked by their magic number)."""
    if not data.startswith(PNG_MAGIC):
        raise ValueError("not PNG bytes")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def cut(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def short(value: Any, limit: int = MAX_CELL) -> str:
    """A one-line repr of ``value`` at most about ``limit`` characters; never raises."""
    if isinstance(value, (Secret, Redacted)):
        return "secret"
    if isinstance(value, str):
        return cut(value, limit)
    try:
        return cut(_short.repr(value), limit)
    except Exception:
        return f"<{_type_name(value)}>"


# -- by kind -----------------------------------------------------------------------------------


def _preview(value: Any, depth: int) -> Markup:
    if isinstance(value, (Secret, Redacted)):
        return Markup('<span class="preview preview-secret">secret</span>')
    if value is None or isinstance(value, (bool, int, float, complex)):
        return _code("scalar", repr(value))
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _bytes(bytes(value))
    return _structured(value, depth)


def _structured(value: Any, depth: int) -> Markup:
    table = _table_kind(value)
    if table is not None:
        return table(value)
    if _module(value) == "numpy" and hasattr(value, "shape") and hasattr(value, "dtype"):
        return _array(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
        return _fields(_type_name(value), fields, depth)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return _fields(_type_name(value), list(zip(value._fields, value, strict=False)), depth)
    if isinstance(value, Mapping):
        return _mapping(value, depth)
    if isinstance(value, (list, tuple, set, frozenset)):
        return _sequence(value, depth)
    return _code("repr", cut(repr(value)))


def _nested(value: Any, depth: int) -> Markup:
    """A value inside a container: a preview while shallow, else one short repr."""
    if depth >= MAX_DEPTH:
        return escape(short(value))
    try:
        return _preview(value, depth)
    except Exception:
        return _type_only(value)


def _code(kind: str, text: str) -> Markup:
    return Markup('<code class="preview preview-{}">{}</code>').format(kind, text)


def _text(value: str) -> Markup:
    shown = cut(value)
    return Markup('<pre class="preview preview-str">{}</pre>').format(shown)


def _bytes(data: bytes) -> Markup:
    if data.startswith(PNG_MAGIC) and len(data) <= MAX_IMAGE:
        return Markup(
            '<div class="preview preview-image"><img alt="PNG image, {} bytes" src="{}"></div>'
        ).format(f"{len(data):,}", png_data_uri(data))
    head = data[:32].hex(" ")
    more = " …" if len(data) > 32 else ""
    return Markup('<span class="preview preview-bytes">{} bytes <code>{}{}</code></span>').format(
        f"{len(data):,}", head, more
    )


def _array(value: Any) -> Markup:
    shape = "x".join(str(int(n)) for n in value.shape) or "scalar"
    flat = value.ravel()[:MAX_ITEMS].tolist() if value.size else []
    more = " …" if value.size > MAX_ITEMS else ""
    return Markup(
        '<div class="preview preview-array"><span class="shape">array {} {}</span> '
        "<code>{}{}</code></div>"
    ).format(shape, str(value.dtype), short(flat, MAX_TEXT), more)


def _fields(name: str, fields: list[tuple[str, Any]], depth: int) -> Markup:
    rows = Markup("").join(
        Markup("<tr><th>{}</th><td>{}</td></tr>").format(k, _nested(v, depth + 1))
        for k, v in fields[:MAX_ITEMS]
    )
    more = _more(len(fields), "fields")
    return Markup(
        '<div class="preview preview-fields"><span class="shape">{}</span>'
        '<table class="data">{}</table>{}</div>'
    ).format(name, rows, more)


def _mapping(value: Mapping[Any, Any], depth: int) -> Markup:
    items = []
    for i, (k, v) in enumerate(value.items()):
        if i >= MAX_ITEMS:
            break
        items.append((short(k), v))
    rows = Markup("").join(
        Markup("<tr><th>{}</th><td>{}</td></tr>").format(k, _nested(v, depth + 1)) for k, v in items
    )
    return Markup(
        '<div class="preview preview-dict"><span class="shape">dict, {} keys</span>'
        '<table class="data">{}</table>{}</div>'
    ).format(f"{len(value):,}", rows, _more(len(value), "keys"))


def _sequence(value: Any, depth: int) -> Markup:
    items = []
    for i, v in enumerate(value):
        if i >= MAX_ITEMS:
            break
        items.append(v)
    kind = _type_name(value)
    lis = Markup("").join(Markup("<li>{}</li>").format(_nested(v, depth + 1)) for v in items)
    return Markup(
        '<div class="preview preview-list"><span class="shape">{}, {} items</span>'
        '<ol start="0">{}</ol>{}</div>'
    ).format(kind, f"{len(value):,}", lis, _more(len(value), "items"))


def _more(total: int, what: str) -> Markup:
    if total <= MAX_ITEMS:
        return Markup("")
    return Markup('<p class="muted">first {} of {} {}</p>').format(MAX_ITEMS, f"{total:,}", what)


# -- tables (recognised without importing their libraries) --------------------------------------


def _table_kind(value: Any) -> Callable[[Any], Markup] | None:
    module = _module(value)
    name = type(value).__name__
    if module == "pyarrow" and name == "Table":
        return _arrow
    if module == "pandas" and name == "DataFrame":
        return _pandas
    return None


def _arrow(table: Any) -> Markup:
    columns = [str(c) for c in table.column_names]
    head = table.slice(0, MAX_ROWS).to_pylist()
    rows = [[row.get(c) for c in table.column_names] for row in head]
    return _grid("pyarrow Table", table.num_rows, columns, rows)


def _pandas(frame: Any) -> Markup:
    columns = [str(c) for c in frame.columns]
    rows = [list(r) for r in frame.head(MAX_ROWS).itertuples(index=False, name=None)]
    return _grid("pandas DataFrame", len(frame), columns, rows)


def _grid(kind: str, n_rows: int, columns: list[str], rows: list[list[Any]]) -> Markup:
    shown = columns[:MAX_COLUMNS]
    head = Markup("").join(Markup("<th>{}</th>").format(cut(c, MAX_CELL)) for c in shown)
    body = Markup("").join(
        Markup("<tr>{}</tr>").format(
            Markup("").join(Markup("<td>{}</td>").format(short(v)) for v in r[:MAX_COLUMNS])
        )
        for r in rows
    )
    note = f"{kind}, {n_rows:,} rows x {len(columns):,} columns"
    if n_rows > len(rows) or len(columns) > len(shown):
        note += f" (first {len(rows)} rows, {len(shown)} columns)"
    return Markup(
        '<div class="preview preview-table"><span class="shape">{}</span>'
        '<table class="data"><thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>'
    ).format(note, head, body)


# -- helpers -----------------------------------------------------------------------------------


def _module(value: Any) -> str:
    """The top package of the value's class (``pandas`` for a DataFrame)."""
    module = getattr(type(value), "__module__", "") or ""
    return module.split(".", 1)[0] if isinstance(module, str) else ""


def _type_name(value: Any) -> str:
    try:
        return str(type(value).__qualname__)
    except Exception:  # pragma: no cover - a class whose name lookup fails
        return "object"


def _type_only(value: Any) -> Markup:
    return Markup('<span class="preview preview-unshown">a {} that cannot be shown</span>').format(
        _type_name(value)
    )


__all__ = ["MAX_TEXT", "PNG_MAGIC", "cut", "png_data_uri", "preview", "short"]

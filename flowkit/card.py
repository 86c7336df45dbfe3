"""Panels a task adds to its own record, shown by ``flowkit ui`` and ``flowkit report`` (like
Metaflow cards and Flyte decks)::

    @fk.task
    def evaluate(model: Model, test: Table) -> float:
        fk.card.markdown("## Evaluation\\nAccuracy on the **held-out** set.")
        fk.card.table(confusion_df, title="Confusion matrix")
        fk.card.image(fig, title="ROC")          # a matplotlib figure, or PNG bytes
        ...

A card belongs to the attempt that made it: it is kept with the attempt in the run's task
record (a failed attempt's cards too), as plain JSON: markdown text, the first
:data:`MAX_ROWS` rows of a table as JSON scalars, an image as base64 PNG of at most
:data:`MAX_IMAGE_BYTES`. Secret values are masked in text and cells, as in logs. Called
outside a task's attempt (a task function called as a plain function, in a unit test) a card
goes nowhere and nothing fails.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from flowkit import capture
from flowkit.capture import masking
from flowkit.errors import FlowkitError

#: Rows of a table kept in its card (the table's length is kept too).
MAX_ROWS = 50
#: Columns of a table kept in its card.
MAX_COLUMNS = 50
#: Characters of a markdown card or of one cell.
MAX_TEXT = 100_000
MAX_CELL = 200
#: Bytes of one image's PNG.
MAX_IMAGE_BYTES = 2 * 2**20

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def markdown(text: str, title: str | None = None) -> None:
    """Add a Markdown panel (shown as Markdown; raw HTML in it is shown as text)."""
    if not isinstance(text, str):
        raise FlowkitError(f"fk.card.markdown expects a str, got {type(text).__name__}")
    _add({"kind": "markdown", "text": masking.scrub(text[:MAX_TEXT])}, title)


def table(data: Any, title: str | None = None) -> None:
    """Add a table: a pyarrow Table, a pandas DataFrame, a dict of columns or a list of
    row dicts. Its first :data:`MAX_ROWS` rows are kept, with its length."""
    columns, rows, total = _tabulate(data)
    cells = [[_cell(v) for v in row[:MAX_COLUMNS]] for row in rows[:MAX_ROWS]]
    card = {
        "kind": "table",
        "columns": [masking.scrub(str(c))[:MAX_CELL] for c in columns[:MAX_COLUMNS]],
        "rows": cells,
        "total_rows": total,
    }
    _add(card, title)


def image(picture: Any, title: str | None = None) -> None:
    """Add an image: PNG bytes, or a figure with ``savefig`` (matplotlib) saved as PNG."""
    if isinstance(picture, (bytes, bytearray, memoryview)):
        data = bytes(picture)
    elif callable(getattr(picture, "savefig", None)):
        buffer = io.BytesIO()
        picture.savefig(buffer, format="png")
        data = buffer.getvalue()
    else:
        raise FlowkitError(
            f"fk.card.image expects PNG bytes or a matplotlib figure, got {type(picture).__name__}"
        )
    if not data.startswith(_PNG_MAGIC):
        raise FlowkitError("fk.card.image: the bytes are not a PNG image (save it as PNG first)")
    if len(data) > MAX_IMAGE_BYTES:
        raise FlowkitError(
            f"fk.card.image: the PNG is {len(data)} bytes, over the {MAX_IMAGE_BYTES}-byte "
            "limit of a card; make it smaller, or return it as a task output"
        )
    _add({"kind": "image", "png": base64.b64encode(data).decode("ascii")}, title)


def _add(card: dict[str, Any], title: str | None) -> None:
    if title is not None:
        card["title"] = masking.scrub(str(title)[:MAX_CELL])
    attempt = capture.current()
    if attempt is None:  # a plain call of the task's function: nowhere to keep it
        return
    if attempt.cards is None:
        attempt.cards = []
    attempt.cards.append(card)


def _tabulate(data: Any) -> tuple[list[Any], list[list[Any]], int]:
    """(columns, first rows, number of rows) of a table-like value."""
    if hasattr(data, "to_pylist") and hasattr(data, "column_names"):  # pyarrow Table
        head = data.slice(0, MAX_ROWS).to_pylist()
        names = list(data.column_names)
        return names, [[r.get(c) for c in names] for r in head], data.num_rows
    if hasattr(data, "to_dict") and hasattr(data, "columns") and hasattr(data, "head"):
        head = data.head(MAX_ROWS)  # pandas DataFrame
        names = list(head.columns)
        return names, head.astype(object).values.tolist(), len(data)
    if isinstance(data, Mapping):
        names = list(data)
        cols = [list(data[c]) for c in names]
        total = max((len(c) for c in cols), default=0)
        rows = [[c[i] if i < len(c) else None for c in cols] for i in range(min(total, MAX_ROWS))]
        return names, rows, total
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        if all(isinstance(r, Mapping) for r in data):
            names = list(dict.fromkeys(k for r in data for k in r))
            return names, [[r.get(c) for c in names] for r in data[:MAX_ROWS]], len(data)
    raise FlowkitError(
        "fk.card.table expects a pyarrow Table, a pandas DataFrame, a dict of columns or a "
        f"list of row dicts, got {type(data).__name__}"
    )


def _cell(value: Any) -> Any:
    """A JSON scalar for one cell (text for anything else, cut to :data:`MAX_CELL`)."""
    if value is None or isinstance(value, bool) or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if hasattr(value, "item") and callable(value.item):  # a numpy scalar
        try:
            return _cell(value.item())
        except (TypeError, ValueError):
            pass
    return masking.scrub(str(value))[:MAX_CELL]

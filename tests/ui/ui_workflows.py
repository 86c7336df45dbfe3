"""Workflows that ``tests/ui/fill_store.py`` runs for real, each in a fresh process, to give the
UI's browser tests (and the docs' screenshots) a store with every kind of run: succeeded,
cached on a rerun, failed with a log line and a traceback, a map of 1,000 items, cards, a
secret parameter, and one still running.

Values a page must escape are planted on purpose: log lines, errors, parameters and outputs
holding ``<script>``, quotes, ``&``, unicode, and an output too big to show whole.
"""

from __future__ import annotations

import os
import struct
import time
import zlib

import pyarrow as pa

import flowkit as fk

# Markers the browser tests look for: planted markup must show as text and never run.
HOSTILE = '<script>window.__pwned = 1</script> " & ü ✓ <b>bold</b>'
FAILED_LOG_LINE = "UI-TEST-LOG: about to divide by zero"
FAILED_ERROR = "UI-TEST-ERROR: the model diverged"
SECRET_VALUE = "s3cr3t-UI-TOKEN-9f2c41"
WAIT_SECONDS = 300  # a running run's task gives up after this long (the fixture ends it sooner)


# -- a small pipeline: succeeded, then cached on a rerun -------------------------------------


@fk.task(cache=True)
def load(n: int) -> pa.Table:
    print(f"loading {n} rows")
    return pa.table({"x": list(range(n)), "label": [HOSTILE if i == 0 else "ok" for i in range(n)]})


@fk.task(cache=True)
def train(data: pa.Table, depth: int) -> float:
    time.sleep(0.05 * depth)  # a visible bar on the Gantt chart
    return float(depth) / (1 + data.num_rows)


@fk.task
def best(scores: list[float]) -> float:
    return max(scores)


@fk.workflow
def pipeline(n: int = 200, depths: list[int] = [2, 4, 8]) -> float:  # noqa: B006
    data = load(n)
    scores = train.map(data=data, depth=depths)
    return best(scores)


# -- a failed run: a log line, then a traceback ---------------------------------------------


@fk.task
def prepare(note: str) -> str:
    return note


@fk.task
def explode(note: str) -> int:
    print(FAILED_LOG_LINE)
    print(f"note was {note}")
    raise ValueError(f"{FAILED_ERROR} {note}")


@fk.workflow
def breaks(note: str = HOSTILE) -> int:
    return explode(prepare(note))


# -- a map of 1,000 items -------------------------------------------------------------------


@fk.task
def square(x: int) -> int:
    return x * x


@fk.task
def total(values: list[int]) -> int:
    return sum(values)


@fk.workflow
def squares(xs: list[int]) -> int:
    return total(square.map(x=xs))


# -- cards, hostile values and a huge output ------------------------------------------------


@fk.task
def evaluate(label: str) -> str:
    fk.card.markdown(
        f"## Evaluation\nAccuracy on the **held-out** set: 0.93.\n\n{HOSTILE}", title="notes"
    )
    fk.card.table(
        pa.table({"feature": ["age", "income", HOSTILE], "score": [0.12, 0.05, 0.31]}),
        title="drift",
    )
    fk.card.image(bar_chart_png([3, 7, 4, 9, 5]), title="scores")
    return label


@fk.task
def bulk(label: str) -> str:
    return label + " " + "x" * 300_000  # too big to show whole


@fk.workflow
def carded(label: str = HOSTILE) -> str:
    return bulk(evaluate(label))


# -- a secret parameter ---------------------------------------------------------------------


@fk.task
def fetch(url: str, token: fk.Secret) -> int:
    print(f"fetching {url} with {token.reveal()}")  # captured logs mask the value
    return len(token.reveal())


@fk.workflow
def with_secret(url: str, token: fk.Secret) -> int:
    return fetch(url, token)


# -- a run that stays running until a file appears ------------------------------------------


@fk.task
def wait_for(path: str) -> str:
    deadline = time.monotonic() + WAIT_SECONDS
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.05)
    return "done"


@fk.task
def finish(word: str) -> str:
    return word.upper()


@fk.workflow
def waits(path: str) -> str:
    return finish(wait_for(path))


# -- helpers --------------------------------------------------------------------------------


def bar_chart_png(values: list[int], width: int = 240, height: int = 120) -> bytes:
    """A real PNG (RGB, no dependency): one blue bar per value on white."""
    top = max(values)
    bar = width // len(values)
    rows = []
    for y in range(height):
        row = bytearray([0])  # filter type: none
        for x in range(width):
            i = min(x // bar, len(values) - 1)
            filled = x % bar < bar - 6 and height - y <= values[i] * (height - 10) // top
            row += bytes((59, 110, 196) if filled else (255, 255, 255))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(rows))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )

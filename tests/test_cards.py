"""What a run keeps for the UI: ``fk.card`` panels, the worker of each attempt, and the
run's graph shape in its header.

Cards are made inside real runs (local and threads) and read back through ``fk.runs``; the
readers (:func:`flowkit.cardview.read_cards`, :func:`flowkit.graphshape.read_shape`) are
attacked with generated JSON, since a run record is data someone else wrote.
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import flowkit as fk
from flowkit.cardview import read_cards
from flowkit.errors import FlowkitError
from flowkit.graphshape import KINDS, read_shape

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32

# -- workflows ------------------------------------------------------------------------------


@fk.task
def report(n: int) -> int:
    fk.card.markdown(f"# Item {n}\n<script>alert({n})</script>", title="notes")
    fk.card.table(pa.table({"n": [n, n + 1], "label": ["a", None]}), title="arrow")
    fk.card.table(pd.DataFrame({"x": range(80)}))
    fk.card.table({"a": [1, 2], "b": [1.5]})
    fk.card.table([{"k": 1}, {"k": 2, "extra": object()}])
    fk.card.image(PNG, title="chart")
    return n


@fk.workflow
def reports(ns: list[int]) -> list[int]:
    return report.map(n=ns)


_flaky_tries: dict[str, int] = {}


@fk.task(retries=1)
def flaky(tag: str) -> str:
    _flaky_tries[tag] = _flaky_tries.get(tag, 0) + 1
    fk.card.markdown(f"attempt {_flaky_tries[tag]}")
    if _flaky_tries[tag] == 1:
        raise RuntimeError("first attempt fails")
    return tag


@fk.workflow
def flaky_wf(tag: str) -> str:
    return flaky(tag)


_gate = threading.Barrier(2, timeout=10)


@fk.task
def both_at_once(n: int) -> int:
    _gate.wait()  # two calls on two threads at the same moment: their cards must not cross
    fk.card.markdown(f"from {n}")
    return n


@fk.workflow
def pair(ns: list[int]) -> list[int]:
    return both_at_once.map(n=ns)


# -- cards in real runs ---------------------------------------------------------------------


def test_every_kind_of_card_is_kept_with_the_attempt(tmp_path: Path) -> None:
    run = fk.run(reports, ns=[1, 2], store=str(tmp_path))
    view = fk.runs.get(run.id, store=str(tmp_path))
    cards = view["report[1]"].cards
    assert [c.kind for c in cards] == ["markdown", "table", "table", "table", "table", "image"]
    md, arrow, frame, columns, rows, image = cards
    assert md.title == "notes" and md.text.startswith("# Item 2\n<script>")  # kept as text
    assert arrow.columns == ["n", "label"] and arrow.rows == [[2, "a"], [3, None]]
    assert len(frame.rows) == fk.card.MAX_ROWS and frame.total_rows == 80
    assert columns.rows == [[1, 1.5], [2, None]] and columns.total_rows == 2
    assert rows.columns == ["k", "extra"] and rows.rows[0] == [1, None]
    assert rows.rows[1][1].startswith("<object object")  # anything else is its text
    assert image.title == "chart" and image.image() == PNG
    assert view["report[0]"].cards[0].text.startswith("# Item 1")


def test_a_failed_attempt_keeps_its_own_cards(tmp_path: Path) -> None:
    run = fk.run(flaky_wf, tag="t1", store=str(tmp_path))
    task = fk.runs.get(run.id, store=str(tmp_path))["flaky"]
    first, second = task.attempts
    assert first.status == "failed" and [c.text for c in first.cards] == ["attempt 1"]
    assert [c.text for c in second.cards] == ["attempt 2"] == [c.text for c in task.cards]


def test_cards_of_two_threads_do_not_cross_and_each_names_its_worker(tmp_path: Path) -> None:
    run = fk.run(pair, ns=[7, 8], store=str(tmp_path), backend=fk.backends.ThreadsBackend(2))
    view = fk.runs.get(run.id, store=str(tmp_path))
    for i, n in enumerate([7, 8]):
        assert [c.text for c in view[f"both_at_once[{i}]"].cards] == [f"from {n}"]
    workers = {view[f"both_at_once[{i}]"].attempts[0].worker for i in range(2)}
    assert len(workers) == 2  # two threads ran them at once
    assert all(w is not None and w.count(":") >= 2 for w in workers)


def test_a_secret_in_a_card_is_masked(tmp_path: Path) -> None:
    @fk.task
    def tell(token: fk.Secret) -> int:
        fk.card.markdown(f"token is {token.reveal()}")
        fk.card.table({"token": [token.reveal()]})
        return 1

    @fk.workflow
    def telling(token: fk.Secret) -> int:
        return tell(token)

    secret = "s3cr3t-value-for-cards"
    run = fk.run(telling, token=fk.Secret(secret), store=str(tmp_path))
    cards = fk.runs.get(run.id, store=str(tmp_path))["tell"].cards
    assert secret not in cards[0].text and cards[1].rows[0][0] != secret
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_outside_a_task_a_card_goes_nowhere() -> None:
    fk.card.markdown("nobody keeps this")
    assert report(3) == 3  # a task called outside a workflow runs its function plainly


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: fk.card.markdown(b"bytes"), "expects a str"),  # type: ignore[arg-type]
        (lambda: fk.card.table(42), "pyarrow Table"),
        (lambda: fk.card.image(b"GIF89a"), "not a PNG"),
        (lambda: fk.card.image(PNG + b"0" * fk.card.MAX_IMAGE_BYTES), "over the"),
        (lambda: fk.card.image("chart.png"), "PNG bytes or a matplotlib figure"),
    ],
)
def test_bad_cards_are_refused_with_what_to_do(make: Any, words: str) -> None:
    with pytest.raises(FlowkitError, match=words):
        make()


def test_a_figure_is_saved_as_png() -> None:
    class Figure:  # what fk.card.image needs of a matplotlib figure
        def savefig(self, buffer: Any, format: str) -> None:
            assert format == "png"
            buffer.write(PNG)

    from flowkit import capture

    with capture.attempt("x", live=False) as cap:
        fk.card.image(Figure())
    assert cap.cards is not None and base64.b64decode(cap.cards[0]["png"]) == PNG


# -- the graph shape in the header ----------------------------------------------------------


def test_the_header_keeps_the_graph_shape(tmp_path: Path) -> None:
    run = fk.run(reports, ns=[1], store=str(tmp_path))
    shape = fk.runs.get(run.id, store=str(tmp_path)).graph
    assert shape == {
        "nodes": [{"id": "report", "task": "report", "kind": "map", "cache": False}],
        "edges": [],
        "inputs": ["ns"],
        "output": ["report"],
    }


# -- the readers against planted records ----------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
node_like = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values | st.sampled_from(["a", "b"]),
        "task": json_values | st.just("t"),
        "kind": json_values | st.sampled_from(sorted(KINDS)),
        "cache": json_values,
    },
)
shape_like = st.fixed_dictionaries(
    {},
    optional={
        "nodes": st.lists(node_like | json_values, max_size=5) | json_values,
        "edges": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "source": st.sampled_from(["a", "b", "c"]) | json_values,
                    "target": st.sampled_from(["a", "b", "c"]) | json_values,
                    "param": json_values,
                },
            ),
            max_size=5,
        )
        | json_values,
        "inputs": json_values,
        "output": json_values,
    },
)


@given(shape_like | json_values)
def test_a_planted_graph_shape_reads_as_well_formed_or_none(found: Any) -> None:
    shape = read_shape(found)
    if shape is None:
        return
    ids = {n["id"] for n in shape["nodes"]}
    for n in shape["nodes"]:
        assert isinstance(n["id"], str) and isinstance(n["task"], str) and n["kind"] in KINDS
        assert isinstance(n["cache"], bool)
    for e in shape["edges"]:
        assert e["source"] in ids and e["target"] in ids and isinstance(e["param"], str)
    assert all(isinstance(i, str) for i in shape["inputs"]) and set(shape["output"]) <= ids


card_like = st.fixed_dictionaries(
    {"kind": st.sampled_from(["markdown", "table", "image"]) | json_values},
    optional={
        "text": json_values,
        "title": json_values,
        "columns": json_values,
        "rows": st.lists(st.lists(json_values, max_size=3), max_size=3) | json_values,
        "total_rows": json_values,
        "png": json_values | st.just(base64.b64encode(PNG).decode()),
    },
)


@given(st.lists(card_like | json_values, max_size=5) | json_values)
def test_planted_cards_read_without_crashing(found: Any) -> None:
    for card in read_cards(found):
        assert card.kind in {"markdown", "table", "image"}
        assert isinstance(card.text, str) and all(isinstance(c, str) for c in card.columns)
        assert all(isinstance(v, (str, int, float, bool, type(None))) for r in card.rows for v in r)
        assert isinstance(card.total_rows, int) and card.total_rows >= 0
        assert card.title is None or isinstance(card.title, str)
        if card.kind == "image":
            png = card._card["png"]
            if all(c.isalnum() or c in "+/=" for c in png) and len(png) % 4 == 0:
                assert isinstance(card.image(), bytes)
            else:
                with pytest.raises(FlowkitError, match="damaged"):
                    card.image()

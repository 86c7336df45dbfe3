"""The run page and the task page (:mod:`flowkit.ui.runpage`, :mod:`flowkit.ui.taskpage`) on
real runs in a temporary store: a map of 1,000 items, a failed call with its log and
traceback, a cached rerun, why a cached task's call missed after its input or its code
changed, and a workflow whose names, logs, outputs and parameters carry markup (which must
come out escaped) and a secret (which must not come out at all)."""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import flowkit as fk
from flowkit import runs
from flowkit.runview import RunView, UnknownNodeError
from flowkit.ui.runpage import ITEM_ROWS, run_page
from flowkit.ui.taskpage import task_page

HOSTILE = '<script>alert(1)</script> " & ü'
SECRET = "s3cr3t-run-page-77"


@fk.task(cache=True)
def numbers(n: int) -> list[int]:
    return list(range(n))


@fk.task(cache=True)
def square(x: int) -> int:
    return x * x


@fk.task
def total(xs: list[int]) -> int:
    return sum(xs)


@fk.workflow
def big(n: int = 1000) -> int:
    return total(square.map(x=numbers(n)))


@fk.task(name=f"shout{HOSTILE}")
def shout(text: str, token: fk.Secret) -> dict[str, str]:
    print(f"log line {text}")
    fk.card.markdown(f"# card {text}\n\n[bad](javascript:alert(1))")
    return {text: text}


@fk.task
def explode(x: dict[str, str]) -> int:
    print("about to fail")
    raise ValueError(f"boom {HOSTILE}")


@fk.workflow
def hostile(text: str, token: fk.Secret) -> int:
    return explode(shout(text, token))


class Tags(HTMLParser):
    """Start tags with their attributes, and the text, of a page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        """Tags ``tag`` whose attributes hold the given words (``class_="task"``: one of its
        classes; ``data_node="x"``: ``data-node`` is x)."""
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        return [
            a
            for t, a in self.tags
            if t == tag and all(v in (a.get(k) or "").split() for k, v in wanted.items())
        ]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("runpage") / "store")


@pytest.fixture(scope="module")
def big_runs(store: str) -> tuple[RunView, RunView]:
    first = fk.run(big, n=1000, store=store)
    again = fk.run(big, n=1000, store=store)
    return runs.get(first.id, store=store), runs.get(again.id, store=store)


@pytest.fixture(scope="module")
def failed_run(store: str) -> RunView:
    with pytest.raises(fk.TaskFailedError):
        fk.run(hostile, text=HOSTILE, token=fk.Secret(SECRET), store=store)
    return runs.latest("hostile", store=store)


def test_run_page_of_a_map_of_1000_items(big_runs: tuple[RunView, RunView]) -> None:
    run, _ = big_runs
    html = run_page(run)
    page = Tags(html)
    assert len(page.find("h1")) == 1 and page.find("nav") and page.find("main")
    status = page.find("span", id="run-status")
    assert status and "status-succeeded" in (status[0]["class"] or "")
    nodes = {a["data-node"]: a for a in page.find("g", class_="node")}
    assert set(nodes) == {"numbers", "square", "total"}
    sq = nodes["square"]
    assert "map" in (sq["class"] or "") and sq["data-count"] == "1000"
    assert sq["data-status"] == "succeeded" and sq["data-cached"] == "false"
    assert "1,000 items" in html
    rows = page.find("tr", class_="task")
    assert len(rows) == 2 + ITEM_ROWS  # the rest are behind the map's item list
    assert "and 800 more items of" in html
    assert page.find("a", class_="task-link") and page.find("svg", id="gantt")
    assert page.find("details", class_="map-items")
    assert len(html) < 500_000


def test_a_cached_rerun_marks_its_nodes_and_calls(big_runs: tuple[RunView, RunView]) -> None:
    _, again = big_runs
    page = Tags(run_page(again))
    nodes = {a["data-node"]: a for a in page.find("g", class_="node")}
    assert nodes["numbers"]["data-cached"] == "true"
    assert nodes["square"]["data-cached"] == "true"  # every item was served from the cache
    assert nodes["total"]["data-cached"] == "false"
    assert "1,000 ok · 0 failed · 1,000 cached" in "".join(page.text)
    task = Tags(task_page(again, "square[3]"))
    assert "served from the cache" in "".join(task.text)
    assert not task.find("div", id="miss-reason")


def test_a_failed_call_shows_its_log_and_traceback_escaped(failed_run: RunView) -> None:
    html = run_page(failed_run)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert SECRET not in html
    page = Tags(html)
    assert "failed" in (page.find("span", id="run-status")[0]["class"] or "")
    assert any("secret" == t.strip() for t in page.text)  # the parameter, hidden
    nodes = {a["data-node"]: a for a in page.find("g", class_="node")}
    assert nodes["explode"]["data-status"] == "failed"
    assert nodes[f"shout{HOSTILE}"]["data-status"] == "succeeded"

    task = task_page(failed_run, "explode")
    assert "<script>alert(1)</script>" not in task
    detail = Tags(task)
    assert detail.find("pre", class_="logs") and detail.find("pre", class_="traceback")
    text = "".join(detail.text)
    assert "about to fail" in text and "Traceback (most recent call last)" in text
    assert f"boom {HOSTILE}" in text  # the error, shown as text


def test_hostile_names_outputs_logs_and_cards_are_escaped(failed_run: RunView) -> None:
    node = f"shout{HOSTILE}"
    html = task_page(failed_run, node)
    assert "<script>alert(1)</script>" not in html and SECRET not in html
    page = Tags(html)
    for ident in ("inputs", "outputs", "attempts", "cards"):
        assert page.find("div", id=ident), ident
    assert page.find("td", class_="preview")
    text = "".join(page.text)
    assert f"log line {HOSTILE}" in text and f"card {HOSTILE}" in text
    assert not [a for t, a in page.tags if t == "a" and "javascript" in (a.get("href") or "")]
    assert page.find("div", class_="card")


def test_unknown_nodes_raise_for_the_apps_404(failed_run: RunView) -> None:
    with pytest.raises(UnknownNodeError):
        task_page(failed_run, "nope")


def test_the_producing_call_of_an_input_is_linked(big_runs: tuple[RunView, RunView]) -> None:
    run, _ = big_runs
    page = Tags(task_page(run, "total"))
    inputs = "".join(page.text)
    assert "xs" in inputs and "square" in inputs
    outputs = Tags(task_page(run, "square[7]"))
    assert "49" in "".join(outputs.text)


def _module(folder: Path, name: str, helper: str) -> Any:
    (folder / f"{name}.py").write_text(
        textwrap.dedent(
            f"""
            import flowkit as fk

            def clean(x: int) -> int:
                return {helper}

            @fk.task(cache=True)
            def step(x: int) -> int:
                return clean(x) * 2

            @fk.workflow
            def wf(x: int = 1) -> int:
                return step(x)
            """
        )
    )
    if name in sys.modules:
        return importlib.reload(sys.modules[name])
    return importlib.import_module(name)


def _miss(run: RunView, node: str) -> list[str]:
    html = task_page(run, node)
    match = re.search(r'<div class="note miss-reason" id="miss-reason">(.*?)</div>', html, re.S)
    if match is None:
        return []
    return [re.sub(r"<.*?>", "", li) for li in re.findall(r"<li>(.*?)</li>", match.group(1))]


def test_why_a_cached_call_missed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"missmod_{tmp_path.name.replace('-', '_')}"
    store = str(tmp_path / "store")
    mod = _module(tmp_path, name, "x + 1")
    first = runs.get(fk.run(mod.wf, x=1, store=store).id, store=store)
    assert _miss(first, "step") == ["no earlier entry of task `step` in the store"]
    changed_input = runs.get(fk.run(mod.wf, x=2, store=store).id, store=store)
    assert _miss(changed_input, "step") == ["input `x` changed"]
    assert changed_input["step"].identity == f"{name}.step"  # the entry is read from there
    # a record made before flowkit kept the identity: the entry is found by its key
    writer = fk.Store(store)
    _, records = writer.read_run(changed_input.id)
    writer.write_task_records(
        changed_input.id, 0, [{k: v for k, v in r.items() if k != "identity"} for r in records]
    )
    older = runs.get(changed_input.id, store=store)
    assert older["step"].identity is None and _miss(older, "step") == ["input `x` changed"]
    hit = runs.get(fk.run(mod.wf, x=1, store=store).id, store=store)
    assert hit["step"].cached and _miss(hit, "step") == []
    mod = _module(tmp_path, name, "x + 2")
    changed_code = runs.get(fk.run(mod.wf, x=1, store=store).id, store=store)
    assert _miss(changed_code, "step") == ["helper `clean` changed"]
    sys.modules.pop(name, None)


def test_an_input_from_an_upstream_call_is_previewed(failed_run: RunView) -> None:
    html = task_page(failed_run, "explode")
    inputs = html[html.index('id="inputs"') : html.index('id="outputs"')]
    page = Tags(inputs)
    assert page.find("div", class_="preview")  # the dict shout returned, loaded and shown
    assert HOSTILE in "".join(page.text)  # as text...
    assert not page.find("script") and "<script>alert" not in inputs  # ...never as markup

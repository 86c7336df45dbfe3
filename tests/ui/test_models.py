"""The models pages (``/models``, ``/models/{name}``) through Starlette's TestClient, over a
real MLflow registry on sqlite and a store filled by real ``fk.run`` calls of ``ml.drift``.

The registry (made once for the module, with flowkit.ml's own ``register``, ``promote`` and
``rollback``): model ``clf`` with three versions and their metrics, ``production`` promoted
1 -> 2 -> 3 and rolled back to 2, ``staging`` on 3, version 2 tagged with the drift run's id;
and a model whose name, description and tags are markup with both quote characters.
"""

from __future__ import annotations

import re
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

import flowkit as fk
from flowkit import ml
from flowkit.ui import models
from flowkit.ui.app import create_app
from flowkit.ui.models_drift import _entry, drift_reports
from flowkit.ui.models_registry import alias_histories, parse_history

XSS = '<script>alert("x")</script>&\''
# MLflow refuses "/" and ":" in model names
NAME_XSS = "<img src=x onerror=\"alert('x')\">&"


@fk.task
def double(x: int) -> int:
    return 2 * x


@fk.workflow
def monitor(reference: pa.Table, current: pa.Table) -> ml.DriftReport:
    return ml.drift(reference, current)


@fk.workflow
def plain(x: int) -> int:
    return double(x)


@dataclass
class Fixture:
    uri: str
    store_url: str
    drift_run: str
    plain_run: str


@pytest.fixture(scope="module")
def models_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    """The registry and the store described in the module's docstring."""
    from flowkit.ml import uris

    root = tmp_path_factory.mktemp("models")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    uris.import_mlflow()
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for i, accuracy in enumerate((0.81, 0.93, 0.95), 1):
        ml.register({"weights": i}, "clf", uri, metrics={"accuracy": accuracy, "f1": i / 10})
    for version in (1, 2, 3):
        ml.promote("clf", version, tracking_uri=uri)
    ml.rollback("clf", tracking_uri=uri)  # production: 3 -> 2
    ml.promote("clf", 3, alias="staging", tracking_uri=uri)
    ml.register({"weights": 0}, NAME_XSS, uri, metrics={"loss": 0.5}, alias="live")
    client.update_registered_model(NAME_XSS, description=XSS)
    client.set_model_version_tag(NAME_XSS, "1", "flowkit.run_id", XSS)

    store_url = str(root / "store")
    reference = pa.table({"age": list(range(200)), "city": ["a", "b"] * 100, XSS: [1.0] * 200})
    current = pa.table({"age": list(range(100, 300)), "city": ["a", "b"] * 100, XSS: [1.0] * 200})
    drift_run = fk.run(monitor, reference=reference, current=current, store=store_url).id
    plain_run = fk.run(plain, x=3, store=store_url).id
    client.set_model_version_tag("clf", "2", "flowkit.run_id", drift_run)
    yield Fixture(uri, store_url, drift_run, plain_run)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def client(models_registry: Fixture) -> TestClient:
    """The models routes in a bare app, given the store as routes' argument."""
    app = Starlette(routes=models.routes(models_registry.uri, store_url=models_registry.store_url))
    return TestClient(app)


class _Rows(HTMLParser):
    """The elements with a class, as (tag, classes, attributes, text) with their text."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, Any]] = []
        self._open: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {"tag": tag, "attrs": dict(attrs), "text": ""}
        found["classes"] = set((found["attrs"].get("class") or "").split())
        self.found.append(found)
        if tag not in ("br", "img", "input", "meta", "link"):
            self._open.append(found)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element["text"] += data


def elements(html: str, tag: str, cls: str) -> list[dict[str, Any]]:
    parser = _Rows()
    parser.feed(html)
    return [e for e in parser.found if e["tag"] == tag and cls in e["classes"]]


def main(html: str) -> str:
    return html[html.index("<main>") : html.index("</main>")]


def test_the_models_list_shows_each_model_its_latest_version_and_aliases(
    client: TestClient,
) -> None:
    page = client.get("/models")
    assert page.status_code == 200
    rows = {r["attrs"]["data-model"]: r for r in elements(page.text, "tr", "model")}
    assert set(rows) == {"clf", NAME_XSS}
    text = " ".join(rows["clf"]["text"].split())
    assert "v3" in text and "production → v2" in text and "staging → v3" in text
    assert 'href="/models/clf"' in page.text


def test_a_model_page_lists_its_versions_newest_first_with_their_metrics(
    client: TestClient, models_registry: Fixture
) -> None:
    page = client.get("/models/clf")
    assert page.status_code == 200
    rows = elements(page.text, "tr", "version")
    assert [r["attrs"]["data-version"] for r in rows] == ["3", "2", "1"]
    metrics = {r["attrs"]["data-version"]: " ".join(r["text"].split()) for r in rows}
    assert "accuracy 0.95" in metrics["3"] and "f1 0.3" in metrics["3"]
    assert "accuracy 0.81" in metrics["1"]
    assert "production" in metrics["2"] and "staging" in metrics["3"]
    # version 2 names the flowkit run that made it: a link to its page
    versions = page.text[page.text.index('<table id="versions"') :].split("</table>")[0]
    assert f'<a class="run-link" href="/runs/{models_registry.drift_run}">' in versions


def test_alias_history_shows_each_move_newest_first(client: TestClient) -> None:
    page = client.get("/models/clf")
    moves = elements(page.text, "li", "alias-move")
    # production went 1 -> 2 -> 3 and was rolled back to 2; staging was set to 3 once:
    # every move, newest first, with what it was
    seen = [(m["attrs"]["data-action"], m["attrs"]["data-version"]) for m in moves]
    assert seen == [
        ("rollback", "2"),
        ("promote", "3"),
        ("promote", "2"),
        ("promote", "1"),
        ("promote", "3"),
    ]
    assert ["current" in m["classes"] for m in moves] == [True, False, False, False, True]
    assert "rollback to v2" in " ".join(moves[0]["text"].split())
    assert "from v3" in moves[0]["text"]
    headings = [" ".join(h["text"].split()) for h in elements(page.text, "h3", "alias")]
    assert headings == ["production → v2", "staging → v3"]


def test_drift_reports_of_the_store_show_per_feature_scores_and_link_their_run(
    client: TestClient, models_registry: Fixture
) -> None:
    page = client.get("/models/clf")
    sections = elements(page.text, "section", "drift-report")
    assert [s["attrs"]["data-run-id"] for s in sections] == [models_registry.drift_run]
    assert sections[0]["attrs"]["data-drifted"] == "true"
    features = {f["attrs"]["data-feature"]: f for f in elements(page.text, "tr", "feature")}
    assert set(features) == {"age", "city", XSS}
    assert "drifted" in features["age"]["classes"]
    assert features["age"]["attrs"]["data-drifted"] == "true"
    assert "drifted" not in features["city"]["classes"]
    assert features["city"]["attrs"]["data-drifted"] == "false"
    # the drifted feature comes first; the score and threshold are shown
    first = elements(page.text, "tr", "feature")[0]
    assert first["attrs"]["data-feature"] == "age"
    assert "0.2" in first["text"]
    assert f'href="/runs/{models_registry.drift_run}"' in page.text
    assert models_registry.plain_run not in page.text  # a run without ml.drift: no report


def test_markup_in_names_descriptions_tags_and_features_is_escaped(client: TestClient) -> None:
    listing = client.get("/models")
    page = client.get("/models/" + _quote(NAME_XSS))
    assert page.status_code == 200, page.text
    for html in (listing.text, page.text):
        assert "<img src=x" not in html and "<script>alert" not in html
        assert "&lt;img src=x onerror=&#34;alert(&#39;x&#39;)&#34;&gt;&amp;" in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&#39;" in page.text
    assert [r["attrs"]["data-version"] for r in elements(page.text, "tr", "version")] == ["1"]
    # the planted flowkit.run_id tag is text in a quoted link, never markup
    assert 'href="/runs/%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E%26%27"' in page.text
    assert [m["attrs"]["data-version"] for m in elements(page.text, "li", "alias-move")] == ["1"]


def test_an_unknown_model_is_a_404_page_naming_it(client: TestClient) -> None:
    page = client.get("/models/nope")
    assert page.status_code == 404
    assert '<div class="error">' in page.text and "nope" in page.text
    assert "Traceback" not in page.text


def test_without_a_tracking_uri_the_page_says_how_to_enable_it() -> None:
    app = create_app("/nonexistent-store")
    for path in ("/models", "/models/clf"):
        page = TestClient(app).get(path)
        assert page.status_code == 200
        assert "--tracking-uri" in page.text and 'pip install "flowkit[ml]"' in page.text
    assert 'href="/models"' not in main(TestClient(app).get("/models").text)
    assert 'href="/models"' not in TestClient(app).get("/models").text.split("<main>")[0]


def test_without_mlflow_installed_the_page_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = models.importlib.util.find_spec

    def no_mlflow(name: str, *args: Any) -> Any:
        return None if name == "mlflow" else real(name, *args)

    monkeypatch.setattr(models.importlib.util, "find_spec", no_mlflow)
    assert models.unavailable_reason("sqlite:///x.db") == "MLflow is not installed"
    page = TestClient(Starlette(routes=models.routes("sqlite:///x.db"))).get("/models")
    assert page.status_code == 200
    assert "MLflow is not installed" in page.text and "flowkit[ml]" in page.text


def test_a_registry_that_cannot_be_reached_is_an_error_page_naming_it(tmp_path: Path) -> None:
    port = _closed_port()
    missing = f"sqlite:///{tmp_path / 'no-such' / 'mlflow.db'}"
    folder = f"file://{tmp_path / 'no-such' / 'mlruns'}"
    for uri, shown in (
        (f"http://me:hunter2@127.0.0.1:{port}", f"http://me:***@127.0.0.1:{port}"),
        (missing, missing),
        (folder, folder),
        ("bogus://registry", "bogus://registry"),  # a scheme MLflow does not know
    ):
        app = Starlette(routes=models.routes(uri))
        for path in ("/models", "/models/clf"):
            started = time.monotonic()
            page = TestClient(app).get(path)
            assert time.monotonic() - started < 10  # never MLflow's minutes of retries
            assert page.status_code == 503
            error = re.search(r'<div class="error">(.*?)</div>', page.text, re.S)
            assert error and shown in error.group(1)
            assert "hunter2" not in page.text and "Traceback" not in page.text
    assert not (tmp_path / "no-such").exists()  # read-only: no database made


def test_through_the_app_the_nav_links_models_and_drift_reads_the_apps_store(
    models_registry: Fixture,
) -> None:
    app = create_app(models_registry.store_url, tracking_uri=models_registry.uri)
    if getattr(app.state, "store_url", None) is None:
        app.state.store_url = models_registry.store_url  # until the app sets it itself
    client = TestClient(app)
    listing = client.get("/models")
    assert listing.status_code == 200
    assert '<a href="/models">Models</a>' in listing.text
    page = client.get("/models/clf")
    assert elements(page.text, "section", "drift-report")
    assert page.headers["Content-Security-Policy"]


def test_a_bare_app_without_a_store_says_so_in_the_drift_section(models_registry: Fixture) -> None:
    page = TestClient(Starlette(routes=models.routes(models_registry.uri))).get("/models/clf")
    assert page.status_code == 200
    assert "no drift report is shown" in page.text


def test_history_tags_that_are_damaged_or_planted_are_read_safely() -> None:
    assert parse_history(None) == ([], False)
    assert parse_history("[1, 2, 3]") == ([1, 2, 3], False)
    assert parse_history("not json") == ([], True)
    assert parse_history('{"a": 1}') == ([], True)
    assert parse_history('[1, "2", true, -4, 5]') == ([1, 5], True)

    @dataclass
    class Planted:
        name: str
        aliases: dict[str, Any]
        tags: dict[str, str]

    rm = Planted(
        "m",
        {"production": "4", "bad": "x"},
        {"flowkit.alias_history.production": "[1, 2]", "flowkit.alias_history.old": "[3]"},
    )
    histories = {h.alias: h for h in alias_histories(rm)}
    assert set(histories) == {"production", "old"}  # "bad" points at no version number
    # moved to 4 by another tool: recorded as the newest move
    assert [(m.version, m.previous, m.current) for m in histories["production"].moves] == [
        (4, 2, True),
        (2, 1, False),
        (1, None, False),
    ]
    assert histories["old"].current is None
    assert [m.current for m in histories["old"].moves] == [False]
    # a logged move list wins over the stack; planted junk in it is left out, and a damaged
    # one falls back to the stack
    moves = '[{"do": "promote", "v": 4, "from": 2, "at": 5.0}, {"do": "<b>", "v": 1}, 7]'
    rm.tags["flowkit.alias_events.production"] = moves
    logged = {h.alias: h for h in alias_histories(rm)}["production"].moves
    assert [(m.action, m.version, m.previous, m.current) for m in logged] == [
        ("promote", 4, 2, True)
    ]
    rm.tags["flowkit.alias_events.production"] = "{not json"
    fallback = {h.alias: h for h in alias_histories(rm)}["production"].moves
    assert [m.version for m in fallback] == [4, 2, 1]


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_drift_reads_the_records_of_runs_that_may_hold_a_drift_call_only(
    models_registry: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowkit.store import Store

    read: list[str] = []
    real = Store.read_run

    def counted(self: Store, run_id: str) -> Any:
        read.append(run_id)
        return real(self, run_id)

    monkeypatch.setattr(Store, "read_run", counted)
    found = drift_reports(fk.runs.open_store(models_registry.store_url))
    assert [r.run_id for r in found] == [models_registry.drift_run]
    assert read == [models_registry.drift_run]  # the plain run's graph has no ml.drift


def test_a_planted_report_shows_what_it_can_and_never_fails_the_page() -> None:
    @dataclass
    class Planted:
        drifted: Any
        method: Any
        features: Any

    class Run:
        id, workflow, started = "r1", "w", None

    report = Planted(
        "yes",
        "psi",
        {
            "a": {"score": float("nan"), "threshold": "0.2", "drifted": True},
            "b": "not a dict",
            "c": {"score": 1e308, "threshold": 0.2, "drifted": 1},
            "d": {"score": 9.0, "threshold": 0.2, "drifted": True},
        },
    )
    entry = _entry(Run(), "ml.drift", report)  # type: ignore[arg-type]
    assert entry.drifted is False  # only True is true
    assert [(f.name, f.score, f.drifted) for f in entry.features] == [
        ("d", 9.0, True),
        ("a", None, True),
        ("c", 1e308, False),
        ("b", None, False),
    ]
    assert entry.features[1].threshold is None
    failed = _entry(Run(), "ml.drift[2]", "ObjectMissing: gone")  # type: ignore[arg-type]
    assert failed.problem == "ObjectMissing: gone" and failed.features == []

"""``flowkit ui``'s app (:func:`flowkit.ui.app.create_app`) through Starlette's TestClient:
the runs page (filters, paging, headers only), the workflow page, the status JSON, the error
pages (unknown and ambiguous ids, unreadable stores, no traceback), the response headers,
and what must never reach a page: markup from run data, secrets, writes.

The store is filled by real ``fk.run`` calls (a succeeded run and its cached rerun, a failed
one, a workflow whose name and input are markup, one with an ``fk.Secret``); paging and the
running run use headers planted with the store's own writer.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import flowkit as fk
from flowkit import runs
from flowkit.lifecycle import this_host
from flowkit.store import Store
from flowkit.ui import app as ui_app
from flowkit.ui.app import create_app
from flowkit.ui.pages import CSP
from flowkit.ui.templating import asset_text, render

XSS = '<script>alert("x")</script>&"'
SECRET = "hunter2-not-to-be-shown"


@fk.task
def load(n: int) -> list[int]:
    print(f"loading {n}")
    return list(range(n))


@fk.task(cache=True)
def square(x: int) -> int:
    return x * x


@fk.task
def boom(xs: list[int]) -> int:
    raise ValueError(f"bad input {XSS}")


@fk.task
def echo(text: str) -> str:
    print(text)
    return text


@fk.task
def use_token(token: fk.Secret) -> int:
    return len(token.reveal())


@fk.workflow
def pipe(n: int) -> list[int]:
    return square.map(x=load(n))


@fk.workflow
def breaks(n: int) -> int:
    return boom(load(n))


@fk.workflow(name=XSS)
def hostile(text: str) -> str:
    return echo(text)


@fk.workflow
def secretive(token: fk.Secret) -> int:
    return use_token(token)


class Found(HTMLParser):
    """The start tags of a page: (tag, attributes) in document order."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def having(self, tag: str, cls: str | None = None, **wanted: str) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.tags
            if t == tag
            and (cls is None or cls in a.get("class", "").split())
            and all(a.get(k.replace("_", "-")) == v for k, v in wanted.items())
        ]


def rows(text: str) -> list[dict[str, str]]:
    return Found(text).having("tr", "run")


def ids(text: str) -> list[str]:
    return [r["data-run-id"] for r in rows(text)]


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("ui") / "store"
    store = str(path)
    made = {
        "first": fk.run(pipe, n=3, store=store).id,
        "cached": fk.run(pipe, n=3, store=store).id,
        "hostile": fk.run(hostile, text=XSS, store=store).id,
        "secret": fk.run(secretive, token=fk.Secret(SECRET), store=store).id,
    }
    with pytest.raises(fk.TaskFailedError):
        fk.run(breaks, n=2, store=store)
    made["failed"] = runs.latest("breaks", store=store).id
    return {"store": store, "runs": made}


@pytest.fixture
def client(filled: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(create_app(filled["store"])) as c:
        yield c


# -- the runs page -------------------------------------------------------------------------


def test_runs_page_lists_every_run_newest_first_with_status_and_counts(
    client: TestClient, filled: dict[str, Any]
) -> None:
    r = client.get("/")
    assert r.status_code == 200
    expected = [v.id for v in runs.list(store=filled["store"])]
    assert ids(r.text) == expected and len(expected) == 5
    page = Found(r.text)
    assert page.having("nav") and page.having("main") and len(page.having("h1")) == 1
    assert page.having("form", id="filters")
    first, cached, failed = (filled["runs"][k] for k in ("first", "cached", "failed"))
    statuses = {row["data-run-id"]: row["data-status"] for row in rows(r.text)}
    assert statuses[failed] == "failed" and statuses[cached] == "succeeded"
    assert page.having("a", "run-link", href=f"/runs/{first}")
    assert page.having("a", "workflow-link", href="/workflows/pipe")
    assert page.having("span", "status-failed")
    # counts from the header's summary: the rerun served the map's items from the cache
    counts = re.findall(r'<td class="counts">([^<]*)</td>', r.text)
    assert "4 run · 0 cached · 0 failed" in counts and "1 run · 3 cached · 0 failed" in counts


def test_filters_by_workflow_status_date_and_id_prefix(
    client: TestClient, filled: dict[str, Any]
) -> None:
    made = filled["runs"]
    assert set(ids(client.get("/?workflow=pipe").text)) == {made["first"], made["cached"]}
    assert ids(client.get("/?status=failed").text) == [made["failed"]]
    assert ids(client.get("/?workflow=pipe&status=failed").text) == []
    assert ids(client.get(f"/?q={made['hostile'][:22]}").text) == [made["hostile"]]
    today = datetime.date.today()
    assert len(ids(client.get(f"/?since={today.isoformat()}").text)) == 5
    tomorrow = today + datetime.timedelta(days=1)
    page = client.get(f"/?since={tomorrow.isoformat()}").text
    assert ids(page) == [] and "No run matches these filters" in page
    # the form keeps what was asked
    form = Found(client.get("/?workflow=pipe&status=failed").text)
    assert form.having("input", name="workflow", value="pipe")
    assert form.having("option", value="failed", selected="")


def test_a_bad_filter_is_named_on_the_page_and_left_out(client: TestClient) -> None:
    r = client.get("/?status=<b>done</b>&since=yesterday&page=-2")
    assert r.status_code == 200
    errors = re.findall(r'<div class="error">([^<]*)</div>', r.text)
    assert any("is not one of running, succeeded" in e for e in errors)
    assert any("is not a date (YYYY-MM-DD)" in e for e in errors)
    assert any("is not a page number" in e for e in errors)
    assert "<b>done</b>" not in r.text and "&lt;b&gt;done&lt;/b&gt;" in r.text
    assert len(ids(r.text)) == 5  # the bad filters are dropped, not applied


def plant_runs(path: Path, n: int, *, status: str = "succeeded") -> list[str]:
    """``n`` run headers (no task records), ids in time order, workflows w0, w1, w2."""
    store = Store(str(path))
    store.check()
    base = time.time() - 10 * n
    made = []
    for i in range(n):
        started = base + 10 * i
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started))
        run_id = f"{stamp}.{i:06d}-aaaaaa"
        header = {
            "id": run_id,
            "workflow": f"w{i % 3}",
            "status": status,
            "started": started,
            "ended": started + 1.5,
            "summary": {"run": i, "cached": 0, "failed": 0},
            "inputs": {},
        }
        store.write_run(run_id, header)
        made.append(run_id)
    return made[::-1]  # newest first


def test_paging_fifty_runs_a_page_with_next_and_prev_keeping_the_filters(
    tmp_path: Path,
) -> None:
    made = plant_runs(tmp_path / "store", 120)
    with TestClient(create_app(str(tmp_path / "store"))) as c:
        one, two, three = (c.get(f"/?page={p}").text for p in (1, 2, 3))
        assert ids(one) == made[:50] and ids(two) == made[50:100] and ids(three) == made[100:]
        assert Found(one).having("a", "next", href="/?page=2") and not Found(one).having(
            "a", "prev"
        )
        assert Found(two).having("a", "prev", href="/") and Found(two).having("a", "next")
        assert not Found(three).having("a", "next")
        assert "runs 101\u2013120 of 120" in three
        w0 = [i for n, i in enumerate(made[::-1]) if n % 3 == 0][::-1]  # 40 runs of w0
        first = c.get("/?workflow=w0").text
        assert ids(first) == w0[:40] and not Found(first).having("a", "next")
        older = c.get("/?workflow=w1&q=2&page=1").text
        assert all(i.startswith("2") for i in ids(older))
        past = c.get("/?page=9").text
        assert ids(past) == [] and Found(past).having("a", "prev", href="/?page=8")


def test_a_submitted_run_is_listed_and_shown_as_submitted(tmp_path: Path) -> None:
    """A run announced by ``flowkit submit`` (or a scheduler) before its process starts: no
    graph, no calls yet; its status has its own colour and its page still opens."""
    (run_id,) = plant_runs(tmp_path / "store", 1, status="submitted")
    with TestClient(create_app(str(tmp_path / "store"))) as c:
        listed = c.get("/?status=submitted")
        assert listed.status_code == 200 and ids(listed.text) == [run_id]
        assert Found(listed.text).having("span", "status-submitted")
        page = c.get(f"/runs/{run_id}")
        assert page.status_code == 200 and "status-submitted" in page.text


def test_runs_page_reads_headers_only_and_no_more_than_the_page_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant_runs(tmp_path / "store", 300)
    read: list[str] = []
    real = Store.read_doc

    def counting(self: Store, rel: str) -> Any:
        read.append(rel)
        return real(self, rel)

    monkeypatch.setattr(Store, "read_doc", counting)
    with TestClient(create_app(str(tmp_path / "store"))) as c:
        assert len(ids(c.get("/").text)) == 50
        headers = [p for p in read if p.endswith("/run.json")]
        assert not [p for p in read if "/tasks-" in p]  # never a task record
        # the page's 50, and the workflow names of the newest runs for the filter's list
        assert len(headers) <= 300 and len(set(headers)) == len(headers)
        read.clear()
        assert len(ids(c.get("/?status=succeeded&page=3").text)) == 50
        assert not [p for p in read if p.endswith("/run.json")]  # ended runs: cached


def test_a_running_header_is_read_again_on_each_page(tmp_path: Path) -> None:
    path = tmp_path / "store"
    (run_id,) = plant_runs(path, 1, status="running")
    store = Store(str(path))
    header = dict(store.read_doc(f"runs/{run_id}/run.json"))
    header.update(pid=os.getpid(), host=this_host(), heartbeat=time.time(), ended=None)
    store.write_run(run_id, header)
    with TestClient(create_app(str(path))) as c:
        assert rows(c.get("/").text)[0]["data-status"] == "running"
        store.write_run(run_id, {**header, "status": "succeeded", "ended": time.time()})
        assert rows(c.get("/").text)[0]["data-status"] == "succeeded"


# -- the workflow page ---------------------------------------------------------------------


def test_workflow_page_charts_its_runs_and_lists_them(
    client: TestClient, filled: dict[str, Any]
) -> None:
    r = client.get("/workflows/pipe")
    assert r.status_code == 200
    page = Found(r.text)
    assert page.having("svg", id="duration-chart")
    points = page.having("circle", "point")
    made = filled["runs"]
    assert {p["data-run-id"] for p in points} == {made["first"], made["cached"]}
    assert all(p["data-status"] == "succeeded" for p in points)
    assert page.having("a", href=f"/runs/{made['first']}")
    assert "<title>" + made["first"] in r.text  # the tooltip names the run
    assert set(ids(r.text)) == {made["first"], made["cached"]}  # the recent runs' table
    assert len(page.having("h1")) == 1


def test_an_unknown_workflow_is_a_404_page(client: TestClient) -> None:
    r = client.get("/workflows/no-such-flow")
    assert r.status_code == 404
    assert "no run of workflow &#39;no-such-flow&#39;" in r.text


# -- markup in run data is text, never code -----------------------------------------------


def test_markup_in_names_inputs_and_errors_is_escaped_everywhere(
    client: TestClient, filled: dict[str, Any]
) -> None:
    from urllib.parse import quote

    pages = [
        client.get("/"),
        client.get("/?workflow=" + quote(XSS)),
        client.get("/workflows/" + quote(XSS, safe="")),
        client.get("/runs/" + quote(XSS, safe="")),
        client.get("/runs/" + quote(XSS, safe="") + "/tasks/" + quote(XSS, safe="")),
        client.get("/?q=" + quote(XSS)),
    ]
    assert pages[2].status_code == 200 and "duration-chart" in pages[2].text
    assert pages[3].status_code == 404
    for page in pages:
        assert "<script>alert" not in page.text
        assert '"x")' not in page.text.replace("&#34;x&#34;)", "")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&#34;" in pages[0].text


def test_a_planted_status_or_workflow_cannot_choose_a_class_or_break_an_attribute(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store"
    (run_id,) = plant_runs(path, 1)
    store = Store(str(path))
    header = dict(store.read_doc(f"runs/{run_id}/run.json"))
    header.update(status='done" onmouseover="alert(1)', workflow="a/../../b")
    store.write_run(run_id, header)
    with TestClient(create_app(str(path))) as c:
        text = c.get("/").text
        assert 'onmouseover="' not in text
        assert Found(text).having("span", "status-unknown")
        assert Found(text).having("a", "workflow-link", href="/workflows/a%2F..%2F..%2Fb")
        assert c.get("/workflows/a/../../b").status_code in (200, 404)


def test_a_secret_input_is_never_shown(client: TestClient, filled: dict[str, Any]) -> None:
    run_id = filled["runs"]["secret"]
    for path in ("/", "/workflows/secretive", f"/api/runs/{run_id}/status", f"/runs/{run_id}"):
        r = client.get(path)
        assert r.status_code in (200, 503), path  # 503: the run page is not built yet
        assert SECRET not in r.text, path


# -- errors ----------------------------------------------------------------------------------


def test_unknown_run_is_a_404_page_naming_the_newest_runs(
    client: TestClient, filled: dict[str, Any]
) -> None:
    r = client.get("/runs/19990101T000000.000000-ffffff")
    assert r.status_code == 404
    page = Found(r.text)
    assert page.having("div", "error") and "no run &#39;19990101T000000" in r.text
    assert page.having("a", "run-link", href=f"/runs/{filled['runs']['failed']}")
    assert "Traceback" not in r.text


def test_ambiguous_prefix_lists_the_candidates(client: TestClient, filled: dict[str, Any]) -> None:
    r = client.get("/runs/2")
    assert r.status_code == 300
    assert "is ambiguous" in r.text
    listed = {a["href"] for a in Found(r.text).having("a", "run-link")}
    assert listed == {f"/runs/{i}" for i in sorted(filled["runs"].values(), reverse=True)[:5]}
    assert client.get("/api/runs/2/status").json()["error"].startswith("run id '2' is ambiguous")


def test_a_unique_prefix_redirects_to_the_full_id(
    client: TestClient, filled: dict[str, Any]
) -> None:
    full = filled["runs"]["failed"]
    r = client.get(f"/runs/{full[:24]}/tasks/boom", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == f"/runs/{full}/tasks/boom"
    r = client.get(f"/runs/{full[:24]}", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == f"/runs/{full}"


def test_an_unknown_node_is_a_404_page(client: TestClient, filled: dict[str, Any]) -> None:
    r = client.get(f"/runs/{filled['runs']['failed']}/tasks/nope%5B3%5D")
    assert r.status_code == 404
    assert "has no call `nope[3]`" in r.text and "Traceback" not in r.text


def test_unknown_paths_are_404_pages(client: TestClient) -> None:
    for path in ("/nothing", "/static/nothing.css", "/static/../app.py", "/runs/"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert '<div class="error">' in r.text or path.startswith("/static")


@pytest.mark.parametrize("kind", ["missing", "not-a-store", "old-format", "damaged-marker"])
def test_a_store_that_cannot_be_read_is_an_error_page(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "store"
    if kind != "missing":
        path.mkdir()
    if kind == "not-a-store":
        (path / "notes.txt").write_text("hello")
    elif kind == "old-format":
        (path / "flowkit.json").write_text('{"format": 2}\n')
    elif kind == "damaged-marker":
        (path / "flowkit.json").write_text("{not json")
    with TestClient(create_app(str(path))) as c:
        for url in ("/", "/runs/x", "/workflows/w", "/api/runs/x/status"):
            r = c.get(url)
            assert r.status_code == 503, (url, r.text)
            assert "Traceback" not in r.text
            if not url.startswith("/api/"):
                assert '<div class="error">' in r.text
    assert not path.exists() or kind != "missing"  # reading never creates the store


def test_a_bug_in_a_page_is_a_500_page_without_the_traceback(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals /home/someone")

    monkeypatch.setattr("flowkit.ui.runlist.runs_page", broken)
    r = client.get("/")
    assert r.status_code == 500
    assert "Internal error" in r.text and "RuntimeError" in r.text
    assert "secret internals" not in r.text and "Traceback" not in r.text


# -- headers and methods ---------------------------------------------------------------------


def test_every_response_has_a_strict_csp_and_no_store(
    client: TestClient, filled: dict[str, Any]
) -> None:
    run_id = filled["runs"]["first"]
    for path in (
        "/",
        "/workflows/pipe",
        "/static/flowkit.css",
        "/nothing",
        f"/api/runs/{run_id}/status",
    ):
        r = client.get(path)
        assert r.headers["content-security-policy"] == CSP, path
        assert r.headers["cache-control"] == "no-store", path
        assert r.headers["x-content-type-options"] == "nosniff", path
    assert "script-src" not in CSP and "'unsafe-inline'" not in CSP.split("style-src")[0]


def test_static_assets_are_served_from_the_package(client: TestClient) -> None:
    css = client.get("/static/flowkit.css")
    js = client.get("/static/flowkit.js")
    assert css.status_code == js.status_code == 200
    assert "--failed" in css.text and "text/css" in css.headers["content-type"]
    assert "/api/runs/" in js.text and "javascript" in js.headers["content-type"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_the_app_is_read_only(client: TestClient, filled: dict[str, Any], method: str) -> None:
    run_id = filled["runs"]["first"]
    for path in ("/", f"/runs/{run_id}", "/workflows/pipe", f"/api/runs/{run_id}/status"):
        r = client.request(method, path)
        assert r.status_code == 405, (method, path)
        assert "read-only" in r.text and "GET" in r.headers["allow"]
    assert client.request(method, "/static/flowkit.css").status_code == 405
    assert client.head("/").status_code == 200


# -- live status -----------------------------------------------------------------------------


def test_status_json_of_finished_runs(client: TestClient, filled: dict[str, Any]) -> None:
    made = filled["runs"]
    doc = client.get(f"/api/runs/{made['cached']}/status").json()
    assert doc["status"] == "succeeded"
    assert doc["summary"] == {"run": 1, "cached": 3, "failed": 0}
    assert doc["nodes"]["load"] == "succeeded" and doc["nodes"]["square"] == "succeeded"
    assert doc["nodes"]["square[2]"] == "succeeded"
    failed = client.get(f"/api/runs/{made['failed']}/status").json()
    assert failed["status"] == "failed" and failed["nodes"]["boom"] == "failed"
    assert client.get("/api/runs/19990101T000000.0-ff/status").status_code == 404


def test_status_json_of_a_running_run_from_the_records_so_far(
    client: TestClient, filled: dict[str, Any], tmp_path: Path
) -> None:
    """A copy of the first run, as if ``square``'s items had not finished yet."""
    source = Store(filled["store"], read_only=True)
    header, records = source.read_run(filled["runs"]["first"])
    path = tmp_path / "store"
    store = Store(str(path))
    store.check()
    run_id = "20990101T000000.000000-abcdef"
    running = {**header, "status": "running", "ended": None, "pid": os.getpid()}
    running.update(host=this_host(), heartbeat=time.time(), summary={"run": 0})
    store.write_run(run_id, running)
    store.write_task_records(run_id, 0, [r for r in records if r["node"] == "load"])
    with TestClient(create_app(str(path))) as c:
        doc = c.get(f"/api/runs/{run_id}/status").json()
    assert doc == {
        "status": "running",
        "summary": {"run": 1, "cached": 0, "failed": 0},
        "nodes": {"load": "succeeded", "square": "running"},
    }


# -- templates -------------------------------------------------------------------------------


def test_inline_assets_make_a_page_that_needs_no_server() -> None:
    text = render("error.html", inline_assets=True, title="t", message=XSS)
    assert "/static/" not in text and " src=" not in text and 'rel="stylesheet"' not in text
    assert "<style>" in text and "--succeeded" in text
    assert text.count("<script>") == 1 and "data-live" in text
    assert '<a href="/"' not in text.split("</nav>")[0]  # no server links in the nav
    assert "<script>alert" not in text
    with pytest.raises(ValueError, match="no static asset"):
        asset_text("../app.py")


def test_models_link_shows_with_a_tracking_uri_on_every_page(
    filled: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nav's flag reaches pages rendered in the thread pool, the models pages' too."""

    def models_page(request: Any) -> HTMLResponse:
        return HTMLResponse(render("error.html", title="models", message="m"))

    def fake_routes(tracking_uri: str | None, store_url: str) -> list[Route]:
        return [Route("/models", models_page)]

    monkeypatch.setattr(ui_app, "_model_routes", fake_routes)
    with TestClient(create_app(filled["store"], tracking_uri="sqlite:///x.db")) as c:
        for path in ("/", "/models", "/nothing"):
            assert Found(c.get(path).text).having("a", href="/models"), path
    with TestClient(create_app(filled["store"])) as c:
        assert not Found(c.get("/").text).having("a", href="/models")


def test_the_status_document_is_json_with_no_markup_interpreted(
    client: TestClient, filled: dict[str, Any]
) -> None:
    r = client.get(f"/api/runs/{filled['runs']['hostile']}/status")
    assert r.headers["content-type"] == "application/json"
    assert json.loads(r.text)["status"] == "succeeded"

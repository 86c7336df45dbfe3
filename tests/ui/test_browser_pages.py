"""``flowkit ui`` in a real headless Chromium: the runs page, a workflow page, error pages.

The store holds real runs (``fill_store.py``); the server is ``flowkit ui`` in its own process.
Selectors follow the DOM contract of issue 12 (docs/ui.md).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from browser import every, one, wait_for
from fill_store import FilledStore
from selenium.webdriver.remote.webdriver import WebDriver
from ui_workflows import SECRET_VALUE


def test_runs_page_lists_every_run_newest_first(
    browser: WebDriver, ui_server: str, ui_store: FilledStore, screenshot: Callable[[str], Path]
) -> None:
    browser.get(ui_server + "/")
    rows = every(browser, "table#runs tbody tr.run") or [one(browser, "table#runs tbody tr.run")]
    ids = [row.get_attribute("data-run-id") for row in rows]
    assert set(ids) == set(ui_store.runs.values())
    assert ids == sorted(ids, reverse=True)  # ids begin with their start time
    assert browser.find_element("css selector", "h1").text
    assert [a.text for a in every(browser, "nav a")][:1] == ["Runs"]

    by_id = {row.get_attribute("data-run-id"): row for row in rows}
    failed = by_id[ui_store.runs["failed"]]
    assert failed.get_attribute("data-status") == "failed"
    assert failed.find_element("css selector", "span.status.status-failed").text == "failed"
    cached = by_id[ui_store.runs["cached"]]
    assert cached.find_element("css selector", ".counts").text == "1 run · 4 cached · 0 failed"
    assert (
        by_id[ui_store.runs["map"]]
        .find_element("css selector", ".counts")
        .text.startswith("1001 run")
    )
    screenshot("runs")
    assert SECRET_VALUE not in browser.page_source

    cached.find_element("css selector", "a.run-link").click()
    wait_for(browser, lambda d: d.current_url.endswith("/runs/" + ui_store.runs["cached"]))
    assert one(browser, "#run-status").text == "succeeded"


def test_runs_page_filters_by_workflow_status_and_id_prefix(
    browser: WebDriver, ui_server: str, ui_store: FilledStore
) -> None:
    browser.get(ui_server + "/")
    form = one(browser, "form#filters")
    form.find_element("css selector", "input[name=workflow]").send_keys("pipeline")
    form.submit()
    wait_for(browser, lambda d: "workflow=pipeline" in d.current_url)
    shown = {r.get_attribute("data-run-id") for r in every(browser, "tr.run")}
    assert shown == {ui_store.runs[r] for r in ("succeeded", "cached", "changed")}

    browser.get(ui_server + "/?status=failed")
    shown = {r.get_attribute("data-run-id") for r in every(browser, "tr.run")}
    assert shown == {ui_store.runs["failed"]}

    prefix = ui_store.runs["map"][:22]
    browser.get(ui_server + "/?q=" + prefix)
    shown = {r.get_attribute("data-run-id") for r in every(browser, "tr.run")}
    assert shown == {ui_store.runs["map"]}

    browser.get(ui_server + "/?workflow=no-such-workflow")
    assert not every(browser, "tr.run")
    assert one(browser, "main").text  # says nothing matched, not a blank page


def test_workflow_page_charts_its_runs_and_draws_the_graph(
    browser: WebDriver, ui_server: str, ui_store: FilledStore, screenshot: Callable[[str], Path]
) -> None:
    browser.get(ui_server + "/")
    link = one(
        browser, f'tr.run[data-run-id="{ui_store.runs["succeeded"]}"] a[href^="/workflows/"]'
    )
    assert link.text == "pipeline"
    link.click()
    wait_for(browser, lambda d: d.current_url.endswith("/workflows/pipeline"))
    points = every(browser, "svg#duration-chart .point") or [
        one(browser, "svg#duration-chart .point")
    ]
    assert {p.get_attribute("data-run-id") for p in points} == {
        ui_store.runs[r] for r in ("succeeded", "cached", "changed")
    }
    assert {p.get_attribute("data-status") for p in points} == {"succeeded"}
    nodes = every(browser, "svg#graph g.node")
    assert sorted(n.get_attribute("data-node") for n in nodes) == ["best", "load", "train"]
    assert len(every(browser, "svg#graph .edge")) == 2  # load -> train -> best
    screenshot("workflow")


@pytest.mark.parametrize(
    "path",
    [
        "/runs/20000101T000000.000000-nosuch",
        "/runs/%3Cscript%3Ewindow.__pwned%3D1%3C%2Fscript%3E",
        "/runs/{failed}/tasks/no-such-node",
    ],
)
def test_an_unknown_run_node_or_workflow_is_a_404_page_naming_it(
    browser: WebDriver, ui_server: str, ui_store: FilledStore, path: str
) -> None:
    url = ui_server + path.format(failed=ui_store.runs["failed"])
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url, timeout=10)
    assert caught.value.code == 404
    caught.value.close()
    browser.get(url)
    error = one(browser, "div.error")
    assert error.text
    assert "Traceback" not in browser.page_source
    assert "<script>window" not in browser.page_source
    assert browser.execute_script("return window.__pwned") is None
    assert every(browser, "nav") and every(browser, "h1")


def test_a_store_that_cannot_be_read_is_an_error_page(
    browser: WebDriver, tmp_path: Path, ui_server: str
) -> None:
    from browser import UIServer

    server = UIServer(str(tmp_path / "no-such-store"), tmp_path / "server.log")
    try:
        try:
            server.wait_ready()
        except RuntimeError:
            # refusing to start on a missing store is fine too, if it says why
            assert "no-such-store" in server.log.read_text()
            return
        browser.get(server.url + "/")
        assert "no-such-store" in one(browser, "div.error").text
        assert "Traceback" not in browser.page_source
    finally:
        server.stop()

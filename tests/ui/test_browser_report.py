"""``flowkit report RUN -o run.html`` opened from disk in a real headless Chromium with its
network cut: the page renders fully (graph, Gantt, task table, a task's details on a click)
and asks for nothing over the network.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser import every, go_offline, go_online, one, resources, wait_for
from fill_store import FilledStore
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from ui_workflows import FAILED_LOG_LINE, HOSTILE, SECRET_VALUE


def report(store: FilledStore, role: str, out: Path) -> Path:
    cmd = [sys.executable, "-m", "flowkit", "report", store.runs[role], "--store", store.url]
    done = subprocess.run([*cmd, "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.is_file()
    return out


@pytest.fixture
def offline(browser: WebDriver) -> Iterator[WebDriver]:
    go_offline(browser)
    try:
        yield browser
    finally:
        go_online(browser)


def no_network(driver: WebDriver) -> None:
    loaded = resources(driver)
    assert not [url for url in loaded if not url.startswith(("file:", "data:", "blob:"))]
    assert "http://" not in driver.page_source.replace("http://www.w3.org/", "")
    assert "https://" not in driver.page_source.replace("https://example.invalid/data", "")


def test_a_failed_runs_report_renders_offline_and_opens_a_task(
    offline: WebDriver, ui_store: FilledStore, tmp_path: Path, screenshot: Callable[[str], Path]
) -> None:
    path = report(ui_store, "failed", tmp_path / "run.html")
    offline.get(path.as_uri())
    assert one(offline, "#run-status").text == "failed"
    statuses = {n.get_attribute("data-node"): n.get_attribute("data-status")
                for n in every(offline, "svg#graph g.node")}  # fmt: skip
    assert statuses == {"prepare": "succeeded", "explode": "failed"}
    assert {r.get_attribute("data-node") for r in every(offline, "table#tasks tr.task")} == {
        "prepare",
        "explode",
    }
    assert every(offline, "svg#gantt rect.bar")
    rules = offline.execute_script(  # the inlined stylesheet, not a link that cannot load
        "return [...document.styleSheets].reduce((n, s) => n + s.cssRules.length, 0)"
    )
    assert rules > 10

    def log_shown(d: WebDriver) -> list[WebElement]:
        return [e for e in every(d, "pre.logs") if e.is_displayed() and FAILED_LOG_LINE in e.text]

    assert not log_shown(offline)  # a task's details wait for a click
    row = one(offline, 'table#tasks tr.task[data-node="explode"]')
    links = row.find_elements("css selector", "a.task-link")
    (links[0] if links else row).click()
    shown = wait_for(offline, log_shown, what="the failed task's log after a click")
    assert HOSTILE in shown[0].text
    assert offline.execute_script("return window.__pwned") is None
    no_network(offline)
    screenshot("report")


def test_reports_of_a_map_cards_and_a_secret_render_offline(
    offline: WebDriver, ui_store: FilledStore, tmp_path: Path
) -> None:
    path = report(ui_store, "map", tmp_path / "map.html")
    offline.get(path.as_uri())
    square = one(offline, 'svg#graph g.node[data-node="square"]')
    assert square.get_attribute("data-count") == "1000"
    no_network(offline)

    path = report(ui_store, "cards", tmp_path / "cards.html")
    offline.get(path.as_uri())
    one(offline, "#run-status")
    images = every(offline, "img")
    assert images and all(i.get_attribute("src").startswith("data:") for i in images)
    assert offline.execute_script("return window.__pwned") is None
    no_network(offline)

    path = report(ui_store, "secret", tmp_path / "secret.html")
    assert SECRET_VALUE not in path.read_text()

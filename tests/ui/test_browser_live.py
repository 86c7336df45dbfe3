"""A running run's page in a real headless Chromium updates live: the run's process (started
by ``fill_store.py``) waits for a file; once the test creates it, the page turns succeeded by
itself, without a reload.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from browser import every, one, wait_for
from fill_store import FilledStore
from selenium.webdriver.remote.webdriver import WebDriver

LIVE_TIMEOUT = 20.0  # the page polls every 2 s; the run ends within a second of the file


def test_a_running_run_turns_succeeded_without_a_reload(
    browser: WebDriver, ui_server: str, ui_store: FilledStore, screenshot: Callable[[str], Path]
) -> None:
    run_id = ui_store.runs["running"]
    browser.get(f"{ui_server}/runs/{run_id}")
    assert one(browser, "#run-status").text == "running"
    one(browser, 'svg#graph g.node[data-node="wait_for"]')
    statuses = {n.get_attribute("data-node"): n.get_attribute("data-status")
                for n in every(browser, "svg#graph g.node")}  # fmt: skip
    assert statuses["wait_for"] in {"running", "pending"}
    assert statuses["finish"] == "pending"
    browser.execute_script("window.__same_page = true")  # gone if the page reloads
    screenshot("running")

    ui_store.finish()
    wait_for(browser, lambda d: d.find_element("css selector", "#run-status").text == "succeeded",
             LIVE_TIMEOUT)  # fmt: skip
    assert browser.execute_script("return window.__same_page") is True
    wait_for(
        browser,
        lambda d: (
            {n.get_attribute("data-status") for n in every(d, "svg#graph g.node")} == {"succeeded"}
        ),
        LIVE_TIMEOUT,
    )
    screenshot("finished")

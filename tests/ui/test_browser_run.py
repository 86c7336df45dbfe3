"""``flowkit ui`` in a real headless Chromium: run pages (graph, Gantt, task table) and task
pages (inputs, outputs, logs, traceback, cards), on real runs; planted markup never runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from browser import every, one, wait_for
from fill_store import FilledStore
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from ui_workflows import FAILED_ERROR, FAILED_LOG_LINE, HOSTILE, SECRET_VALUE

import flowkit as fk


def nodes(driver: WebDriver) -> dict[str, WebElement]:
    one(driver, "svg#graph g.node")
    return {n.get_attribute("data-node") or "": n for n in every(driver, "svg#graph g.node")}


def not_pwned(driver: WebDriver) -> None:
    """Planted ``<script>`` (in logs, params, outputs, cards) showed as text and never ran."""
    assert driver.execute_script("return window.__pwned") is None
    assert "<script>window.__pwned" not in driver.page_source


def test_a_succeeded_run_shows_graph_gantt_and_tasks(
    browser: WebDriver, ui_server: str, ui_store: FilledStore, screenshot: Callable[[str], Path]
) -> None:
    browser.get(f"{ui_server}/runs/{ui_store.runs['succeeded']}")
    assert one(browser, "#run-status").text == "succeeded"
    graph = nodes(browser)
    assert sorted(graph) == ["best", "load", "train"]
    assert {n.get_attribute("data-status") for n in graph.values()} == {"succeeded"}
    assert {n.get_attribute("data-cached") for n in graph.values()} != {"true"}
    assert "map" in (graph["train"].get_attribute("class") or "")
    assert graph["train"].get_attribute("data-count") == "3"

    bars = every(browser, "svg#gantt rect.bar")
    assert sorted(b.get_attribute("data-node") for b in bars) == sorted(
        ["load", "train[0]", "train[1]", "train[2]", "best"]
    )
    run = fk.runs.get(ui_store.runs["succeeded"], store=ui_store.url)
    workers = {a.worker for t in run.tasks for a in t.attempts}
    lanes = [lane.text for lane in every(browser, "svg#gantt text.lane")]
    assert sorted(lanes) == sorted(workers)  # one lane per worker thread

    rows = every(browser, "table#tasks tbody tr.task")
    assert sorted(r.get_attribute("data-node") for r in rows) == sorted(
        ["load", "train[0]", "train[1]", "train[2]", "best"]
    )
    header = [th.text.lower() for th in every(browser, "table#tasks thead th")]
    for column in ("node", "task", "status", "attempts", "duration", "cpu", "peak rss", "cached"):
        assert column in header
    not_pwned(browser)
    screenshot("run")


def test_the_rerun_marks_the_calls_served_from_the_cache(
    browser: WebDriver, ui_server: str, ui_store: FilledStore
) -> None:
    browser.get(f"{ui_server}/runs/{ui_store.runs['cached']}")
    graph = nodes(browser)
    cached = {name: n.get_attribute("data-cached") for name, n in graph.items()}
    assert cached["load"] == "true" and cached["train"] == "true"  # every train item hit
    assert cached["best"] != "true"
    row = one(browser, 'table#tasks tr.task[data-node="load"]')
    assert "yes" in row.text.lower() or "cached" in row.text.lower()


def test_a_cached_task_that_ran_says_why_it_missed(
    browser: WebDriver, ui_server: str, ui_store: FilledStore
) -> None:
    browser.get(f"{ui_server}/runs/{ui_store.runs['changed']}")
    assert nodes(browser)["load"].get_attribute("data-cached") != "true"
    one(browser, 'tr.task[data-node="load"] a.task-link').click()
    assert "input `n` changed" in one(browser, "#miss-reason").text
    browser.get(f"{ui_server}/runs/{ui_store.runs['cached']}/tasks/load")
    one(browser, "#outputs")
    assert not every(browser, "#miss-reason")  # it hit: nothing to explain


def test_a_map_of_1000_items_is_one_node_that_expands(
    browser: WebDriver, ui_server: str, ui_store: FilledStore, screenshot: Callable[[str], Path]
) -> None:
    browser.get(f"{ui_server}/runs/{ui_store.runs['map']}")
    graph = nodes(browser)
    assert sorted(graph) == ["square", "total"]
    square = graph["square"]
    assert "map" in (square.get_attribute("class") or "")
    assert square.get_attribute("data-count") == "1000"
    assert "1000 items" in square.text.replace(",", "")
    last = 'a[href$="/tasks/square%5B999%5D"]'  # the last item's call, once shown
    assert not [a for a in every(browser, last) if a.is_displayed()]
    square.click()
    item = wait_for(
        browser,
        lambda d: [a for a in every(d, last) if a.is_displayed()],
        what="the map's items after a click on its node",
    )[0]
    screenshot("map")
    item.click()
    wait_for(browser, lambda d: d.current_url.endswith("/tasks/square%5B999%5D"))
    assert "998001" in one(browser, "#outputs .preview").text  # 999 * 999


def test_a_failed_task_shows_its_log_line_and_traceback(
    browser: WebDriver, ui_server: str, ui_store: FilledStore, screenshot: Callable[[str], Path]
) -> None:
    browser.get(f"{ui_server}/runs/{ui_store.runs['failed']}")
    assert one(browser, "#run-status").text == "failed"
    graph = nodes(browser)
    assert graph["explode"].get_attribute("data-status") == "failed"
    assert graph["prepare"].get_attribute("data-status") == "succeeded"
    not_pwned(browser)

    one(browser, 'tr.task[data-node="explode"] a.task-link').click()
    logs = one(browser, "pre.logs")
    assert FAILED_LOG_LINE in logs.text
    assert HOSTILE in logs.text  # the planted markup, shown as text
    traceback = one(browser, "pre.traceback")
    assert "Traceback (most recent call last)" in traceback.text
    assert f"ValueError: {FAILED_ERROR}" in traceback.text
    assert one(browser, "#attempts").text
    assert "note" in one(browser, "#inputs").text  # from prepare
    not_pwned(browser)
    screenshot("failed-task")

    browser.get(f"{ui_server}/runs/{ui_store.runs['failed']}/tasks/prepare")
    assert HOSTILE in one(browser, "#outputs .preview").text
    not_pwned(browser)


def test_a_task_page_shows_outputs_and_cards(
    browser: WebDriver, ui_server: str, ui_store: FilledStore, screenshot: Callable[[str], Path]
) -> None:
    browser.get(f"{ui_server}/runs/{ui_store.runs['cards']}/tasks/evaluate")
    cards = wait_for(browser, lambda d: d.find_elements("css selector", "#cards .card"))
    assert len(cards) == 3
    assert "Evaluation" in cards[0].text and HOSTILE in cards[0].text
    assert every(browser, "#cards .card strong") or every(browser, "#cards .card b")  # **held-out**
    assert "income" in cards[1].text and HOSTILE in cards[1].text
    image = cards[2].find_element("css selector", "img")
    assert wait_for(browser, lambda d: d.execute_script("return arguments[0].naturalWidth", image))
    assert HOSTILE in one(browser, "#outputs .preview").text
    not_pwned(browser)
    screenshot("task")

    browser.get(f"{ui_server}/runs/{ui_store.runs['cards']}/tasks/bulk")
    preview = one(browser, "#outputs .preview").text  # 300 KB: previewed, not shown whole
    assert preview.startswith(HOSTILE) and len(preview) < 20_000
    assert len(browser.page_source) < 100_000
    not_pwned(browser)


def test_the_load_task_previews_a_table(
    browser: WebDriver, ui_server: str, ui_store: FilledStore
) -> None:
    browser.get(f"{ui_server}/runs/{ui_store.runs['succeeded']}/tasks/load")
    preview = one(browser, "#outputs .preview")
    assert "label" in preview.text and "200" in preview.text  # a column, the row count
    not_pwned(browser)


def test_a_secret_value_appears_nowhere(
    browser: WebDriver, ui_server: str, ui_store: FilledStore
) -> None:
    run_id = ui_store.runs["secret"]
    pages = [f"/runs/{run_id}", f"/runs/{run_id}/tasks/fetch", "/", "/workflows/with_secret"]
    for page in pages:
        browser.get(ui_server + page)
        one(browser, "h1")
        assert SECRET_VALUE not in browser.page_source, page
    browser.get(f"{ui_server}/runs/{run_id}")
    params = one(browser, "main").text
    assert "token" in params and "secret" in params  # named, never its value
    browser.get(f"{ui_server}/runs/{run_id}/tasks/fetch")
    assert "***" in one(browser, "pre.logs").text

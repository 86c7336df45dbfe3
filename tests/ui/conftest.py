"""Session fixtures of the UI tests: a store filled by real runs (``ui_store``), ``flowkit ui``
serving it on a free loopback port (``ui_server``), and a headless Chromium (``browser``).

Markers (CONTRIBUTING.md), set here for the tests under ``tests/ui``: a test that uses the
server or the browser is ``services`` (``-m "not services"`` leaves it out); one that only
reads the filled store is ``slow`` (filling it runs workflows in fresh processes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser import UIServer, chrome
from fill_store import FilledStore, fill
from selenium.webdriver.remote.webdriver import WebDriver

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICE_FIXTURES = frozenset({"ui_server", "browser"})
SLOW_FIXTURES = frozenset({"ui_store"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not str(item.path).startswith(HERE + os.sep):
            continue
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SERVICE_FIXTURES:
            item.add_marker(pytest.mark.services)
        elif fixtures & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def ui_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FilledStore]:
    """A store with one real run per role of ``fill_store.ROLES`` (and one left running:
    ``ui_store.finish()`` lets it succeed; the fixture does so at the end)."""
    filled = fill(tmp_path_factory.mktemp("ui-store"))
    try:
        yield filled
    finally:
        filled.finish()


@pytest.fixture(scope="session")
def ui_server(ui_store: FilledStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of ``flowkit ui`` serving ``ui_store`` (its process stopped by PID)."""
    server = UIServer(ui_store.url, tmp_path_factory.mktemp("ui-server") / "server.log")
    try:
        server.wait_ready()
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[WebDriver]:
    """One headless Chromium for the session (Debian's binary and driver)."""
    driver = chrome()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshot(browser: WebDriver, tmp_path: Path) -> Callable[[str], Path]:
    """``screenshot("run")`` saves the browser's view as ``<tmp>/run.png``."""

    def save(name: str) -> Path:
        path = tmp_path / f"{name}.png"
        assert browser.save_screenshot(str(path)), f"no screenshot saved at {path}"
        return path

    return save

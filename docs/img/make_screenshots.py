"""Make the screenshots of docs/ui.md: fill a store with real runs, start ``flowkit ui`` on it,
and save each page as seen by a headless Chromium::

    .venv/bin/python docs/img/make_screenshots.py          # writes docs/img/ui-*.png

Uses the browser tests' helpers (``tests/ui/fill_store.py``, ``tests/ui/browser.py``): the
same runs the tests look at. Needs ``chromium`` and ``chromium-driver`` (Debian packages) and
``pip install -e ".[ui,dev]"``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests" / "ui"))

from browser import UIServer, chrome, one  # noqa: E402
from fill_store import fill  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402

WIDTH = 1280
MAX_HEIGHT = 1100
MAX_BYTES = 200_000  # keep the repository small


def shoot(driver: WebDriver, name: str, scroll_to: str | None = None) -> Path:
    """Save the page (as tall as it is, up to MAX_HEIGHT; scrolled down to the element
    ``scroll_to`` when given) as docs/img/<name>.png."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, min(max(int(height) + 120, 600), MAX_HEIGHT))
    if scroll_to is not None:
        driver.execute_script("arguments[0].scrollIntoView()", one(driver, scroll_to))
    path = OUT / f"{name}.png"
    driver.save_screenshot(str(path))
    size = path.stat().st_size
    note = "" if size <= MAX_BYTES else f"  (over {MAX_BYTES // 1000} KB)"
    print(f"{path.relative_to(ROOT)}: {size // 1000} KB{note}")
    return path


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="fk-ui-shots-") as tmp:
        filled = fill(Path(tmp))
        server = UIServer(filled.url, Path(tmp) / "server.log")
        driver = chrome()
        try:
            server.wait_ready()
            url = server.url
            driver.get(url + "/")
            one(driver, "table#runs")
            shoot(driver, "ui-runs")
            driver.get(f"{url}/runs/{filled.runs['succeeded']}")
            one(driver, "svg#graph")
            shoot(driver, "ui-run")
            driver.get(f"{url}/runs/{filled.runs['failed']}/tasks/explode")
            one(driver, "pre.traceback")
            shoot(driver, "ui-task")
            driver.get(f"{url}/runs/{filled.runs['cards']}/tasks/evaluate")
            one(driver, "#cards .card")
            shoot(driver, "ui-cards", scroll_to="#cards")
            driver.get(f"{url}/workflows/pipeline")
            one(driver, "svg#duration-chart")
            shoot(driver, "ui-workflow")
        finally:
            driver.quit()
            server.stop()
            filled.finish(timeout=10)


if __name__ == "__main__":
    main()

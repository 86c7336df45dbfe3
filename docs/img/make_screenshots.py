"""Make the screenshots of docs/ui.md: fill a store with real runs, start ``flowkit ui`` on it,
and save each page as seen by a headless Chromium::

    .venv/bin/python docs/img/make_screenshots.py          # writes docs/img/ui-*.png
    .venv/bin/python docs/img/make_screenshots.py --no-models   # without MLflow (faster)

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


def _monitor_workflow() -> object:
    import pyarrow as pa

    import flowkit as fk
    from flowkit import ml

    @fk.workflow
    def monitor(reference: pa.Table, current: pa.Table) -> ml.DriftReport:
        return ml.drift(reference, current)

    return monitor


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


def models_registry(root: Path, store_url: str) -> str:
    """A small MLflow registry on sqlite (model ``churn``: three versions, promoted and rolled
    back), and a drift run in the store its version 2 names; returns the tracking URI."""
    import pyarrow as pa

    import flowkit as fk
    from flowkit import ml
    from flowkit.ml import uris

    uri = f"sqlite:///{root / 'mlflow.db'}"
    uris.import_mlflow()
    from mlflow import MlflowClient

    for i, auc in enumerate((0.81, 0.88, 0.86), 1):
        ml.register({"weights": i}, "churn", uri, metrics={"auc": auc, "f1": 0.6 + i / 20})
    for version in (1, 2, 3):
        ml.promote("churn", version, tracking_uri=uri)
    ml.rollback("churn", tracking_uri=uri)  # production: 3 -> 2
    ml.promote("churn", 3, alias="staging", tracking_uri=uri)
    reference = pa.table({"age": list(range(200)), "plan": ["a", "b"] * 100})
    current = pa.table({"age": list(range(60, 260)), "plan": ["a", "b"] * 100})
    drift = fk.run(_monitor_workflow(), reference=reference, current=current, store=store_url)
    MlflowClient(tracking_uri=uri).set_model_version_tag("churn", "2", "flowkit.run_id", drift.id)
    return uri


def shoot_models(root: Path, store_url: str, driver: WebDriver) -> None:
    """The models pages need flowkit[ml] and an MLflow registry (made here: ~15 s)."""
    uri = models_registry(root, store_url)
    server = UIServer(store_url, root / "models-server.log", "--tracking-uri", uri)
    try:
        server.wait_ready()
        driver.get(server.url + "/models/churn")
        one(driver, "table#versions")
        shoot(driver, "ui-models")
    finally:
        server.stop()


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
            if "--no-models" not in sys.argv:
                shoot_models(Path(tmp), filled.url, driver)
        finally:
            driver.quit()
            server.stop()
            filled.finish(timeout=10)


if __name__ == "__main__":
    main()

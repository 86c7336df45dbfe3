"""A headless Chromium driven by Selenium, and the ``flowkit ui`` server it looks at.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them): no browser is
downloaded at test time. The server is ``flowkit ui`` in its own process on a free loopback
port, stopped by its PID.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SERVER_START_TIMEOUT = 60.0
WAIT = 10.0  # seconds a page gets to show what a test waits for

T = TypeVar("T")


def chrome() -> WebDriver:
    """A headless Chromium at 1400x1000 (the system's binary and driver)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:  # fail, not skip: CI must not pass without having looked at the pages
        raise RuntimeError(
            f"the UI's browser tests need {' and '.join(missing)}: "
            "apt-get install chromium chromium-driver (as .ci/run does)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def wait_for(
    driver: WebDriver, until: Callable[[WebDriver], T], timeout: float = WAIT, what: str = ""
) -> T:
    """What ``until`` returns once it is truthy (it may raise while the page is not there);
    a timeout names ``what`` was awaited and the page it was awaited on."""
    message = f"waited {timeout} s for {what or 'a condition'} on {driver.current_url}"
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(until, message)


def one(driver: WebDriver, css: str, timeout: float = WAIT) -> WebElement:
    """The first element matching ``css``, waiting for it to appear."""
    return wait_for(driver, lambda d: d.find_element("css selector", css), timeout, css)


def every(driver: WebDriver, css: str) -> list[WebElement]:
    return driver.find_elements("css selector", css)


def go_offline(driver: WebDriver) -> None:
    """Cut the browser's network (DevTools): any request the page makes now fails."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
    )


def go_online(driver: WebDriver) -> None:
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )


def resources(driver: WebDriver) -> list[str]:
    """URLs of every resource the page loaded (scripts, styles, images, fetches)."""
    names: list[str] = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    return names


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class UIServer:
    """``flowkit ui --store STORE --port PORT`` in its own process (ours: stopped by PID)."""

    def __init__(self, store: str, log: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [sys.executable, "-m", "flowkit", "ui", "--store", store, "--port", str(self.port)]
        with log.open("wb") as out:
            self.proc = subprocess.Popen([*cmd, *extra], stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        """Return once the server answers; fail with the server's log if it never does."""
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"flowkit ui exited with {self.proc.returncode}:\n{self.log.read_text()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/", timeout=5):
                    return
            except urllib.error.HTTPError as error:  # it answered (an error page is an answer)
                error.close()
                return
            except OSError:  # not listening yet
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"flowkit ui did not answer in {SERVER_START_TIMEOUT} s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

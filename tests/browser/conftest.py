"""The web client in a real headless Chromium (Debian's `chromium` and `chromium-driver` packages),
driven by Selenium, against a real `posereel up` on a free port.

Selenium is always given the chromedriver path, so Selenium Manager never tries to download one.
Screenshots, the server's log and, on failure, the browser console go to $POSEREEL_TEST_ARTIFACTS
(default test-artifacts/ in the repository).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import wait_until

REPO = Path(__file__).resolve().parents[2]
STACK_START_TIMEOUT_S = 180
MULTIPART_THRESHOLD_BYTES = 1024**2
PAGE_URL = re.compile(r"(http://127\.0\.0\.1:\d+)/#key=(\S+)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("POSEREEL_TEST_ARTIFACTS") or REPO / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Served:
    """A running `posereel up`: its origin and the API key its page URL carries."""

    origin: str
    key: str

    @property
    def page_url(self) -> str:
        return f"{self.origin}/#key={self.key}"

    def api(self, method: str, path: str) -> tuple[int, Any]:
        """Calls the API as the page does, with the same key: (status, JSON body or None)."""
        request = urllib.request.Request(self.origin + path, method=method, headers={"x-api-key": self.key})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read()
                return response.status, json.loads(body) if body else None
        except urllib.error.HTTPError as exc:
            body = exc.read()
            return exc.code, json.loads(body) if body else None


def _health(origin: str) -> bool:
    try:
        with urllib.request.urlopen(f"{origin}/health", timeout=5) as response:
            return response.status == 200 and json.loads(response.read()).get("status") == "ok"
    except (OSError, ValueError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # `posereel up` ends its workers and discards its state
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def served(models_dir: Path, artifacts_dir: Path) -> Iterator[Served]:
    """`posereel up` on a free port with a known key, stopped (never left running) at the end."""
    key = secrets.token_urlsafe(24)
    log_path = artifacts_dir / "posereel-up.log"
    command = [sys.executable, "-m", "posereel_local.cli", "up", "--port", "0", "--aws-port", "0"]
    command += ["--model-dir", str(models_dir)]
    env = {
        **os.environ,
        "POSEREEL_LOCAL_API_KEY": key,
        # Files above 1 MiB (the shared clips) go up as multipart uploads, smaller ones (the
        # rejected text file) with the form POST: the page's two upload paths both run.
        "POSEREEL_MULTIPART_THRESHOLD_BYTES": str(MULTIPART_THRESHOLD_BYTES),
        # The smallest parts S3 takes, so that a test file of a few MiB has several.
        "POSEREEL_MULTIPART_PART_BYTES": str(5 * 1024**2),
        "PYTHONUNBUFFERED": "1",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:

        def page_url() -> re.Match[str] | None:
            if process.poll() is not None:
                pytest.fail(f"posereel up exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            return PAGE_URL.search(log_path.read_text(errors="replace"))

        found = wait_until(
            page_url, what="posereel up to print its page URL", timeout_s=STACK_START_TIMEOUT_S, every_s=0.2
        )
        assert found.group(2) == key, "posereel up must use POSEREEL_LOCAL_API_KEY"
        origin = found.group(1)
        wait_until(lambda: _health(origin), what="GET /health", timeout_s=60, every_s=0.2)
        yield Served(origin=origin, key=key)
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no usable sandbox
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: Any, served: Served, artifacts_dir: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The browser on a fresh upload page, opened with the key in the fragment as `posereel up`
    prints it. A failing test leaves a screenshot and the console log behind."""
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.get("about:blank")
    browser.get(served.page_url)
    wait_until(
        lambda: browser.execute_script("return document.body.dataset.ready === 'true'"),
        what="the page to start",
        timeout_s=30,
    )
    yield browser
    call = getattr(request.node, "report_call", None)
    if call is not None and call.failed:
        name = request.node.name
        save_screenshot(browser, artifacts_dir / f"FAILED-{name}.png")
        console = "\n".join(json.dumps(entry) for entry in browser.get_log("browser"))
        (artifacts_dir / f"FAILED-{name}.console.log").write_text(console)


@pytest.fixture
def screenshot(browser: Any, artifacts_dir: Path) -> Callable[[str], Path]:
    """screenshot("upload") saves the whole page, not only the viewport, as upload.png."""

    def save(name: str) -> Path:
        return save_screenshot(browser, artifacts_dir / f"{name}.png")

    return save


def save_screenshot(driver: Any, path: Path) -> Path:
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path

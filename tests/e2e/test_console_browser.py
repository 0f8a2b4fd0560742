"""The web console of `snaprelay serve` in a real browser (SPEC 6.6): headless Chromium driven
through its WebDriver (chromedriver, spoken to over HTTP with the standard library). The
console signs in with the token, shows the policy, and a click on "Run now" starts a session
whose page shows it ending in Success. Screenshots go to target/console-screenshots/.

Chromium and chromedriver are installed by scripts/install-test-deps (Debian's chromium and
chromium-driver)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from base64 import b64decode
from pathlib import Path
from typing import Any

import pytest

from estate import REPO, Estate
from test_restore import ec2_estate
from test_serve import TOKEN, free_port, start

SHOTS = REPO / "target" / "console-screenshots"


class Browser:
    """One WebDriver session of headless Chromium."""

    def __init__(self) -> None:
        self.port = free_port()
        self.driver = subprocess.Popen(
            [shutil.which("chromedriver") or "chromedriver", f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(100):
            try:
                self.call("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": shutil.which("chromium") or "chromium",
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"],
                    },
                }
            }
        }
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=60) as r:
            value = json.loads(r.read().decode())
        return value.get("value", value) if path != "/session" else value["value"]

    def do(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.call(method, f"/session/{self.session}{path}", body)

    def go(self, url: str) -> None:
        self.do("POST", "/url", {"url": url})

    def find(self, css: str) -> str:
        found = self.do("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(found.values()))

    def text(self) -> str:
        return self.do("GET", f"/element/{self.find('body')}/text")

    def url(self) -> str:
        return self.do("GET", "/url")

    def wait_text(self, wanted: str, seconds: float = 20) -> str:
        """The page's text once it shows `wanted`: a click that navigates returns before the
        new page is there (its old elements go stale meanwhile)."""
        deadline = time.monotonic() + seconds
        page = ""
        while time.monotonic() < deadline:
            try:
                page = self.text()
                if wanted in page:
                    return page
            except urllib.error.HTTPError:
                pass  # a stale element of the page being left
            time.sleep(0.1)
        raise AssertionError(f"{wanted!r} never showed; the page reads:\n{page}")

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        (SHOTS / f"{name}.png").write_bytes(b64decode(self.do("GET", "/screenshot")))

    def close(self) -> None:
        try:
            self.call("DELETE", f"/session/{self.session}")
        finally:
            self.driver.terminate()
            self.driver.wait(timeout=10)


@pytest.mark.skipif(not shutil.which("chromium") or not shutil.which("chromedriver"),
                    reason="Chromium is installed by scripts/install-test-deps")
def test_the_console_in_a_browser_signs_in_shows_the_policy_and_runs_it(estate: Estate, tmp_path: Path) -> None:
    _, policy, _ = ec2_estate(estate)
    proc, base = start(estate, tmp_path, 'schedule = "0 3 * * *"\n' + policy)
    browser = Browser()
    try:
        browser.go(f"{base}/")
        page = browser.text()
        assert "restore-ec2" in page and "0 3 * * *" in page, page
        assert "Run now" not in page, "the forms need signing in"
        browser.shot("1-policies-signed-out")

        browser.go(f"{base}/console/login")
        token_field = browser.find("#token")
        browser.do("POST", f"/element/{token_field}/value", {"text": TOKEN})
        browser.do("POST", f"/element/{browser.find('main form button')}/click")
        page = browser.wait_text("Run now")
        assert "Drill now" in page, page
        browser.shot("2-policies-signed-in")

        run_now = browser.find('button[aria-label="Run restore-ec2 now"]')
        browser.do("POST", f"/element/{run_now}/click")
        browser.wait_text("Steps")
        assert "/console/sessions/" in browser.url()
        for _ in range(100):
            page = browser.wait_text("Steps")
            if "Success" in page:
                break
            time.sleep(0.2)
            browser.go(browser.url())
        assert "Success" in page, page
        browser.shot("3-session")

        browser.go(f"{base}/console/restore-points")
        browser.wait_text("replica")
        browser.shot("4-restore-points")
    finally:
        browser.close()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert len(list(SHOTS.glob("*.png"))) >= 4

"""Real-browser fixtures: `mixscope serve` on a free localhost port + Debian's chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).parent / "screenshots"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(demo_workspace, tmp_path_factory):
    """The app served over a private copy of the demo workspace: browser tests queue jobs
    (an upload's ingest) that must not change the workspace other tests read."""
    copy = tmp_path_factory.mktemp("served") / "ws"
    shutil.copytree(demo_workspace.path, copy)
    yield from serve(copy)


def serve(workspace_path, extra_env=None):
    """Start `mixscope serve` for a workspace; yields the URL, stops the server after."""
    port = _free_port()
    env = dict(os.environ, **(extra_env or {}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboard.cli", "serve", "--workspace", str(workspace_path),
         "--port", str(port), "--headless"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
        if proc.poll() is not None:
            raise RuntimeError(f"mixscope serve exited: {proc.stdout.read()}")
    else:
        proc.kill()
        raise RuntimeError("mixscope serve did not become healthy in 90 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        msg = "Debian's chromium is not installed (apt-get install chromium); CI installs it"
        if os.environ.get("CI"):
            pytest.fail(msg)  # in CI a missing browser is a broken setup, not a skip
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    yield pg
    ctx.close()


# ---------------------------------------------------------------------- page helpers
def wait_ready(page, timeout=60_000):
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout
    )
    page.wait_for_timeout(1500)


def wait_count(page, selector, n, timeout=60_000):
    """Wait until at least `n` elements match `selector` (drawn after the totals, maybe)."""
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length >= n",
        arg=[selector, n],
        timeout=timeout,
    )
    return page.locator(selector).count()


def wait_metric(page, text, timeout=60_000):
    """Wait until some metric shows `text` (reruns may still be settling under load)."""
    page.wait_for_function(
        """(want) => [...document.querySelectorAll('[data-testid="stMetricValue"]')]
               .some(e => e.innerText.trim() === want)""",
        arg=text,
        timeout=timeout,
    )


def no_exception(page):
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()
    assert page.get_by_text("Page not found").count() == 0
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.all_inner_texts()


def shoot(page, name):
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

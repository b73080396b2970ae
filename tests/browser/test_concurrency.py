"""Several simultaneous browser sessions doing different things: no errors, no leaks."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from dashboard.loadtest import build_tasks, run_load
from tests.browser.conftest import CHROMIUM, FLAGS

pytestmark = pytest.mark.browser


def test_six_sessions_each_see_their_own_answer(server, browser, demo_workspace):
    tasks = build_tasks(demo_workspace.cursor(), 6)
    # in its own thread: the sync Playwright fixture owns this thread's event loop
    with ThreadPoolExecutor(1) as pool:
        res = pool.submit(
            asyncio.run, run_load(server, tasks, rounds=1, chromium=CHROMIUM, flags=FLAGS)
        ).result()
    assert res.errors == []
    assert len(res.latencies_s) == 6

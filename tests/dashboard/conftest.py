"""AppTest helpers: run the real app over the session demo workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture
def app(demo_workspace, monkeypatch):
    monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(demo_workspace.path))

    def make(page: str | None = None, **query) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=120)
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        if page:
            at.switch_page(f"app_pages/{page}.py")
            at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return make

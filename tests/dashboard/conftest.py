"""AppTest helpers: run the real app over the session demo workspace."""

from __future__ import annotations

import sys

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.cli import main
from tests.conftest import ROOT

APP = str(ROOT / "dashboard" / "app.py")


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


# ---------------------------------------------------------------------- CLI helpers
def run_main(argv, monkeypatch, capsys):
    """Run the CLI's entry point in-process; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["mixscope", *argv])
    with pytest.raises(SystemExit) as info:
        main()  # anything but SystemExit (an uncaught exception) fails the test here
    out, err = capsys.readouterr()
    return info.value.code, out, err


def assert_one_line_error(code, err, *, wanted=()):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for w in wanted:
        assert w in lines[0], (w, lines[0])


# ---------------------------------------------------------------------- page helpers
def qp(at, key) -> str | None:
    if key not in at.query_params:
        return None
    value = at.query_params[key]
    return value if isinstance(value, str) else value[0]


def open_mixtures(ws_path, monkeypatch, **query) -> AppTest:
    monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(ws_path))
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("app_pages/mixtures.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# ---------------------------------------------------------------------- sign-in settings
AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-long-random-cookie-secret",
    "client_id": "mixscope",
    "client_secret": "s3cr3t",
    "server_metadata_url": "https://idp.example.org/.well-known/openid-configuration",
}
ROLES = """
[users]
"Alice@Example.org" = "editor"
"*@example.org" = "viewer"
"""

"""Access control: the login gate and roles."""

from __future__ import annotations

import os

import pytest

from analytics.auth import load_secrets
from analytics.errors import MixscopeError

VIEWER = "viewer-token-0123456789"
EDITOR = "editor-token-9876543210"


def test_gate_blocks_until_a_valid_token(app, monkeypatch):
    monkeypatch.setenv("MIXSCOPE_VIEWER_TOKEN", VIEWER)
    monkeypatch.setenv("MIXSCOPE_EDITOR_TOKEN", EDITOR)
    at = app()
    assert not at.metric  # nothing of the corpus is shown
    at.text_input(key="login_token").input("wrong-token-wrong-token")
    at.button[0].click().run()
    assert "not valid" in at.error[0].value and not at.metric
    at.text_input(key="login_token").input(VIEWER)
    at.button[0].click().run()
    assert at.session_state["role"] == "viewer"
    assert any(m.label == "Documents" for m in at.metric)


def test_secrets_file_rules(tmp_path, monkeypatch):
    for var in ("MIXSCOPE_VIEWER_TOKEN", "MIXSCOPE_EDITOR_TOKEN", "MIXSCOPE_SECRETS_FILE"):
        monkeypatch.delenv(var, raising=False)
    f = tmp_path / "secrets.toml"
    f.write_text(f'viewer = "{VIEWER}"\neditor = "{EDITOR}"\n')
    os.chmod(f, 0o644)
    with pytest.raises(MixscopeError, match="readable by others"):
        load_secrets(f)
    os.chmod(f, 0o600)
    s = load_secrets(f)
    assert s.role_for(VIEWER) == "viewer" and s.role_for(EDITOR) == "editor"
    assert s.role_for("") is None and s.role_for(VIEWER + "x") is None
    f.write_text('admin = "x"\n')
    with pytest.raises(MixscopeError, match="unknown role"):
        load_secrets(f)
    f.write_text('viewer = "short"\n')
    with pytest.raises(MixscopeError, match="fewer than 16"):
        load_secrets(f)
    assert not load_secrets(None).enabled

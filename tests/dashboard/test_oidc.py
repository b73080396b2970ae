"""Per-user sign-in through an identity provider (st.login, OpenID Connect), offline:
the [auth] configuration is parsed, and roles come from the signed-in user's e-mail
through the roles file's [users] table (AppTest seeds `st.user` the way a real
provider's sign-in would)."""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from analytics.auth import Secrets, find_oidc, load_secrets, parse_oidc
from analytics.errors import MixscopeError
from tests.dashboard.conftest import APP, AUTH, ROLES


def test_auth_section_parsing():
    assert parse_oidc(None) is None and parse_oidc({}) is None
    assert parse_oidc(AUTH).providers == (None,)
    named = {
        "redirect_uri": AUTH["redirect_uri"],
        "cookie_secret": AUTH["cookie_secret"],
        "google": {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")},
        "okta_team": {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")},
    }
    cfg = parse_oidc(named)
    assert cfg.providers == ("google", "okta_team") and cfg.label("okta_team") == "Okta Team"
    with pytest.raises(MixscopeError, match=r"\[auth\]: cookie_secret is missing"):
        parse_oidc({k: v for k, v in AUTH.items() if k != "cookie_secret"})
    with pytest.raises(MixscopeError, match=r"\[auth\]: client_secret missing"):
        parse_oidc({k: v for k, v in AUTH.items() if k != "client_secret"})
    broken = dict(named, google={"client_id": "x"})
    with pytest.raises(MixscopeError, match=r"\[auth.google\]: client_secret, server_metadata"):
        parse_oidc(broken)
    with pytest.raises(MixscopeError, match="no provider"):
        parse_oidc({"redirect_uri": "x", "cookie_secret": "y"})


def test_find_oidc_reads_the_first_secrets_file_with_auth(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('other = "x"\n')
    b.write_text("[auth]\n" + "".join(f'{k} = "{v}"\n' for k, v in AUTH.items()))
    found = find_oidc([tmp_path / "missing.toml", a, b])
    assert found and found[0] == b and found[1].providers == (None,)
    assert find_oidc([a]) is None


def test_roles_from_email(tmp_path, monkeypatch):
    for var in ("MIXSCOPE_VIEWER_TOKEN", "MIXSCOPE_EDITOR_TOKEN", "MIXSCOPE_SECRETS_FILE"):
        monkeypatch.delenv(var, raising=False)
    f = tmp_path / "roles.toml"
    f.write_text(ROLES)
    os.chmod(f, 0o600)
    s = load_secrets(f)
    assert not s.enabled  # no token: token sign-in stays off
    assert s.role_for_user("alice@example.org") == "editor"  # exact (case-insensitive)
    assert s.role_for_user("ALICE@example.ORG") == "editor"
    assert s.role_for_user("bob@example.org") == "viewer"  # by domain
    assert s.role_for_user("bob@example.org", verified=False) is None  # unverified e-mail
    assert s.role_for_user("eve@elsewhere.net") is None
    assert s.role_for_user("alice@example.org@evil.net") is None
    assert s.role_for_user("") is None and s.role_for_user(None) is None
    assert Secrets({}, {"*": "viewer"}).role_for_user("anyone@any.where") == "viewer"
    f.write_text('[users]\n"a@b.org" = "admin"\n')
    with pytest.raises(MixscopeError, match=r"\[users\] 'a@b.org' = 'admin': expected the role"):
        load_secrets(f)
    f.write_text('[users]\n"not-an-email" = "viewer"\n')
    with pytest.raises(MixscopeError, match="expected an e-mail address"):
        load_secrets(f)


@pytest.fixture
def oidc_app(demo_workspace, tmp_path, monkeypatch):
    for var in ("MIXSCOPE_VIEWER_TOKEN", "MIXSCOPE_EDITOR_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    f = tmp_path / "roles.toml"
    f.write_text(ROLES)
    os.chmod(f, 0o600)
    monkeypatch.setenv("MIXSCOPE_SECRETS_FILE", str(f))
    monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(demo_workspace.path))

    def make(user: dict) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=120)
        at.secrets["auth"] = AUTH
        at.user = user
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return make


def test_signed_out_user_sees_only_the_provider_button(oidc_app):
    at = oidc_app({"is_logged_in": False})
    labels = [b.label for b in at.button]
    assert "Sign in with your identity provider" in labels
    assert not at.metric and "role" not in at.session_state  # nothing of the corpus


def test_editor_by_address_and_viewer_by_domain(oidc_app):
    at = oidc_app({"is_logged_in": True, "email": "alice@example.org", "name": "Alice"})
    assert at.session_state["role"] == "editor"
    assert at.session_state["user"] == "alice@example.org"
    assert any(m.label == "Documents" for m in at.metric)
    at = oidc_app({"is_logged_in": True, "email": "bob@example.org"})
    assert at.session_state["role"] == "viewer"
    at.switch_page("app_pages/add_data.py").run()
    assert any("Viewers cannot add data" in i.value for i in at.info)


def test_identity_without_a_role_sees_nothing(oidc_app):
    at = oidc_app({"is_logged_in": True, "email": "eve@elsewhere.net"})
    assert "has no role on this server" in at.error[0].value
    assert not at.metric and "role" not in at.session_state
    at = oidc_app({"is_logged_in": True, "email": "bob@example.org", "email_verified": False})
    assert not at.metric and "role" not in at.session_state


def test_signing_out_drops_the_role(oidc_app):
    at = oidc_app({"is_logged_in": True, "email": "alice@example.org"})
    assert at.session_state["role"] == "editor"
    at.user = {"is_logged_in": False}
    at.run()
    assert "role" not in at.session_state and not at.metric


def test_serve_refuses_provider_sign_in_without_users_table(tmp_path, monkeypatch, capsys):
    from tests.dashboard.conftest import assert_one_line_error, run_main

    home = tmp_path / "home"
    (home / ".streamlit").mkdir(parents=True)
    (home / ".streamlit" / "secrets.toml").write_text(
        "[auth]\n" + "".join(f'{k} = "{v}"\n' for k, v in AUTH.items())
    )
    monkeypatch.setenv("HOME", str(home))
    for var in ("MIXSCOPE_VIEWER_TOKEN", "MIXSCOPE_EDITOR_TOKEN", "MIXSCOPE_SECRETS_FILE"):
        monkeypatch.delenv(var, raising=False)
    from analytics.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.initialise()
    code, _out, err = run_main(
        ["serve", "--workspace", str(ws.path), "--host", "0.0.0.0"], monkeypatch, capsys
    )
    assert_one_line_error(code, err, wanted=("[auth] configures sign-in", "[users]"))

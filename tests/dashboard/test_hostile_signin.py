"""Before sign-in: weak tokens are refused, guessing is paced per client across sessions,
and a deep link survives the sign-in form."""

from __future__ import annotations

import time

import pytest

from analytics.auth import MIN_TOKEN_LENGTH, SignInLimiter, load_secrets
from analytics.errors import MixscopeError

VIEWER = "viewer-token-0123456789"
EDITOR = "editor-token-9876543210"


@pytest.fixture
def no_env(monkeypatch):
    for var in ("MIXSCOPE_VIEWER_TOKEN", "MIXSCOPE_EDITOR_TOKEN", "MIXSCOPE_SECRETS_FILE"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    "token, wanted",
    [
        (" " * 12, "blanks"),
        (" " * 40, "blanks"),
        ("\t" * 20, "blanks"),
        ("  padded-token-0123456789  ", "blanks"),
        ("a" * (MIN_TOKEN_LENGTH - 1), "fewer than 16"),
        ("a b c d e f g h i j k l m n o", "fewer than 16"),  # 15 non-blank characters
    ],
)
def test_weak_tokens_are_refused(no_env, token, wanted):
    no_env.setenv("MIXSCOPE_VIEWER_TOKEN", token)
    with pytest.raises(MixscopeError, match=wanted):
        load_secrets(None)


def test_a_long_token_is_accepted(no_env):
    no_env.setenv("MIXSCOPE_VIEWER_TOKEN", "x" * MIN_TOKEN_LENGTH)
    assert load_secrets(None).role_for("x" * MIN_TOKEN_LENGTH) == "viewer"


def test_limiter_paces_a_client_not_a_session():
    lim = SignInLimiter(interval=1.0, max_wait=5.0)
    waits = [lim.reserve("ip:10.0.0.1") for _ in range(5)]  # five sessions of one client
    assert waits[0] == 0 and waits[1] == pytest.approx(1.0, abs=0.05)
    assert waits[4] == pytest.approx(4.0, abs=0.05)
    assert lim.reserve("ip:10.0.0.2") == 0  # another client is not slowed down
    assert [lim.reserve("ip:10.0.0.1") for _ in range(3)][-1] is None  # past max_wait: refused
    assert lim.reserve(None) == 0 and lim.reserve(None) > 0.9  # no address: one global key


def test_sessions_of_one_client_share_the_budget(app, monkeypatch):
    """Attempts booked by other sessions of the same client delay (then refuse) this one."""
    monkeypatch.setenv("MIXSCOPE_VIEWER_TOKEN", VIEWER)
    monkeypatch.setenv("MIXSCOPE_EDITOR_TOKEN", EDITOR)
    from dashboard.components import auth

    lim = SignInLimiter(interval=1.0, max_wait=2.5)
    monkeypatch.setattr(auth, "limiter", lambda: lim)
    key = "ip:10.9.8.7"  # one client, whichever session it signs in from
    monkeypatch.setattr(auth, "client_key", lambda: key)
    at = app()
    for _ in range(2):  # two attempts in flight from other sessions
        lim.reserve(key)
    t0 = time.monotonic()
    at.text_input(key="login_token").input(VIEWER)  # even the right token waits its turn
    at.button[0].click().run()
    assert time.monotonic() - t0 >= 1.9 and at.session_state["role"] == "viewer"
    other = app()
    for _ in range(3):
        lim.reserve(key)
    t0 = time.monotonic()
    other.text_input(key="login_token").input(EDITOR)
    other.button[0].click().run()
    assert time.monotonic() - t0 < 1.0  # refused at once, no thread held
    assert any("Too many" in e.value for e in other.error) and "role" not in other.session_state


def test_deep_link_survives_sign_in(app, monkeypatch):
    monkeypatch.setenv("MIXSCOPE_VIEWER_TOKEN", VIEWER)
    monkeypatch.setenv("MIXSCOPE_EDITOR_TOKEN", EDITOR)
    from dashboard.components import auth

    monkeypatch.setattr(auth, "_requested_page", lambda: "explore")
    at = app(src="austen")
    assert not at.metric  # the sign-in form only
    at.text_input(key="login_token").input(VIEWER)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["role"] == "viewer"
    assert at.query_params.get("src") in ("austen", ["austen"])
    assert any(t.value == "Explore" for t in at.title), [t.value for t in at.title]

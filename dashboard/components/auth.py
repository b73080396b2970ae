"""The login gate: with secrets configured, nothing renders until a valid token is given."""

from __future__ import annotations

import os
import time

import streamlit as st

from analytics.auth import SECRETS_ENV, load_secrets


@st.cache_resource(show_spinner=False)
def _load(file: str | None, viewer: str | None, editor: str | None):
    return load_secrets(file)


def _secrets():
    env = os.environ
    return _load(
        env.get(SECRETS_ENV), env.get("MIXSCOPE_VIEWER_TOKEN"), env.get("MIXSCOPE_EDITOR_TOKEN")
    )


def gate() -> str:
    """Returns the session's role ("editor" when no secret is configured: local use)."""
    secrets = _secrets()
    if not secrets.enabled:
        return "editor"
    if role := st.session_state.get("role"):
        return role
    st.title("mixscope")
    with st.form("login", clear_on_submit=True):
        token = st.text_input("Access token", type="password", key="login_token")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        role = secrets.role_for(token)
        if role:
            st.session_state["role"] = role
            st.rerun()
        time.sleep(1.0)  # slow down guessing
        st.error("That token is not valid.")
    st.stop()


def can_edit() -> bool:
    return st.session_state.get("role", "editor" if not _secrets().enabled else None) == "editor"


def require_editor(action: str) -> bool:
    """Show a note and return False when a viewer tries an editor action."""
    if can_edit():
        return True
    st.info(f"Viewers cannot {action}; sign in with an editor token.")
    return False

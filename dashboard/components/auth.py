"""The login gate: with secrets configured, nothing renders until a valid token is given."""

from __future__ import annotations

import os
import time

import streamlit as st

from analytics.auth import SECRETS_ENV, UPLOADS, SignInLimiter, load_secrets


@st.cache_resource(show_spinner=False)
def _load(file: str | None, viewer: str | None, editor: str | None):
    return load_secrets(file)


def _secrets():
    env = os.environ
    return _load(
        env.get(SECRETS_ENV), env.get("MIXSCOPE_VIEWER_TOKEN"), env.get("MIXSCOPE_EDITOR_TOKEN")
    )


@st.cache_resource(show_spinner=False)
def limiter() -> SignInLimiter:
    """One limiter for the whole server: attempts are paced per client, not per session."""
    return SignInLimiter(interval=1.0)


def client_key() -> str:
    """The client's address as the server sees it (a proxy's own address when behind one,
    so every client behind it shares one budget), else one global key."""
    try:
        ip = st.context.ip_address
    except Exception:  # no request context (tests, bare mode)
        ip = None
    return f"ip:{ip}" if isinstance(ip, str) and ip else "global"


def _requested_page() -> str | None:
    """The page the URL asked for (`/explore` -> "explore"), before sign-in."""
    try:
        url = st.context.url
    except Exception:
        return None
    if not url:
        return None
    from urllib.parse import urlparse

    stem = urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]
    return stem or None


def session_id() -> str | None:
    """Streamlit's id of this browser session (what its upload requests carry)."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
    except Exception:
        return None
    return getattr(ctx, "session_id", None)


def _signed_in(role: str) -> str:
    """Tell the server-side upload policy this session's role (see dashboard/upload_gate)."""
    sid = session_id()
    if sid:
        UPLOADS.register(sid, role)
    return role


def gate() -> str:
    """Returns the session's role ("editor" when no secret is configured: local use).

    The page and query parameters a deep link asked for are remembered before the sign-in
    form and restored after it (see `restore_deep_link`)."""
    secrets = _secrets()
    if not secrets.enabled:
        return _signed_in("editor")
    if role := st.session_state.get("role"):
        return _signed_in(role)
    if "login_next" not in st.session_state:
        st.session_state["login_next"] = {
            "page": _requested_page(),
            "params": {k: st.query_params.get_all(k) for k in st.query_params},
        }
    st.title("mixscope")
    with st.form("login", clear_on_submit=True):
        token = st.text_input("Access token", type="password", key="login_token")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        wait = limiter().reserve(client_key())
        if wait is None:
            st.error("Too many sign-in attempts from this address; wait a minute and retry.")
            st.stop()
        time.sleep(wait)  # one attempt per second per client, across all its sessions
        role = secrets.role_for(token)
        if role:
            st.session_state["role"] = role
            st.rerun()
        time.sleep(1.0)  # and each wrong token costs its session a second more
        st.error("That token is not valid.")
    st.stop()


def restore_deep_link(pages: dict[str, str]) -> None:
    """After sign-in, go to the page and query parameters the link asked for (once).
    `pages` maps a URL path ("explore") to its page file ("app_pages/explore.py")."""
    nxt = st.session_state.pop("login_next", None)
    if not nxt or not st.session_state.get("role"):
        return
    params = {k: (v if len(v) > 1 else v[0]) for k, v in (nxt.get("params") or {}).items() if v}
    page = nxt.get("page")
    if page in pages:
        st.switch_page(pages[page], query_params=params)  # switching alone clears them
    for key, value in params.items():
        if key not in st.query_params:
            st.query_params[key] = value


def can_edit() -> bool:
    return st.session_state.get("role", "editor" if not _secrets().enabled else None) == "editor"


def require_editor(action: str) -> bool:
    """Show a note and return False when a viewer tries an editor action."""
    if can_edit():
        return True
    st.info(f"Viewers cannot {action}; sign in with an editor token.")
    return False

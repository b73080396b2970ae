"""The login gate: with secrets configured, nothing renders until a valid token is given."""

from __future__ import annotations

import os
import time

import streamlit as st

from analytics.auth import SECRETS_ENV, UPLOADS, SignInLimiter, load_secrets, parse_oidc
from dashboard import state


def _load(file: str | None, viewer: str | None, editor: str | None):
    return load_secrets(file)


def _secrets():
    env = os.environ
    return state.shared(
        _load,
        env.get(SECRETS_ENV),
        env.get("MIXSCOPE_VIEWER_TOKEN"),
        env.get("MIXSCOPE_EDITOR_TOKEN"),
    )


def _new_limiter() -> SignInLimiter:
    return SignInLimiter(interval=1.0)


def limiter() -> SignInLimiter:
    """One limiter for the whole server: attempts are paced per client, not per session."""
    return state.shared(_new_limiter)


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


def oidc():
    """The identity providers of Streamlit's secrets.toml [auth] section, or None."""
    try:
        auth = st.secrets.get("auth") if "auth" in st.secrets else None
    except Exception:  # no secrets file at all
        return None
    return parse_oidc(auth.to_dict() if hasattr(auth, "to_dict") else dict(auth or {}))


def _oidc_role(secrets) -> str | None:
    """This session's role from its identity-provider sign-in (None: not signed in that
    way); an identity without a role is told so and stopped here."""
    try:
        user = st.user
        logged_in = bool(user.get("is_logged_in"))
    except Exception:
        return None
    if not logged_in:
        return None
    email = user.get("email")
    role = secrets.role_for_user(email, verified=user.get("email_verified"))
    if role is None:
        st.title("mixscope")
        from dashboard.components.text import show_error

        show_error(
            f"{email or 'This account'} has no role on this server; ask its admin to add the "
            "address (or its domain) to the [users] table of the roles file."
        )
        st.button("Sign out", on_click=st.logout, key="oidc_logout_norole")
        st.stop()
    st.session_state["user"] = str(email)
    return role


def gate() -> str:
    """Returns the session's role ("editor" when no secret is configured: local use).

    With an identity provider configured (`[auth]` in secrets.toml), the role comes from the
    signed-in user's e-mail through the roles file's [users] table, checked on every run
    (signing out at the provider's side or with st.logout ends it); the token form stays
    for the roles that have a token. The page and query parameters a deep link asked for
    are remembered before the sign-in form and restored after it (see `restore_deep_link`)."""
    secrets = _secrets()
    providers = oidc()
    if not secrets.enabled and providers is None:
        return _signed_in("editor")
    if providers is not None:
        role = _oidc_role(secrets)
        if role:
            st.session_state["role"] = role
            st.session_state["auth_via"] = "oidc"
            return _signed_in(role)
        if st.session_state.get("auth_via") == "oidc":  # signed out since
            for key in ("role", "auth_via", "user"):
                st.session_state.pop(key, None)
            sid = session_id()
            if sid:
                UPLOADS.forget(sid)
    if role := st.session_state.get("role"):
        return _signed_in(role)
    if "login_next" not in st.session_state:
        st.session_state["login_next"] = {
            "page": _requested_page(),
            "params": {k: st.query_params.get_all(k) for k in st.query_params},
        }
    st.title("mixscope")
    for provider in providers.providers if providers else ():
        label = f"Sign in with {providers.label(provider)}"
        if st.button(label, key=f"oidc_login_{provider or 'default'}", type="primary"):
            st.login(provider) if provider else st.login()
    if not secrets.enabled:
        st.stop()
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
    local = not _secrets().enabled and oidc() is None
    return st.session_state.get("role", "editor" if local else None) == "editor"


def who() -> str | None:
    """The signed-in person's e-mail (identity-provider sign-in), else None."""
    return st.session_state.get("user")


def acting_user() -> str | None:
    """Who this session acts for, as recorded on jobs (`submitted_by`) and saved mixtures
    (`saved_by`): the user a reverse proxy names (X-Forwarded-User), else the
    identity-provider e-mail, else the role of a token sign-in ("editor"; shared tokens name
    no person), else None (a local dashboard without sign-in)."""
    try:
        user = st.context.headers.get("X-Forwarded-User")
    except Exception:  # no request context (tests, bare mode)
        user = None
    return user or who() or st.session_state.get("role")


def require_editor(action: str) -> bool:
    """Show a note and return False when a viewer tries an editor action."""
    if can_edit():
        return True
    st.info(f"Viewers cannot {action}; sign in with an editor token.")
    return False

"""Shared-secret access control with two roles.

Secrets come from a file (`--secrets FILE` / `$MIXSCOPE_SECRETS_FILE`) or from environment
variables (`$MIXSCOPE_VIEWER_TOKEN`, `$MIXSCOPE_EDITOR_TOKEN`), never from the command line.
The file is TOML-like `role = "token"` lines:

    viewer = "a-long-random-string"
    editor = "another-long-random-string"

Viewers browse, query and export; editors can also ingest, start jobs and save mixtures.

Per-user sign-in through an identity provider (OpenID Connect, Streamlit's `st.login`): the
provider is configured in Streamlit's `.streamlit/secrets.toml` `[auth]` section, and the
same roles file maps each signed-in identity (its e-mail) to a role in a `[users]` table:

    [users]
    "alice@example.org" = "editor"
    "*@example.org" = "viewer"      # anyone of that domain; "*" = anyone signed in

An exact address wins over its domain, and the domain over "*"; an identity with no entry
(or whose provider says its e-mail is not verified) gets no role and sees nothing.
"""

from __future__ import annotations

import hmac
import os
import stat
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from analytics.errors import MixscopeError

ROLES = ("viewer", "editor")
SECRETS_ENV = "MIXSCOPE_SECRETS_FILE"
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Secrets:
    tokens: dict[str, str]  # role -> token
    users: dict[str, str] = field(default_factory=dict)  # e-mail / *@domain / * -> role

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def role_for_user(self, email: str | None, *, verified: object = None) -> str | None:
        """The role of an identity-provider user, by e-mail (see the module docstring)."""
        if not email or not isinstance(email, str) or verified is False:
            return None
        email = email.strip().lower()
        if email.count("@") != 1 or not email.split("@")[0] or not email.split("@")[1]:
            return None
        for key in (email, "*@" + email.split("@")[1], "*"):
            if key in self.users:
                return self.users[key]
        return None

    def role_for(self, token: str) -> str | None:
        """The role a token grants (editor wins if both match), compared in constant time."""
        granted = None
        for role in ROLES:
            want = self.tokens.get(role)
            if want and hmac.compare_digest(want.encode(), (token or "").encode()):
                granted = role
        return granted


def load_secrets(path: str | os.PathLike | None = None) -> Secrets:
    """Secrets from `path`, `$MIXSCOPE_SECRETS_FILE`, or the token environment variables."""
    path = path or os.environ.get(SECRETS_ENV)
    tokens: dict[str, str] = {}
    users: dict[str, str] = {}
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise MixscopeError(f"{p}: secrets file not found.")
        if p.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise MixscopeError(f"{p}: secrets file is readable by others; chmod 600 it.")
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise MixscopeError(f"{p}: not valid TOML ({exc}).") from exc
        users = _users(p, data.pop("users", {}))
        unknown = set(data) - set(ROLES)
        if unknown:
            raise MixscopeError(
                f"{p}: unknown role(s) {sorted(unknown)}; expected viewer, editor (and a "
                "[users] table)."
            )
        tokens = {k: str(v) for k, v in data.items()}
    for role in ROLES:
        env = os.environ.get(f"MIXSCOPE_{role.upper()}_TOKEN")
        if env:
            tokens[role] = env
    for role, tok in tokens.items():
        check_token(role, tok)
    return Secrets(tokens, users)


def _users(path: Path, table) -> dict[str, str]:
    if not isinstance(table, dict):
        raise MixscopeError(f'{path}: [users] must be a table of "e-mail" = "role" lines.')
    out = {}
    for who, role in table.items():
        key = str(who).strip().lower()
        if role not in ROLES:
            raise MixscopeError(
                f"{path}: [users] {who!r} = {role!r}: expected the role viewer or editor."
            )
        if key != "*" and (key.count("@") != 1 or not key.split("@")[1]):
            raise MixscopeError(
                f'{path}: [users] {who!r}: expected an e-mail address, "*@domain" or "*".'
            )
        out[key] = role
    return out


#: keys Streamlit's st.login needs, in [auth] or in a provider's [auth.NAME] table
OIDC_KEYS = ("client_id", "client_secret", "server_metadata_url")


@dataclass(frozen=True)
class OidcConfig:
    providers: tuple[str | None, ...]  # None: the single provider configured in [auth] itself

    @staticmethod
    def label(provider: str | None) -> str:
        return provider.replace("_", " ").title() if provider else "your identity provider"


def parse_oidc(auth: object, where: str = "[auth]") -> OidcConfig | None:
    """The providers configured in a secrets.toml `[auth]` section (a dict), or None when it
    is absent; MixscopeError naming the missing key when it is incomplete."""
    if not auth:
        return None
    if not isinstance(auth, dict):
        raise MixscopeError(f"{where}: expected a table.")
    for key in ("redirect_uri", "cookie_secret"):
        if not str(auth.get(key) or "").strip():
            raise MixscopeError(f"{where}: {key} is missing (st.login needs it).")
    providers: list[str | None] = []
    if any(k in auth for k in OIDC_KEYS):
        missing = [k for k in OIDC_KEYS if not str(auth.get(k) or "").strip()]
        if missing:
            raise MixscopeError(f"{where}: {', '.join(missing)} missing.")
        providers.append(None)
    for name, sub in auth.items():
        if isinstance(sub, dict):
            missing = [k for k in OIDC_KEYS if not str(sub.get(k) or "").strip()]
            if missing:
                raise MixscopeError(f"{where[:-1]}.{name}]: {', '.join(missing)} missing.")
            providers.append(name)
    if not providers:
        raise MixscopeError(
            f"{where}: no provider (client_id, client_secret, server_metadata_url in [auth] "
            "or in an [auth.NAME] table)."
        )
    return OidcConfig(tuple(providers))


def find_oidc(paths: list[Path]) -> tuple[Path, OidcConfig] | None:
    """The first of Streamlit's secrets files (`paths`) with an [auth] section, parsed."""
    for p in paths:
        if not p.is_file():
            continue
        try:
            data = tomllib.loads(p.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise MixscopeError(f"{p}: not valid TOML ({exc}).") from exc
        if "auth" in data:
            cfg = parse_oidc(data["auth"], where=f"{p}: [auth]")
            if cfg:
                return p, cfg
    return None


_HOW = "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)"


def check_token(role: str, token: str) -> None:
    """A token must hold at least MIN_TOKEN_LENGTH non-blank characters and no blanks around
    them (a padded token would be typed wrongly, and spaces add no secrecy)."""
    if token != token.strip():
        raise MixscopeError(
            f"the {role} token starts or ends with blanks; remove them (a token is one long "
            f"random string {_HOW})."
        )
    if sum(not c.isspace() for c in token) < MIN_TOKEN_LENGTH:
        raise MixscopeError(
            f"the {role} token has fewer than {MIN_TOKEN_LENGTH} non-blank characters; use a long "
            f"random string {_HOW}."
        )


class SignInLimiter:
    """At most one sign-in attempt per `interval` seconds per client, however many sessions
    (browser tabs, scripted websockets) that client opens.

    `reserve(key)` books the client's next slot and returns how long to wait before checking
    the token (0 for the first attempt); once more than `max_wait` seconds of attempts are
    booked it returns None: refuse at once rather than holding a thread.
    """

    def __init__(self, interval: float = 1.0, *, max_wait: float = 30.0, max_keys: int = 10_000):
        self.interval = interval
        self.max_wait = max_wait
        self.max_keys = max_keys
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, key: str | None) -> float | None:
        key = key or "global"
        now = time.monotonic()
        with self._lock:
            if len(self._next) > self.max_keys:  # forget clients whose slots have passed
                self._next = {k: t for k, t in self._next.items() if t > now}
            slot = max(now, self._next.get(key, now))
            if slot - now > self.max_wait:
                return None
            self._next[key] = slot + self.interval
        return slot - now


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


#: bytes of uploads one signed-in session may hold in the server's memory at once
DEFAULT_SESSION_UPLOAD_BYTES = 512 * 1024**2
SESSION_UPLOAD_ENV = "MIXSCOPE_MAX_SESSION_UPLOAD_BYTES"


class UploadPolicy:
    """Who may upload to the server, decided before a byte of the body is read.

    The dashboard registers a session (Streamlit's session id: a random UUID only its own
    browser tab knows) with its role once it has signed in; an upload request names its
    session in its path. Only editors' sessions may upload (uploading is the first step
    of adding data); every other request, the sign-in form's included, is refused, so
    nothing unauthenticated reaches the server's upload memory. A signed-in session may
    hold at most `session_bytes` of uploads at once, and each request must state its size.
    """

    def __init__(self, session_bytes: int | None = None, *, max_sessions: int = 10_000):
        if session_bytes is None:
            raw = os.environ.get(SESSION_UPLOAD_ENV)
            session_bytes = int(raw) if raw and raw.strip().isdigit() else None
        self.session_bytes = session_bytes or DEFAULT_SESSION_UPLOAD_BYTES
        self.max_sessions = max_sessions
        self._roles: dict[str, str] = {}
        self._lock = threading.Lock()

    def register(self, session_id: str, role: str) -> None:
        with self._lock:
            self._roles.pop(session_id, None)
            self._roles[session_id] = role
            while len(self._roles) > self.max_sessions:  # forget the oldest sign-ins
                self._roles.pop(next(iter(self._roles)))

    def forget(self, session_id: str) -> None:
        with self._lock:
            self._roles.pop(session_id, None)

    def role(self, session_id: str) -> str | None:
        with self._lock:
            return self._roles.get(session_id)

    def decide(self, session_id: str, content_length: str | None, held: int) -> tuple[int, str]:
        """(HTTP status, reason) for an upload of `content_length` bytes by `session_id`,
        which already holds `held` bytes of uploads; 0 = let it through."""
        role = self.role(session_id)
        if role is None:
            return 403, "sign in before uploading"
        if role != "editor":
            return 403, "viewers cannot upload"
        if content_length is None or not content_length.strip().isdigit():
            return 411, "an upload must state its size (Content-Length)"
        if held + int(content_length) > self.session_bytes:
            return 413, (
                f"this session holds {held:,} bytes of uploads; the limit is "
                f"{self.session_bytes:,} (${SESSION_UPLOAD_ENV})"
            )
        return 0, ""


#: the server's one policy (the dashboard registers sessions, the middleware asks)
UPLOADS = UploadPolicy()

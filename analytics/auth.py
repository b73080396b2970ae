"""Shared-secret access control with two roles.

Secrets come from a file (`--secrets FILE` / `$MIXSCOPE_SECRETS_FILE`) or from environment
variables (`$MIXSCOPE_VIEWER_TOKEN`, `$MIXSCOPE_EDITOR_TOKEN`), never from the command line.
The file is TOML-like `role = "token"` lines:

    viewer = "a-long-random-string"
    editor = "another-long-random-string"

Viewers browse, query and export; editors can also ingest, start jobs and save mixtures.
"""

from __future__ import annotations

import hmac
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from analytics.errors import MixscopeError

ROLES = ("viewer", "editor")
SECRETS_ENV = "MIXSCOPE_SECRETS_FILE"
MIN_TOKEN_LENGTH = 12


@dataclass(frozen=True)
class Secrets:
    tokens: dict[str, str]  # role -> token

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

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
        unknown = set(data) - set(ROLES)
        if unknown:
            raise MixscopeError(f"{p}: unknown role(s) {sorted(unknown)}; expected viewer, editor.")
        tokens = {k: str(v) for k, v in data.items()}
    for role in ROLES:
        env = os.environ.get(f"MIXSCOPE_{role.upper()}_TOKEN")
        if env:
            tokens[role] = env
    for role, tok in tokens.items():
        if len(tok) < MIN_TOKEN_LENGTH:
            raise MixscopeError(
                f"the {role} token is shorter than {MIN_TOKEN_LENGTH} characters; use a long "
                "random string (e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)."
            )
    return Secrets(tokens)


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")

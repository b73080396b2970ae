"""DuckDB extensions and object-store access for the workspace lakehouse.

Extensions are loaded by file path from the signed builds on PyPI
(`duckdb-extension-ducklake`, `-httpfs`, `-sqlite-scanner`, `-postgres-scanner`) when they are
installed, which works offline; otherwise DuckDB's own `INSTALL` fetches them (online users).

Object-store credentials come only from the standard environment and are turned into DuckDB
secrets on the connections of jobs (never on the locked connection that runs user SQL):

* S3 and S3-compatible stores: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
  AWS_REGION (or AWS_DEFAULT_REGION), AWS_ENDPOINT_URL (e.g. http://127.0.0.1:9000 for MinIO
  or moto; path-style URLs are then used).
* Google Cloud Storage (through its S3-compatible XML API with HMAC keys):
  GCS_ACCESS_KEY_ID, GCS_SECRET_ACCESS_KEY.
* Hugging Face Hub (`hf://datasets/org/name@revision/path`): HF_TOKEN.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from urllib.parse import urlparse

import duckdb

from analytics.errors import WorkspaceError

REMOTE_SCHEMES = ("s3://", "s3a://", "gs://", "gcs://", "hf://", "http://", "https://", "r2://")


def is_remote(path: str) -> bool:
    return str(path).lower().startswith(REMOTE_SCHEMES)


def extension_path(name: str) -> str | None:
    """The extension file shipped by the PyPI package `duckdb-extension-<name>`, if any."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.origin:
        return None
    root = os.path.join(os.path.dirname(spec.origin), "extensions")
    exact = glob.glob(os.path.join(root, f"v{duckdb.__version__}", "*.duckdb_extension"))
    return exact[0] if exact else None


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """LOAD `name` from its PyPI package, or INSTALL it through DuckDB when online."""
    path = extension_path(name)
    try:
        if path:
            con.execute("LOAD '" + path.replace("'", "''") + "'")
            return
        try:
            con.execute(f"LOAD {name}")
        except duckdb.Error:
            con.execute(f"INSTALL {name}")
            con.execute(f"LOAD {name}")
    except duckdb.Error as exc:
        pkg = "duckdb-extension-" + name.replace("_", "-")
        raise WorkspaceError(
            f"the DuckDB extension {name!r} is not available ({str(exc).splitlines()[0]}); "
            f"install it with `pip install {pkg}=={duckdb.__version__}` "
            "(or let DuckDB INSTALL it when online)."
        ) from exc


def _lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def configure_remote(con: duckdb.DuckDBPyConnection, *, scope: str | None = None) -> None:
    """Load httpfs and create secrets from the environment (see the module docstring).
    `scope` limits the secrets to one prefix (the locked reader's lake data path)."""
    load_extension(con, "httpfs")
    env = os.environ
    scoped = f", SCOPE {_lit(scope)}" if scope else ""
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        opts = [f"KEY_ID {_lit(key)}", f"SECRET {_lit(secret)}"]
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if region:
            opts.append(f"REGION {_lit(region)}")
        if env.get("AWS_SESSION_TOKEN"):
            opts.append(f"SESSION_TOKEN {_lit(env['AWS_SESSION_TOKEN'])}")
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        if endpoint:
            u = urlparse(endpoint if "://" in endpoint else "https://" + endpoint)
            opts += [
                f"ENDPOINT {_lit(u.netloc)}",
                "URL_STYLE 'path'",
                f"USE_SSL {'true' if u.scheme == 'https' else 'false'}",
            ]
        con.execute(f"CREATE OR REPLACE SECRET mixscope_s3 (TYPE s3, {', '.join(opts)}{scoped})")
    gkey, gsecret = env.get("GCS_ACCESS_KEY_ID"), env.get("GCS_SECRET_ACCESS_KEY")
    if gkey and gsecret:
        con.execute(
            f"CREATE OR REPLACE SECRET mixscope_gcs (TYPE gcs, KEY_ID {_lit(gkey)}, "
            f"SECRET {_lit(gsecret)}{scoped})"
        )
    if env.get("HF_TOKEN"):
        token = _lit(env["HF_TOKEN"])
        con.execute(
            f"CREATE OR REPLACE SECRET mixscope_hf (TYPE huggingface, TOKEN {token}{scoped})"
        )


def postgres_dsn(url: str) -> str:
    """`postgresql://user@host:port/db?sslmode=...` -> libpq key=value string.

    Passwords are refused on the command line: use PGPASSWORD or ~/.pgpass (libpq reads them).
    """
    u = urlparse(url)
    if u.scheme not in ("postgres", "postgresql"):
        raise WorkspaceError(
            f"--catalog {url!r}: expected postgresql://USER@HOST:PORT/DATABASE or sqlite."
        )
    if u.password:
        raise WorkspaceError(
            "--catalog: do not put the password in the URL (it would be stored and shown); "
            "set PGPASSWORD or use ~/.pgpass."
        )
    parts = {"dbname": (u.path or "/").lstrip("/") or "postgres"}
    if u.hostname:
        parts["host"] = u.hostname
    if u.port:
        parts["port"] = str(u.port)
    if u.username:
        parts["user"] = u.username
    for kv in filter(None, (u.query or "").split("&")):
        k, _, v = kv.partition("=")
        parts[k] = v
    return " ".join(f"{k}={v}" for k, v in parts.items())

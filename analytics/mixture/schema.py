"""Workspace tables owned by the mixture library (wired into migrations by the workspace)."""

from __future__ import annotations

SCHEMA: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS mixtures (
        name VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        note VARCHAR,
        manifest JSON NOT NULL
    )
    """,
]

#: Who saved each version (migration 7; NULL for versions saved before it, and for saves
#: with no known user): the signed-in dashboard user (identity-provider e-mail, or the
#: proxy's X-Forwarded-User), the submitter of the job that saved it, or the OS user of a
#: terminal `mixscope mix create`.
SAVED_BY: list[str] = ["ALTER TABLE mixtures ADD COLUMN IF NOT EXISTS saved_by VARCHAR"]

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

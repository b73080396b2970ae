"""Versioned schema migrations of the workspace database.

Each migration is (version, description, [sql, ...]) and runs once, in order, inside the
writer's transaction; `meta.schema_version` records the last one applied. Add a migration by
appending to MIGRATIONS (never edit one that has shipped).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def schema_of(module: str) -> Callable[[], list[str]]:
    """Statements from a capability's `SCHEMA` list, imported when the migration runs."""
    return lambda: list(importlib.import_module(module).SCHEMA)


def statements(entry: list[str] | Callable[[], list[str]]) -> list[str]:
    return entry() if callable(entry) else list(entry)


MIGRATIONS: list[tuple[int, str, list[str] | Callable[[], list[str]]]] = [
    (
        1,
        "documents, ingests and meta tables",
        [
            """CREATE TABLE IF NOT EXISTS meta(key VARCHAR PRIMARY KEY, value VARCHAR)""",
            """CREATE TABLE IF NOT EXISTS ingests(
                ingest_id BIGINT PRIMARY KEY, source VARCHAR, paths VARCHAR[], format VARCHAR,
                files_sha256 VARCHAR, n_read BIGINT, n_added BIGINT, n_tokens_added BIGINT,
                tokenizer VARCHAR, options JSON, started_at TIMESTAMP, finished_at TIMESTAMP)""",
            """CREATE TABLE IF NOT EXISTS documents(
                doc_id VARCHAR PRIMARY KEY, source VARCHAR NOT NULL, domain VARCHAR,
                lang VARCHAR, date DATE, url VARCHAR, title VARCHAR, text VARCHAR NOT NULL,
                n_bytes BIGINT, n_chars BIGINT, n_tokens BIGINT, metadata JSON,
                ingest_id BIGINT)""",
        ],
    ),
    (2, "document signals: signal_<name> tables, sketches, catalog",
     schema_of("analytics.signals.schema")),
    (3, "saved mixtures", schema_of("analytics.mixture.schema")),
    (4, "checkpoint geometry results", schema_of("analytics.geometry.schema")),
    (5, "corpus maps: maps, doc_clusters, cluster_labels, selections",
     lambda: schema_of("analytics.maps.schema")() + schema_of("analytics.maps.filtering")()),
]

LATEST_VERSION = MIGRATIONS[-1][0]

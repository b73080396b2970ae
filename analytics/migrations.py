"""Versioned schema migrations of the workspace lakehouse (DuckLake tables).

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


#: The core tables. `documents` holds metadata and a locator of each document's text:
#: `file_id` names a row of `ingest_files` (the file where the text lives) and `text_row` its
#: row in that file (Parquet) or NULL (JSONL/CSV/HF: the text is found again by doc id).
#: `texts` holds a copy of the text for workspaces ingested with --copy-text.
#: `doc_rollup` holds exact per-ingest aggregates that Overview/Explore facets sum.
CORE: list[str] = [
    """CREATE TABLE IF NOT EXISTS meta(key VARCHAR NOT NULL, value VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS ingests(
        ingest_id BIGINT NOT NULL, source VARCHAR, paths VARCHAR[], format VARCHAR,
        files_sha256 VARCHAR, n_read BIGINT, n_added BIGINT, n_tokens_added BIGINT,
        tokenizer VARCHAR, options JSON, started_at TIMESTAMP, finished_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS documents(
        doc_id VARCHAR NOT NULL, source VARCHAR NOT NULL, domain VARCHAR,
        lang VARCHAR, date DATE, url VARCHAR, title VARCHAR,
        n_bytes BIGINT, n_chars BIGINT, n_tokens BIGINT, metadata JSON,
        ingest_id BIGINT, file_id BIGINT, text_row BIGINT)""",
    """CREATE TABLE IF NOT EXISTS texts(doc_id VARCHAR NOT NULL, text VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ingest_files(
        file_id BIGINT NOT NULL, ingest_id BIGINT NOT NULL, uri VARCHAR NOT NULL,
        format VARCHAR NOT NULL, text_field VARCHAR NOT NULL, id_expr VARCHAR NOT NULL,
        size BIGINT, mtime VARCHAR, etag VARCHAR, copied BOOLEAN NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS doc_rollup(
        ingest_id BIGINT, source VARCHAR, domain VARCHAR, lang VARCHAR, year INTEGER,
        len_bucket INTEGER, n_docs BIGINT, n_tokens BIGINT, n_bytes BIGINT, n_chars BIGINT)""",
    """CREATE VIEW IF NOT EXISTS document_text AS SELECT doc_id, text FROM texts""",
]

MIGRATIONS: list[tuple[int, str, list[str] | Callable[[], list[str]]]] = [
    (1, "documents (metadata + text locators), texts, ingests, ingest files, rollups, meta", CORE),
    (
        2,
        "document signals: signal_<name> tables, sketches, catalog",
        schema_of("analytics.signals.schema"),
    ),
    (3, "saved mixtures", schema_of("analytics.mixture.schema")),
    (4, "checkpoint geometry results", schema_of("analytics.geometry.schema")),
    (
        5,
        "corpus maps: maps, doc_clusters, cluster_labels, selections",
        lambda: schema_of("analytics.maps.schema")() + schema_of("analytics.maps.filtering")(),
    ),
    (
        6,
        "mixture lineage: runs and checkpoints trained on each mixture version",
        schema_of("analytics.mixture.lineage"),
    ),
    (
        7,
        "who saved each mixture version: mixtures.saved_by",
        lambda: list(importlib.import_module("analytics.mixture.schema").SAVED_BY),
    ),
]

LATEST_VERSION = MIGRATIONS[-1][0]

"""DDL of the signal tables (for the workspace migrations).

Design (fast filtering in DuckDB): one wide table per signal, `signal_<name>`, with
`doc_id`, `version` and that signal's typed columns; rows are keyed by (doc_id, version) and
versions coexist, so changing parameters never overwrites. Global signals (duplicate
clusters) also have `signal_<name>_sketch` with their per-document sketches. One catalog
table records every computed (name, version) with its parameters.

No PRIMARY KEY on the signal tables: DuckDB's ART indexes slow bulk appends; the runner only
ever appends rows for documents that have none at that version (anti-join), which keeps
(doc_id, version) unique.
"""

from __future__ import annotations

from analytics.signals.base import Column, Signal
from analytics.signals.registry import SIGNALS, signal_names

CATALOG_DDL = """CREATE TABLE IF NOT EXISTS signals_catalog(
    name VARCHAR NOT NULL, version VARCHAR NOT NULL, params JSON, computed_at TIMESTAMP,
    n_docs BIGINT)"""


def table_ddl(table: str, columns: tuple[Column, ...]) -> str:
    cols = ", ".join(f"{c.name} {c.type}" for c in columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {table}(doc_id VARCHAR NOT NULL, version VARCHAR NOT NULL"
        + (f", {cols}" if cols else "")
        + ")"
    )


def signal_ddl(cls: type[Signal]) -> list[str]:
    """CREATE TABLE statements for one signal class."""
    out = [table_ddl(f"signal_{cls.name}", cls.columns)]
    if cls.kind == "global":
        out.append(table_ddl(f"signal_{cls.name}_sketch", cls.sketch_columns))
    return out


def _schema() -> list[str]:
    signal_names()  # load the built-in signals
    return [CATALOG_DDL] + [sql for cls in SIGNALS.values() for sql in signal_ddl(cls)]


#: Every CREATE TABLE IF NOT EXISTS statement the signals need.
SCHEMA: list[str] = _schema()

"""Tiny DuckDB helpers that always finish their result (DuckDB 2 refuses new work on a
connection whose last result is unfinished)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb


def one(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None):
    """The first row of `sql` (a tuple), or None."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None):
    """The first column of the first row of `sql`, or None."""
    row = one(con, sql, params)
    return row[0] if row else None


def table_exists(
    con: duckdb.DuckDBPyConnection, table: str, *, database: str | None = None
) -> bool:
    """True when `table` (or a view of that name) exists in `database` (default: the
    connection's current database; temporary tables do not count).

    A zero-row probe of the qualified name: over a DuckLake catalog this costs a few
    milliseconds, where listing `duckdb_tables()` or `information_schema` walks every
    attached catalog (60-90 ms on a workspace). A failed probe does not abort an open
    transaction."""
    db = database or scalar(con, "SELECT current_database()")
    name = ".".join(_quote(p) for p in (db, "main", table))
    try:
        con.execute(f"SELECT * FROM {name} LIMIT 0").fetchall()
    except duckdb.CatalogException:
        return False
    return True


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'

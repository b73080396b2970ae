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

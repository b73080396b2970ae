"""The one path every query takes: parameters bound, rows capped, time bounded.

`run_query` is used by the dashboard's pages (trusted SQL with bound parameters) and by the
SQL page / `mixscope sql` (untrusted text, `user=True`), always on a read-only snapshot with
external access disabled and configuration locked (see analytics.workspace.Snapshot).
User text is never pasted into SQL: a user query must be exactly one SELECT statement and
runs as-is; values always travel as bound parameters.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

import duckdb
import pandas as pd
import pyarrow as pa

from analytics.errors import QueryRefused, QueryTimeout

DEFAULT_MAX_ROWS = 10_000
DEFAULT_TIMEOUT_S = 30.0

_ALLOWED_USER_TYPES = {duckdb.StatementType.SELECT}


class QueryResult(NamedTuple):
    table: pd.DataFrame
    truncated: bool


def check_user_sql(sql: str) -> str:
    """Refuse anything that is not exactly one read-only SELECT; return the statement text."""
    if not sql or not sql.strip():
        raise QueryRefused("The query is empty; write one SELECT statement.")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"The query does not parse: {exc}") from exc
    if len(statements) != 1:
        raise QueryRefused(
            f"Only one statement is allowed per query; this text holds {len(statements)}."
        )
    kind = statements[0].type
    if kind not in _ALLOWED_USER_TYPES:
        name = str(kind).split(".")[-1]
        raise QueryRefused(
            f"Only read-only SELECT queries are allowed here; this is a statement of type {name}."
        )
    return sql.strip().rstrip(";")


def run_query(
    cursor: duckdb.DuckDBPyConnection,
    sql: str,
    params: Sequence[Any] | dict[str, Any] | None = None,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    user: bool = False,
) -> QueryResult:
    """Run `sql` on `cursor`, returning at most `max_rows` rows and whether more existed.

    The query is interrupted after `timeout_s` seconds (QueryTimeout). With `user=True` the
    text is first checked by `check_user_sql`; permission errors from the locked snapshot
    (file access, ATTACH, INSTALL, SET ...) are reported as QueryRefused.
    """
    if user:
        sql = check_user_sql(sql)
        locked = cursor.execute("SELECT current_setting('enable_external_access')").fetchall()
        if locked[0][0] is not False:
            raise QueryRefused("user SQL runs only on the locked connection (user_cursor()).")
    timed_out = threading.Event()

    def _interrupt() -> None:
        timed_out.set()
        cursor.interrupt()

    timer = threading.Timer(timeout_s, _interrupt)
    timer.daemon = True
    timer.start()
    try:
        rel = cursor.sql(sql, params=params) if params is not None else cursor.sql(sql)
        if rel is None:  # not a query (only trusted callers get here)
            return QueryResult(pd.DataFrame(), False)
        reader = rel.to_arrow_reader(min(max_rows + 1, 100_000))
        batches: list[pa.RecordBatch] = []
        n = 0
        truncated = False
        for batch in reader:
            batches.append(batch)
            n += batch.num_rows
            if n > max_rows:
                truncated = True
                break
        table = pa.Table.from_batches(batches, schema=reader.schema)
        if truncated:
            table = table.slice(0, max_rows)
    except duckdb.InterruptException as exc:
        raise QueryTimeout(
            f"The query ran past its time limit of {timeout_s:g}s and was stopped."
        ) from exc
    except duckdb.PermissionException as exc:
        raise QueryRefused(f"Refused: {_first_line(exc)}") from exc
    except duckdb.InvalidInputException as exc:
        if "configuration has been locked" in str(exc):
            raise QueryRefused("Refused: settings cannot be changed here.") from exc
        raise
    except duckdb.Error as exc:
        if timed_out.is_set():
            raise QueryTimeout(
                f"The query ran past its time limit of {timeout_s:g}s and was stopped."
            ) from exc
        raise
    finally:
        timer.cancel()
    return QueryResult(table.to_pandas(), truncated)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]

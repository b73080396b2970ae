"""The one path every query takes: parameters bound, rows capped, time bounded.

`run_query` is used by the dashboard's pages (trusted SQL with bound parameters) and by the
SQL page / `mixscope sql` (untrusted text, `user=True`), always on a read-only snapshot with
external access disabled and configuration locked (see analytics.workspace.Snapshot).
User text is never pasted into SQL: a user query must be exactly one SELECT statement and
runs as-is; values always travel as bound parameters.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pandas as pd
import pyarrow as pa

from analytics.errors import MixscopeError, QueryError, QueryRefused, QueryTimeout, QueryTooLarge

DEFAULT_MAX_ROWS = 10_000
DEFAULT_TIMEOUT_S = 30.0
#: bytes of result (Arrow buffers) a query may return; the rest is cut off and reported
DEFAULT_MAX_BYTES = 64 * 1024**2
#: memory a user query's child process may add to what it needs to start (RLIMIT_AS)
DEFAULT_MEMORY_BYTES = 1536 * 1024**2
#: temporary (spill) bytes a user query may write, inside <workspace>/.tmp
DEFAULT_TEMP_BYTES = 2 * 1024**3
#: user queries running at once in one server process (each in its own child process)
MAX_CONCURRENT_USER_QUERIES = 4
TMP_DIR = ".tmp"

_ALLOWED_USER_TYPES = {duckdb.StatementType.SELECT}

#: catalog functions that are harmless to show (table and column names, types)
_SAFE_DUCKDB_FUNCTIONS = {
    "duckdb_tables", "duckdb_columns", "duckdb_views", "duckdb_schemas", "duckdb_types",
    "duckdb_constraints", "duckdb_indexes", "duckdb_keywords", "duckdb_functions",
}  # fmt: skip
#: names that reveal the server (paths, settings, extensions, environment) or run SQL text
#: built at run time (query('...')); refused wherever they appear in the text
_LEAKY = re.compile(
    r"\b(duckdb_[a-z_]+|pragma_[a-z_]+|current_setting|pg_settings|getenv|which_secret"
    r"|query_table|query(?=\s*\())\b"
)


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
    for m in _LEAKY.finditer(sql.lower()):
        if m.group(1) not in _SAFE_DUCKDB_FUNCTIONS:
            raise QueryRefused(
                f"Refused: {m.group(1)} reveals server settings or paths (or runs SQL built "
                "from text); query the workspace tables instead."
            )
    return sql.strip().rstrip(";")


def run_query(
    cursor: duckdb.DuckDBPyConnection,
    sql: str,
    params: Sequence[Any] | dict[str, Any] | None = None,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    user: bool = False,
) -> QueryResult:
    """Run `sql` on `cursor`, returning at most `max_rows` rows and whether more existed.

    Rows are fetched in Arrow batches and fetching stops once `max_bytes` of result are held
    (the table then ends at the last row that fits: `truncated` is True and the table's
    `attrs["truncated"]` says "bytes"; "rows" for the row cap). The query is interrupted
    after `timeout_s` seconds (QueryTimeout). With `user=True` the text is first checked by
    `check_user_sql`; permission errors from the locked snapshot (file access, ATTACH,
    INSTALL, SET ...) are reported as QueryRefused and DuckDB's other errors (a typo, an
    unknown column) as QueryError, each in one line.

    In-process, DuckDB may still build one large vector before the first batch is handed
    over; the server runs untrusted SQL through `run_user_query`, in a child process whose
    memory is bounded.
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
        fetched = _fetch(cursor, sql, params, max_rows, max_bytes)
    except (duckdb.Error, MemoryError) as exc:
        err = _query_error(exc, timed_out.is_set(), timeout_s, user)
        if err is None:
            raise
        raise err from exc
    finally:
        timer.cancel()
    if fetched is None:  # not a query (only trusted callers get here)
        return QueryResult(pd.DataFrame(), False)
    table, reason = fetched
    df = table.to_pandas()
    if reason:
        df.attrs["truncated"] = reason
    return QueryResult(df, reason is not None)


def _fetch(
    cursor: duckdb.DuckDBPyConnection,
    sql: str,
    params: Sequence[Any] | dict[str, Any] | None,
    max_rows: int,
    max_bytes: int,
) -> tuple[pa.Table, str | None] | None:
    """The result's first rows as (table, why it was cut: "rows", "bytes" or None); None
    when `sql` is not a query."""
    rel = cursor.sql(sql, params=params) if params is not None else cursor.sql(sql)
    if rel is None:
        return None
    reader = rel.to_arrow_reader(max(1, min(max_rows + 1, 1024)))
    batches: list[pa.RecordBatch] = []
    n = 0
    size = 0
    reason = None
    for batch in reader:
        if size + batch.nbytes > max_bytes:
            batch = _fit(batch, max_bytes - size)
            batches.append(batch)
            n += batch.num_rows
            reason = "bytes"
            break
        batches.append(batch)
        n += batch.num_rows
        size += batch.nbytes
        if n > max_rows:
            reason = "rows"
            break
    table = pa.Table.from_batches(batches, schema=reader.schema)
    if n > max_rows:
        table = table.slice(0, max_rows)
        reason = reason or "rows"
    return table, reason


def _query_error(
    exc: BaseException, timed_out: bool, timeout_s: float, user: bool
) -> Exception | None:
    """The one-line error `exc` is reported as (None: raise it as it is)."""
    timeout = QueryTimeout(f"The query ran past its time limit of {timeout_s:g}s and was stopped.")
    if isinstance(exc, duckdb.InterruptException):
        return timeout
    if isinstance(exc, duckdb.PermissionException):
        return QueryRefused(f"Refused: {_first_line(exc)}")
    if isinstance(exc, duckdb.InvalidInputException):
        if "configuration has been locked" in str(exc):
            return QueryRefused("Refused: settings cannot be changed here.")
        return QueryError(_first_line(exc)) if user else None
    if isinstance(exc, duckdb.OutOfMemoryException):
        return QueryTooLarge(
            f"The query needed more memory than it may use and was stopped ({_first_line(exc)})."
        )
    if isinstance(exc, MemoryError):
        return QueryTooLarge("The query needed more memory than it may use and was stopped.")
    if timed_out:
        return timeout
    return QueryError(_first_line(exc)) if user else None


def _fit(batch: pa.RecordBatch, budget: int) -> pa.RecordBatch:
    """The longest head of `batch` whose buffers take at most `budget` bytes."""
    lo, hi = 0, batch.num_rows  # lo rows fit; find the largest
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _sliced_bytes(batch, mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return batch.slice(0, lo)


def _sliced_bytes(batch: pa.RecordBatch, rows: int) -> int:
    if rows == 0:
        return 0
    return pa.Table.from_batches([batch.slice(0, rows)]).combine_chunks().nbytes


def truncation_note(df: pd.DataFrame, truncated: bool, *, max_rows: int, max_bytes: int) -> str:
    """What a truncated result was cut at, in words ('' when it is complete)."""
    if not truncated:
        return ""
    if df.attrs.get("truncated") == "bytes":
        return (
            f"truncated at the result size cap of {max_bytes / 1024**2:,.0f} MB "
            f"({len(df):,} rows fit); select fewer or narrower columns"
        )
    return f"truncated to {max_rows:,} rows (raise the row cap)"


# ---------------------------------------------------------------------- user queries
_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_USER_QUERIES)
_ROOT = Path(__file__).resolve().parents[1]


def run_user_query(
    workspace_path: str | os.PathLike,
    sql: str,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
    temp_bytes: int = DEFAULT_TEMP_BYTES,
) -> QueryResult:
    """Run an untrusted SELECT where it cannot take the server down.

    The query runs in a child process (`python -m analytics.sql_worker`) on the workspace's
    current snapshot, with an address-space limit (`memory_bytes` beyond what the child
    needs to start), its spill files in `<workspace>/.tmp/` (each file at most
    `temp_bytes`; the folder is removed afterwards) and the row, byte and time caps of
    `run_query`. A child that runs out of memory or is killed is reported as QueryTooLarge;
    this process only ever holds the capped result.
    """
    sql = check_user_sql(sql)
    ws_path = Path(workspace_path)
    request = {
        "workspace": str(ws_path),
        "sql": sql,
        "max_rows": int(max_rows),
        "max_bytes": int(max_bytes),
        "timeout_s": float(timeout_s),
        "memory_bytes": int(memory_bytes),
        "temp_bytes": int(temp_bytes),
    }
    grace = 30.0  # the child's own start-up and interrupt
    if not _SLOTS.acquire(timeout=timeout_s):
        raise QueryTimeout(
            f"The server is busy with other queries; none finished within {timeout_s:g}s."
        )
    try:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-m", "analytics.sql_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(json.dumps(request).encode(), timeout=timeout_s + grace)
        except subprocess.TimeoutExpired:
            _kill(proc)
            proc.communicate()
            raise QueryTimeout(
                f"The query ran past its time limit of {timeout_s:g}s and was stopped."
            ) from None
        finally:
            shutil.rmtree(ws_path / TMP_DIR / f"sql-{proc.pid}", ignore_errors=True)
    finally:
        _SLOTS.release()
    return _decode(proc.returncode, out, err, memory_bytes=memory_bytes, temp_bytes=temp_bytes)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()


_ERRORS = {
    "refused": QueryRefused,
    "timeout": QueryTimeout,
    "query": QueryError,
    "too_large": QueryTooLarge,
    "error": MixscopeError,
}


def _decode(rc: int, out: bytes, err: bytes, *, memory_bytes: int, temp_bytes: int) -> QueryResult:
    head, _, body = out.partition(b"\n")
    try:
        status = json.loads(head) if head else None
    except ValueError:
        status = None
    if status is None or (rc != 0 and status.get("ok")):
        if rc == -signal.SIGXFSZ:
            raise QueryTooLarge(
                f"The query spilled more than {temp_bytes / 1024**3:,.1f} GB of temporary "
                "files and was stopped."
            )
        last = _first_line(err.decode(errors="replace").strip().splitlines()[-1]) if err else ""
        if rc < 0 or "memory" in last.lower() or "bad_alloc" in last:
            raise QueryTooLarge(
                f"The query needed more than {memory_bytes / 1024**2:,.0f} MB of memory and "
                "was stopped."
            )
        raise MixscopeError(f"The query could not run (exit status {rc}): {last or 'no output'}")
    if not status.get("ok"):
        raise _ERRORS.get(status.get("kind"), MixscopeError)(status.get("error", "query failed"))
    table = pa.ipc.open_stream(body).read_all()
    df = table.to_pandas()
    if status.get("truncated"):
        df.attrs["truncated"] = status["truncated"]
    return QueryResult(df, bool(status.get("truncated")))


def _first_line(exc: Exception | str) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""

"""Reading and writing signal tables in a DuckDB workspace.

Tables: `signal_<name>(doc_id, version, <typed columns>)` (+ `signal_<name>_sketch` for global
signals) and `signals_catalog(name, version, params JSON, computed_at, n_docs)`; see
`schema.py`. The "current" version of a signal is the one most recently computed (largest
`computed_at` in the catalog); `signals_view_sql` joins `documents` with the current version
of every computed signal.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Mapping

import duckdb
import pandas as pd
import pyarrow as pa

from analytics.db import table_exists
from analytics.signals.base import Signal, SignalError, canonical_json
from analytics.signals.registry import SIGNALS, signal_names
from analytics.signals.schema import CATALOG_DDL, signal_ddl

_VERSION_RE = re.compile(r"^[0-9A-Za-z._-]+$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_counter = itertools.count()

#: columns of `documents` that the view exposes (everything but the text)
DOC_COLUMNS = (
    "doc_id",
    "source",
    "domain",
    "lang",
    "date",
    "url",
    "n_bytes",
    "n_chars",
    "n_tokens",
)


def sub_cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A new cursor on `con`'s database, using the same current database and schema.

    (A plain `con.cursor()` starts in the default catalog, which is wrong for connections that
    ATTACH the workspace and `USE` it, like the read-only snapshots.)
    """
    db, schema = con.execute("SELECT current_database(), current_schema()").fetchall()[0]
    cur = con.cursor()
    quoted = ".".join('"' + part.replace('"', '""') + '"' for part in (db, schema))
    cur.execute(f"USE {quoted}")
    return cur


def query_arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pa.Table:
    """Run a read query and return an Arrow table (DuckDB 1.x and 2.x APIs)."""
    rel = con.sql(sql, params=params or None)
    fn = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
    return fn()


def query_reader(
    con: duckdb.DuckDBPyConnection, sql: str, params: list | None, batch_size: int
) -> pa.RecordBatchReader:
    """Stream a read query as Arrow record batches of about `batch_size` rows."""
    rel = con.sql(sql, params=params or None)
    fn = getattr(rel, "to_arrow_reader", None) or rel.fetch_record_batch
    return fn(batch_size)


def ensure_tables(con: duckdb.DuckDBPyConnection, signals: list[Signal]) -> None:
    """CREATE TABLE IF NOT EXISTS the catalog and the tables of `signals`."""
    con.execute(CATALOG_DDL)
    for sig in signals:
        for sql in signal_ddl(type(sig)):
            con.execute(sql)


def insert_arrow(con: duckdb.DuckDBPyConnection, table: str, version: str, data: pa.Table) -> int:
    """Append `data` (doc_id + columns) to `table` with `version`; return rows written."""
    if data.num_rows == 0:
        return 0
    view = f"_mixscope_signal_batch_{next(_counter)}"
    con.register(view, data)
    try:
        cols = ", ".join(data.column_names)
        rest = ", ".join(c for c in data.column_names if c != "doc_id")
        con.execute(
            f"INSERT INTO {table} (doc_id, version, {rest}) "
            f"SELECT doc_id, ?, {rest} FROM (SELECT {cols} FROM {view})",
            [version],
        )
    finally:
        con.unregister(view)
    return data.num_rows


def count_rows(con: duckdb.DuckDBPyConnection, table: str, version: str) -> int:
    return int(
        con.execute(f"SELECT count(*) FROM {table} WHERE version = ?", [version]).fetchall()[0][0]
    )


def update_catalog(con: duckdb.DuckDBPyConnection, sig: Signal) -> int:
    """Upsert the catalog row of `sig`'s version with n_docs = rows in `signal_<name>`."""
    n = count_rows(con, sig.table, sig.version)
    con.execute(
        "DELETE FROM signals_catalog WHERE name = ? AND version = ?", [sig.name, sig.version]
    )
    con.execute(
        "INSERT INTO signals_catalog VALUES (?, ?, ?, ?, ?)",
        [
            sig.name,
            sig.version,
            canonical_json(sig.params),
            dt.datetime.now(dt.UTC).replace(tzinfo=None),
            n,
        ],
    )
    return n


def catalog(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The catalog (empty frame when no signal was ever computed).

    Registers the workspace's external signals (imported, classifiers) first, so every
    reader of the catalog sees them in the registry."""
    from analytics.signals.external import definitions, register_definitions

    have = {t for t in ("signals_catalog", "signals_external") if table_exists(con, t)}
    register_definitions(definitions(con, exists=True) if "signals_external" in have else {})
    if "signals_catalog" not in have:
        return pd.DataFrame(columns=["name", "version", "params", "computed_at", "n_docs"])
    return con.execute(
        "SELECT name, version, CAST(params AS VARCHAR) AS params, computed_at, n_docs "
        "FROM signals_catalog ORDER BY name, computed_at"
    ).df()


def current_versions(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """name -> most recently computed version, for registered signals with a table."""
    cat = catalog(con)
    out: dict[str, str] = {}
    signal_names()
    for name, grp in cat.groupby("name", sort=False):
        if name in SIGNALS and table_exists(con, f"signal_{name}"):
            out[str(name)] = str(grp.sort_values("computed_at").iloc[-1]["version"])
    return out


def _checked(version: str) -> str:
    if not _VERSION_RE.match(version):
        raise SignalError(f"malformed signal version {version!r}")
    return version


def signals_view_sql(
    con: duckdb.DuckDBPyConnection,
    *,
    versions: Mapping[str, str] | None = None,
    include_text: bool = False,
) -> str:
    """A SELECT joining `documents` with the columns of the current version of every signal.

    `versions` overrides the version per signal name (default: `current_versions(con)`).
    Documents without a row for a signal get NULLs in its columns. Names and versions are
    checked against the registry / a strict pattern before they are written into the SQL.
    """
    chosen = dict(current_versions(con))
    if versions:
        signal_names()
        for name, ver in versions.items():
            if name not in SIGNALS:
                raise SignalError(f"unknown signal {name!r}; valid names: {', '.join(SIGNALS)}")
            chosen[name] = ver
    doc_cols = [f"d.{c}" for c in DOC_COLUMNS] + (["x.text"] if include_text else [])
    select = list(doc_cols)
    joins = []
    for i, (name, ver) in enumerate(sorted(chosen.items())):
        if not _NAME_RE.match(name):
            raise SignalError(f"malformed signal name {name!r}")
        alias = f"s{i}"
        select += [f"{alias}.{c.name}" for c in SIGNALS[name].columns]
        joins.append(
            f"LEFT JOIN (SELECT * FROM signal_{name} WHERE version = '{_checked(ver)}') {alias} "
            f"ON {alias}.doc_id = d.doc_id"
        )
    if include_text:
        joins.insert(0, "JOIN document_text x ON x.doc_id = d.doc_id")
    return "SELECT " + ", ".join(select) + " FROM documents d " + " ".join(joins)


def signals_view(
    con: duckdb.DuckDBPyConnection,
    *,
    name: str = "doc_signals",
    versions: Mapping[str, str] | None = None,
) -> str:
    """Create (or replace) TEMP VIEW `name` = `signals_view_sql(con)`; return the name."""
    if not _NAME_RE.match(name):
        raise SignalError(f"view name {name!r} must match {_NAME_RE.pattern}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {signals_view_sql(con, versions=versions)}")
    return name

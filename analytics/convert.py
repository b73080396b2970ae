"""Convert a single-file workspace (mixscope 0.1: `mixscope.duckdb` holding everything,
texts included) into a lakehouse workspace in the same directory.

Every table is copied in one lake transaction; `documents` is split into metadata
(`documents`) and a copy of the text (`texts`: the old file held the text, so the converted
workspace keeps it, as --copy-text would), and the rollups are computed. Every table's row
count (and the documents' token sum) is checked equal before the new workspace is published
by writing its `workspace.json`; the old file then moves to backups/. Any failure leaves the
old file where it was and removes what the conversion had written.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from analytics.db import table_exists
from analytics.errors import WorkspaceError
from analytics.ingest.formats import LEN_BUCKET_SQL
from analytics.migrations import LATEST_VERSION
from analytics.text import refresh_text_view
from analytics.workspace import CATALOG_NAME, DEFAULT_TOKENIZER, Workspace

Progress = Callable[[str, int, int], None]
_SKIP = {"meta"}


@dataclass
class ConvertReport:
    workspace: str
    backup: str
    tables: dict[str, int] = field(default_factory=dict)
    documents: int = 0
    tokens: int = 0


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def convert_single_file(path, *, progress: Progress | None = None) -> ConvertReport:
    """Convert the single-file workspace at `path` into a lakehouse: read the old file,
    copy every table in one transaction, check the counts, then move the file to backups/."""
    ws = Workspace(path)
    old_path = ws.legacy_db_path
    if ws.exists:
        raise WorkspaceError(f"{ws.path}: already a lakehouse workspace; nothing to convert.")
    if not old_path.exists():
        raise WorkspaceError(f"{ws.path}: no single-file workspace ({old_path.name}) here.")
    tables, meta = _read_old(old_path)
    old_version = int(meta.get("schema_version", 0))
    if old_version > 5:
        raise WorkspaceError(f"{old_path}: schema version {old_version} is not a 0.1 workspace.")
    if "documents" not in tables:
        raise WorkspaceError(f"{old_path}: holds no documents table.")
    report = ConvertReport(workspace=str(ws.path), backup="")
    try:
        ws._create(tokenizer=meta.get("tokenizer", DEFAULT_TOKENIZER), catalog=None, data=None)
        with ws.write(job="migrate") as con:
            con.execute(f"ATTACH {_lit(str(old_path))} AS old (READ_ONLY)")
            todo = [t for t in tables if t not in _SKIP]
            _copy_all(con, meta, todo, progress)
            _check_counts(con, todo, report)
        ws._publish_config()
    except BaseException:
        for name in (CATALOG_NAME, CATALOG_NAME + "-wal", CATALOG_NAME + "-shm"):
            (ws.path / name).unlink(missing_ok=True)
        shutil.rmtree(ws.path / "data", ignore_errors=True)
        raise
    backups = ws.path / "backups"
    backups.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    dst = backups / f"mixscope-v{old_version}-single-file-{stamp}.duckdb"
    shutil.move(str(old_path), dst)
    report.backup = str(dst)
    if progress:
        progress("done", 1, 1)
    assert ws.schema_version() == LATEST_VERSION
    return report


def _read_old(old_path) -> tuple[list[str], dict]:
    """The old file's table names and its meta key/values."""
    probe = duckdb.connect(":memory:")
    try:
        probe.execute(f"ATTACH {_lit(str(old_path))} AS old (READ_ONLY)")
        tables = [
            r[0]
            for r in probe.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'old' "
                "ORDER BY table_name"
            ).fetchall()
        ]
        meta = dict(probe.execute("SELECT key, value FROM old.meta").fetchall())
    except duckdb.Error as exc:
        raise WorkspaceError(
            f"{old_path}: not a readable mixscope workspace database ({exc}); restore it from "
            "backups/ first."
        ) from exc
    finally:
        probe.close()
    return tables, meta


def _copy_all(
    con: duckdb.DuckDBPyConnection, meta: dict, todo: list[str], progress: Progress | None
) -> None:
    """Copy the meta values and the tables `todo` from `old`; rebuild the rollup."""
    for key, value in meta.items():
        if key != "schema_version":
            con.execute("DELETE FROM meta WHERE key = ?", [key])
            con.execute("INSERT INTO meta VALUES (?, ?)", [key, value])
    for i, table in enumerate(todo):
        if progress:
            progress(f"copy {table}", i, len(todo))
        _copy_table(con, table)
    con.execute(
        f"""INSERT INTO doc_rollup
            SELECT ingest_id, source, domain, lang, year(date), {LEN_BUCKET_SQL},
                   count(*), sum(n_tokens), sum(n_bytes), sum(n_chars)
            FROM documents GROUP BY ALL"""
    )
    refresh_text_view(con)


def _check_counts(con: duckdb.DuckDBPyConnection, todo: list[str], report: ConvertReport) -> None:
    """Every copied table holds as many rows as before, every document its text and the
    token totals agree; fills `report`."""
    for table in todo:
        n_old = con.execute(f"SELECT count(*) FROM old.{_q(table)}").fetchone()[0]
        n_new = con.execute(f"SELECT count(*) FROM ws.main.{_q(table)}").fetchone()[0]
        if n_old != n_new:
            raise WorkspaceError(f"{table}: {n_old} rows before, {n_new} after converting.")
        report.tables[table] = int(n_new)
    n_texts = con.execute("SELECT count(*) FROM texts").fetchone()[0]
    tok_old, tok_new = con.execute(
        "SELECT (SELECT sum(n_tokens) FROM old.documents), (SELECT sum(n_tokens) FROM documents)"
    ).fetchone()
    if n_texts != report.tables["documents"] or tok_old != tok_new:
        raise WorkspaceError("documents: texts or token totals differ after converting.")
    report.documents, report.tokens = int(n_texts), int(tok_new or 0)


def _copy_table(con: duckdb.DuckDBPyConnection, table: str) -> None:
    exists = table_exists(con, table, database="ws")
    if table == "documents":
        con.execute("INSERT INTO documents BY NAME SELECT * EXCLUDE (text) FROM old.documents")
        con.execute("INSERT INTO texts SELECT doc_id, text FROM old.documents")
    elif exists:
        new_cols = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = 'ws' "
                "AND table_name = ?",
                [table],
            ).fetchall()
        }
        old_cols = [
            r[0]
            for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = 'old' "
                "AND table_name = ? ORDER BY column_index",
                [table],
            ).fetchall()
        ]
        cols = ", ".join(_q(c) for c in old_cols if c in new_cols)
        con.execute(f"INSERT INTO {_q(table)} BY NAME SELECT {cols} FROM old.{_q(table)}")
    else:
        con.execute(f"CREATE TABLE {_q(table)} AS SELECT * FROM old.{_q(table)}")


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"

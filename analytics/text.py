"""Documents' text, read on demand from where the corpus lives.

`documents` holds a locator of each text: `file_id` (a row of `ingest_files`: URI, format,
text field, the SQL expression of the document id, size and modification time at
registration) and `text_row` (the row in a Parquet file). Texts ingested with --copy-text
live in the `texts` table instead. `text_sql()` composes one relation `(doc_id, text)` over
both, read by DuckDB's own readers (httpfs for s3/gs/hf/https), so every job consumes text
the same way, in batches, with projection pushdown on Parquet.

Before text is read from a file, its size and modification time are compared with those
recorded at registration: a file that changed is reported (TextSourceChanged), never read
silently with rows that no longer match.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pandas as pd

from analytics.errors import MixscopeError
from analytics.ingest.formats import file_stats, reader_sql, remote_reason


class TextSourceChanged(MixscopeError):
    """A corpus file changed (or vanished) since it was registered."""


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _int_list(values: Iterable[int]) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


def external_files(
    con: duckdb.DuckDBPyConnection, file_ids: Iterable[int] | None = None
) -> pd.DataFrame:
    """The registered files whose text was not copied (optionally only `file_ids`)."""
    where = "WHERE NOT copied"
    if file_ids is not None:
        ids = sorted({int(i) for i in file_ids})
        if not ids:
            return pd.DataFrame(
                columns=["file_id", "ingest_id", "uri", "format", "text_field", "id_expr"]
            )
        where += f" AND file_id IN (SELECT unnest({_int_list(ids)}))"
    return con.execute(
        "SELECT file_id, ingest_id, uri, format, text_field, id_expr, size, mtime "
        f"FROM ingest_files {where} ORDER BY file_id"
    ).df()


def check_unchanged(con: duckdb.DuckDBPyConnection, files: pd.DataFrame) -> None:
    """Raise TextSourceChanged when a file's size or modification time differs from the
    values recorded when it was registered."""
    if files.empty:
        return
    try:
        now = file_stats(con, list(files["uri"]))
    except MixscopeError as exc:
        raise TextSourceChanged(f"{exc} It was registered by an ingest; re-ingest it.") from exc
    for (uri, size, mtime), (_, row) in zip(now, files.iterrows(), strict=True):
        if int(size) != int(row["size"]) or (row["mtime"] and mtime != row["mtime"]):
            raise TextSourceChanged(
                f"{uri}: changed since it was registered (size {int(row['size']):,} -> "
                f"{int(size):,}, modified {row['mtime']} -> {mtime}); its documents' text can "
                "no longer be located. Re-ingest it (`mixscope ingest`) or restore the file."
            )


def text_sql(
    con: duckdb.DuckDBPyConnection,
    *,
    file_ids: Iterable[int] | None = None,
    check: bool = True,
    row_range: tuple[int, int] | None = None,
) -> str:
    """SQL of a relation `(doc_id, text)` over every document's text.

    `file_ids` restricts the external files read (e.g. those of the documents wanted);
    copied texts are always included. `check` verifies the files are unchanged first.
    `row_range` (lo, hi): only Parquet rows lo..hi are needed (the reader then skips the
    row groups outside; the text is still matched to its document by file and row).
    """
    files = external_files(con, file_ids)
    if check:
        check_unchanged(con, files)
    parts = ["SELECT doc_id, text FROM texts"]
    for (ingest_id, fmt, field, id_expr), grp in files.groupby(
        ["ingest_id", "format", "text_field", "id_expr"], sort=True
    ):
        uris = list(grp["uri"])
        ids = _int_list(grp["file_id"])
        src = reader_sql(fmt, uris, row_numbers=fmt == "parquet")
        text = f"CAST(s.{_q(field)} AS VARCHAR)"
        files_of = (
            f"(SELECT file_id, uri FROM ingest_files WHERE ingest_id = {int(ingest_id)} "
            f"AND file_id IN (SELECT unnest({ids})))"
        )
        if fmt == "parquet":
            rows = ""
            if row_range is not None:
                rows = (
                    f" WHERE s.file_row_number BETWEEN {int(row_range[0])} AND {int(row_range[1])}"
                )
            parts.append(
                f"SELECT d.doc_id, {text} AS text FROM {src} s "
                f"JOIN {files_of} f ON f.uri = s.filename "
                "JOIN documents d ON d.file_id = f.file_id AND d.text_row = s.file_row_number"
                + rows
            )
        else:
            # No row numbers in DuckDB's JSON/CSV readers: find the text by its document id
            # (the same expression the ingest used), first occurrence per file.
            parts.append(
                f"SELECT d.doc_id, any_value(t.text) AS text FROM "
                f"(SELECT {id_expr} AS doc_id, {text} AS text, "
                f"s.filename FROM {src} s) t "
                f"JOIN {files_of} f ON f.uri = t.filename "
                "JOIN documents d ON d.file_id = f.file_id AND d.doc_id = t.doc_id "
                "GROUP BY d.doc_id"
            )
    return "(" + "\nUNION ALL\n".join(parts) + ")"


def refresh_text_view(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)define the workspace view `document_text(doc_id, text)` over every document's
    text (called by each ingest, in its transaction). Jobs read text through it; the locked
    reader of user SQL can only resolve the copied part (external files are not readable
    there by design)."""
    con.execute(
        f"CREATE OR REPLACE VIEW document_text AS SELECT * FROM {text_sql(con, check=False)}"
    )


def file_ids_of(con: duckdb.DuckDBPyConnection, doc_ids: list[str]) -> list[int]:
    rows = con.execute(
        "SELECT DISTINCT file_id FROM documents WHERE doc_id IN (SELECT unnest(?::VARCHAR[])) "
        "AND file_id IS NOT NULL",
        [list(doc_ids)],
    ).fetchall()
    return [int(r[0]) for r in rows]


def _rows_and_files(
    con: duckdb.DuckDBPyConnection, doc_ids: list[str]
) -> tuple[int | None, int | None, list[int]]:
    """(lowest text_row, highest text_row, file ids) of `doc_ids` (rows None when any of them
    has no row: JSONL/CSV documents are found by id)."""
    rows = con.execute(
        "SELECT file_id, min(text_row), max(text_row), count(*) - count(text_row) FROM documents "
        "WHERE doc_id IN (SELECT unnest(?::VARCHAR[])) AND file_id IS NOT NULL GROUP BY file_id",
        [list(doc_ids)],
    ).fetchall()
    if not rows or any(r[3] for r in rows):
        return None, None, [int(r[0]) for r in rows]
    return min(int(r[1]) for r in rows), max(int(r[2]) for r in rows), [int(r[0]) for r in rows]


def fetch_texts(con: duckdb.DuckDBPyConnection, doc_ids: list[str]) -> dict[str, str]:
    """{doc_id: text} for `doc_ids`, reading only the files that hold them."""
    if not doc_ids:
        return {}
    lo, hi, file_ids = _rows_and_files(con, doc_ids)
    sql = text_sql(con, file_ids=file_ids, row_range=None if lo is None else (lo, hi))
    try:
        rows = con.execute(
            f"SELECT t.doc_id, t.text FROM {sql} t WHERE t.doc_id IN (SELECT unnest(?::VARCHAR[]))",
            [list(doc_ids)],
        ).fetchall()
    except duckdb.Error as exc:
        raise TextSourceChanged(
            f"the documents' text cannot be read: {remote_reason(str(exc))}"
        ) from exc
    return dict(rows)

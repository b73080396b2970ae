"""Ingest documents into a workspace: atomic, idempotent, inside DuckDB's readers.

`ingest()` stages every input row in a temporary DuckDB table, validates it (missing text,
wrong types, unparsable dates, conflicting ids), counts tokens with the workspace tokenizer
over Arrow batches, and inserts only documents whose id is new. All of it happens in one
`Workspace.write()` job, so a failure anywhere leaves the published workspace unchanged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from analytics.db import one, scalar
from analytics.errors import IngestError
from analytics.ingest import diagnose
from analytics.ingest.formats import (
    LEN_BUCKET_SQL,
    check_relation,
    detect_common_format,
    expand_inputs,
    file_stats,
    hf_arrow_files,
    open_relation,
    remote_reason,
)
from analytics.ingest.limits import IngestLimits
from analytics.lake import is_remote
from analytics.tokenizer import get_token_counter
from analytics.workspace import DEFAULT_TOKENIZER, Workspace, set_meta

Progress = Callable[[str, int, int], None]

DEFAULT_FIELDS = {
    "id": ["id", "doc_id", "_id"],
    "date": ["date", "created", "published", "timestamp"],
    "url": ["url", "uri", "link"],
    "domain": ["domain"],
    "lang": ["lang", "language"],
    "title": ["title"],
    "source": ["source"],
}
STRING_TYPES = {"VARCHAR"}


@dataclass
class IngestReport:
    source: str | None
    format: str
    files: list[str]
    n_read: int
    n_added: int
    n_skipped_existing: int
    n_skipped_empty: int
    n_duplicate_in_input: int
    n_tokens_added: int
    tokenizer: str
    fields: dict[str, str | None] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _q(name: str) -> str:
    """Quote an identifier that came from a file's column names."""
    return '"' + name.replace('"', '""') + '"'


def _pick(columns: list[str], option: str | None, role: str, first_file: Path) -> str | None:
    if option:
        if option not in columns:
            raise IngestError(
                f"{first_file}: no field {option!r} (given as the {role} field); "
                f"fields are: {', '.join(columns)}."
            )
        return option
    for candidate in DEFAULT_FIELDS.get(role, []):
        if candidate in columns:
            return candidate
    return None


def _files_digest(stats: list[tuple[str, int, str]]) -> str:
    h = hashlib.sha256()
    for uri, size, mtime in stats:
        h.update(f"{uri}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()


def _reader_error(
    exc: duckdb.Error, files: list[Path], fmt: str | None, limits: IngestLimits | None = None
) -> IngestError:
    """Translate a DuckDB reader error into one message naming the file and line."""
    text = str(exc).strip()
    culprit = next((f for f in files if str(f) in text or Path(str(f)).name in text), None)
    candidates = [culprit] if culprit else files
    for f in candidates:
        if is_remote(str(f)):
            return IngestError(f"{f}: cannot be read as {fmt or 'input'}: {remote_reason(text)}")
        f = Path(f)
        if f.is_dir():
            continue
        if fmt == "jsonl":
            bad = diagnose.first_bad_json_line(f, limits)
            if bad:
                return IngestError(f"{f}: line {bad[0]}: {bad[1]}.")
        else:
            line = diagnose.first_bad_utf8_line(f, limits)
            if line:
                return IngestError(f"{f}: line {line}: bytes that are not valid UTF-8.")
    where = culprit or (files[0] if len(files) == 1 else "input")
    first = text.splitlines()[0] if text else type(exc).__name__
    return IngestError(f"{where}: cannot be read as {fmt or 'input'}: {first}")


def ingest(
    workspace: Workspace,
    paths: list[str],
    *,
    source: str | None = None,
    text_field: str = "text",
    id_field: str | None = None,
    date_field: str | None = None,
    url_field: str | None = None,
    domain_field: str | None = None,
    lang_field: str | None = None,
    title_field: str | None = None,
    source_field: str | None = None,
    domain: str | None = None,
    lang: str | None = None,
    copy_text: bool = False,
    progress: Progress | None = None,
    batch_size: int = 20_000,
    on_wait=None,
    limits: IngestLimits | None = None,
) -> IngestReport:
    """Register `paths` (files, globs, HF dataset dirs; local or s3/gs/hf/https URIs) as
    documents of `source`, without copying their text unless `copy_text`.

    The workspace stores per-document metadata and a locator of the text (file + row); the
    files' size and modification time are recorded so a later change is detected. Everything
    up to the commit runs on a private connection without the workspace lock: reading,
    validation, de-duplication and token counting; the commit is one short transaction.
    Re-ingesting the same content adds nothing; any error leaves the workspace unchanged.
    `domain`/`lang` set a constant for all documents when the input has no such field.
    `limits` bounds record size, decompression, nesting and spill (default: the
    environment's `$MIXSCOPE_MAX_*`, else IngestLimits' defaults); a file beyond one is
    refused before its content is loaded.
    """
    limits = limits or IngestLimits.from_env()
    if not paths:
        raise IngestError("no input files given.")
    if not workspace.exists:
        workspace.initialise()
    remote = any(is_remote(p) for p in paths)
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    con = workspace.connect(read_only=False, remote=remote)
    try:
        con.execute(f"SET max_temp_directory_size='{int(limits.max_temp_bytes)}B'")
        files = expand_inputs(con, paths)
        fmt = detect_common_format(files)
        copy_text = copy_text or fmt == "hf"  # Arrow IPC streams are not read back in place
        data_files = [a for f in files for a in hf_arrow_files(f)] if fmt == "hf" else files
        stats = file_stats(con, data_files)
        tokenizer = dict(con.execute("SELECT key, value FROM meta").fetchall()).get(
            "tokenizer", DEFAULT_TOKENIZER
        )
        counter = get_token_counter(tokenizer)
        try:
            rel = open_relation(con, files, fmt, limits)
            check_relation(con, rel, files, fmt, limits)
            columns = list(rel.columns)
            types = {c: str(t) for c, t in zip(rel.columns, rel.types)}
            con.register("_src", rel)
        except duckdb.Error as exc:
            raise _reader_error(exc, files, fmt, limits) from exc

        first = files[0]
        if text_field not in columns:
            raise IngestError(
                f"{first}: no text field {text_field!r}; fields are: "
                f"{', '.join(c for c in columns if c not in ('filename', 'file_row_number'))}. "
                "Pass --text-field NAME."
            )
        if types[text_field] not in STRING_TYPES:
            raise IngestError(
                f"{first}: field {text_field!r} has type {types[text_field]}; expected text "
                "(a string)."
            )
        fields = {
            "text": text_field,
            "id": _pick(columns, id_field, "id", first),
            "date": _pick(columns, date_field, "date", first),
            "url": _pick(columns, url_field, "url", first),
            "domain": _pick(columns, domain_field, "domain", first),
            "lang": _pick(columns, lang_field, "lang", first),
            "title": _pick(columns, title_field, "title", first),
            "source": _pick(columns, source_field, "source", first) if not source else None,
        }
        if not source and not fields["source"]:
            raise IngestError(
                f"{first}: no source name: pass --source NAME (or --source-field FIELD)."
            )
        used = {v for v in fields.values() if v} | {"filename", "file_row_number"}
        extra = [c for c in columns if c not in used]

        def col(role: str, const: str | None = None) -> str:
            name = fields[role]
            if name:
                return f"CAST({_q(name)} AS VARCHAR)"
            return "CAST(? AS VARCHAR)" if const is not None else "NULL::VARCHAR"

        params: list = []
        content_id = f"'sha256:' || substr(sha256({_q(text_field)}), 1, 32)"
        id_expr = col("id") if fields["id"] else content_id
        row_expr = "file_row_number" if "file_row_number" in columns else "NULL::BIGINT"
        select = [
            "filename AS _file",
            f"{row_expr} AS _frow",
            f"{_q(text_field)} AS text",
            f"strlen({_q(text_field)}) AS n_bytes",
            f"length({_q(text_field)}) AS n_chars",
            # blank: nothing but whitespace (anchored, so it stops at the first other char)
            f"regexp_full_match({_q(text_field)}, '\\s*') AS _blank",
            f"{col('id')} AS given_id",
            f"{id_expr} AS doc_id",
        ]
        if fields["source"]:
            select.append(f"{col('source')} AS source")
        else:
            select.append("CAST(? AS VARCHAR) AS source")
            params.append(source)
        for role, const in (("domain", domain), ("lang", lang)):
            select.append(f"{col(role, const)} AS {role}")
            if not fields[role] and const is not None:
                params.append(const)
        select.append(f"{col('url')} AS url")
        select.append(f"{col('title')} AS title")
        if fields["date"]:
            d = _q(fields["date"])
            dtype = types[fields["date"]]
            if dtype in ("BIGINT", "INTEGER", "SMALLINT"):
                select.append(
                    f"CASE WHEN {d} BETWEEN 1 AND 9999 THEN make_date({d}, 1, 1) END AS date"
                )
            else:
                select.append(
                    f"COALESCE(TRY_CAST({d} AS DATE), "
                    f"TRY_CAST(TRY_CAST({d} AS TIMESTAMPTZ) AS DATE)) AS date"
                )
            select.append(f"CAST({d} AS VARCHAR) AS _raw_date")
        else:
            select.append("NULL::DATE AS date")
            select.append("NULL::VARCHAR AS _raw_date")
        if extra:
            packed = ", ".join(f"{_q(c)} := {_q(c)}" for c in extra)
            select.append(f"to_json(struct_pack({packed})) AS metadata")
        else:
            select.append("NULL::JSON AS metadata")
        if progress:
            progress("read", 0, 0)
        try:
            con.execute(f"CREATE TEMP TABLE _stage AS SELECT {', '.join(select)} FROM _src", params)
        except duckdb.Error as exc:
            raise _reader_error(exc, files, fmt, limits) from exc
        n_read, n_empty, n_unique = _validate_stage(con, fields, fmt, files, limits)
        if progress:
            progress("read", n_read, n_read)
            progress("dedupe", 0, n_read)
        has_dups = n_unique != n_read - n_empty
        # One row per doc id (its first occurrence); the window only runs when the input
        # really holds duplicates. Then keep the ids the workspace does not have yet.
        if not has_dups:
            keep = "SELECT rowid AS _row, doc_id FROM temp._stage WHERE NOT _blank"
        else:
            keep = """SELECT _row, doc_id FROM (
                          SELECT rowid AS _row, doc_id,
                                 row_number() OVER (PARTITION BY doc_id ORDER BY rowid) AS rn
                          FROM temp._stage WHERE NOT _blank)
                      WHERE rn = 1"""
        con.execute(
            f"CREATE TEMP TABLE _new AS SELECT k._row FROM ({keep}) k "
            "ANTI JOIN documents USING (doc_id)"
        )
        n_new = scalar(con, "SELECT count(*) FROM temp._new")
        if progress:
            progress("dedupe", n_read, n_read)
            progress("tokenize", 0, n_new)
        rows: list[np.ndarray] = []
        counts: list[np.ndarray] = []
        done = 0
        text_sql = (
            "SELECT s.rowid AS _row, s.text FROM temp._stage s SEMI JOIN temp._new n "
            "ON s.rowid = n._row"
        )
        reader = con.sql(text_sql).to_arrow_reader(batch_size)
        for batch in reader:
            rows.append(batch.column(0).to_numpy())
            counts.append(counter.count(batch.column(1).to_pylist()))
            done += batch.num_rows
            if progress:
                progress("tokenize", done, n_new)
        tok = pa.table(
            {
                "_row": np.concatenate(rows) if rows else np.zeros(0, np.int64),
                "n_tokens": np.concatenate(counts) if counts else np.zeros(0, np.int64),
            }
        )
        con.register("_tok_src", tok)
        con.execute("CREATE TEMP TABLE _tok AS SELECT * FROM _tok_src")
        con.unregister("_tok_src")
        if progress:
            progress("insert", 0, n_new)
        options = {k: v for k, v in fields.items() if v}
        options["copy_text"] = bool(copy_text)
        options["duplicates_in_input"] = bool(has_dups)
        # Everything but the ids is prepared before the lock: the rows to insert (file index
        # instead of file id) and their rollup. Under the lock only ids committed since the
        # read are checked (ingests after the last one seen, or rows of no ingest).
        seen_ingest = scalar(con, "SELECT COALESCE(max(ingest_id), 0) FROM ingests")
        uris = [s[0] for s in stats]
        con.execute(
            "CREATE TEMP TABLE _files AS SELECT unnest(?::VARCHAR[]) AS uri, "
            "generate_subscripts(?::VARCHAR[], 1) - 1 AS fidx",
            [uris, uris],
        )
        con.execute(
            """CREATE TEMP TABLE _pre AS
               SELECT n.doc_id, n.source, n.domain, n.lang, n.date, n.url, n.title,
                      n.n_bytes, n.n_chars, t.n_tokens, n.metadata, f.fidx, n._frow
               FROM temp._stage n JOIN temp._tok t ON n.rowid = t._row
               JOIN temp._files f ON f.uri = n._file"""
        )
        rollup = f"""SELECT source, domain, lang, year(date) AS year,
                            {LEN_BUCKET_SQL} AS len_bucket, count(*) AS n_docs,
                            sum(n_tokens) AS n_tokens, sum(n_bytes) AS n_bytes,
                            sum(n_chars) AS n_chars
                     FROM {{src}} GROUP BY ALL"""
        con.execute(f"CREATE TEMP TABLE _roll AS {rollup.format(src='temp._pre')}")
        with workspace.write(job="ingest", con=con, on_wait=on_wait):
            ingest_id = scalar(con, "SELECT COALESCE(max(ingest_id), 0) + 1 FROM ingests")
            first_file = scalar(con, "SELECT COALESCE(max(file_id), 0) + 1 FROM ingest_files")
            con.execute(
                "INSERT INTO ingest_files SELECT ? + fidx, ?, uri, ?, ?, ?, f.size, f.mtime, "
                "NULL, ? FROM (SELECT unnest(?::VARCHAR[]) AS uri, unnest(?::BIGINT[]) AS size, "
                "unnest(?::VARCHAR[]) AS mtime, "
                "generate_subscripts(?::VARCHAR[], 1) - 1 AS fidx) f",
                [
                    first_file,
                    ingest_id,
                    fmt,
                    text_field,
                    id_expr,
                    bool(copy_text),
                    uris,
                    [s[1] for s in stats],
                    [s[2] for s in stats],
                    uris,
                ],
            )
            # Another writer may have committed the same ids since the read: keep only new.
            late = scalar(
                con,
                "SELECT count(*) FROM temp._pre p SEMI JOIN (SELECT doc_id FROM documents "
                "WHERE ingest_id > ? OR ingest_id IS NULL) d ON d.doc_id = p.doc_id",
                [seen_ingest],
            )
            src = "temp._pre"
            if late:
                con.execute(
                    "CREATE TEMP TABLE _ins AS SELECT * FROM temp._pre p "
                    "ANTI JOIN documents d ON d.doc_id = p.doc_id"
                )
                src = "temp._ins"
                con.execute(f"CREATE OR REPLACE TEMP TABLE _roll AS {rollup.format(src=src)}")
            con.execute(
                "INSERT INTO documents SELECT doc_id, source, domain, lang, date, url, title, "
                "n_bytes, n_chars, n_tokens, metadata, CAST(? AS BIGINT), ? + fidx, _frow "
                f"FROM {src}",
                [ingest_id, first_file],
            )
            if copy_text:
                con.execute(
                    "INSERT INTO texts SELECT s.doc_id, s.text FROM temp._stage s "
                    f"SEMI JOIN {src} i ON i.doc_id = s.doc_id "
                    "JOIN temp._tok t ON s.rowid = t._row"
                )
            con.execute(
                "INSERT INTO doc_rollup SELECT CAST(? AS BIGINT), * FROM temp._roll", [ingest_id]
            )
            n_new, n_tokens = one(
                con, "SELECT COALESCE(sum(n_docs), 0), COALESCE(sum(n_tokens), 0) FROM temp._roll"
            )
            con.execute(
                "INSERT INTO ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    ingest_id,
                    source or f"field:{fields['source']}",
                    [str(f) for f in files],
                    fmt,
                    _files_digest(stats),
                    n_read,
                    n_new,
                    int(n_tokens),
                    f"{tokenizer} sha256:{counter.sha256}",
                    json.dumps(options),
                    started,
                    dt.datetime.now(dt.UTC).replace(tzinfo=None),
                ],
            )
            set_meta(con, "tokenizer_sha256", counter.sha256)
            from analytics.text import refresh_text_view  # (text imports ingest.formats)

            refresh_text_view(con)
        if progress:
            progress("insert", n_new, n_new)
    finally:
        workspace.close(con)
    return IngestReport(
        source=source or f"field:{fields['source']}",
        format=fmt or "",
        files=[str(f) for f in files],
        n_read=int(n_read),
        n_added=int(n_new),
        n_skipped_existing=int(n_unique - n_new),
        n_skipped_empty=int(n_empty),
        n_duplicate_in_input=int(n_read - n_empty - n_unique),
        n_tokens_added=int(n_tokens),
        tokenizer=tokenizer,
        fields=fields,
    )


def _validate_stage(
    con: duckdb.DuckDBPyConnection,
    fields: dict,
    fmt: str | None,
    files: list[Path],
    limits: IngestLimits | None = None,
) -> tuple[int, int, int]:
    """Check the staged rows; return (read, blank, distinct ids among the non-blank).

    One aggregate pass counts every problem; only a problem found is then located (which
    file, which line) by a second, targeted query."""
    bad_date = (
        "date IS NULL AND _raw_date IS NOT NULL AND trim(_raw_date) <> ''"
        if fields["date"]
        else "false"
    )
    n, n_blank, n_unique, no_text, no_id, n_ids, no_source, n_bad_date = one(
        con,
        f"""SELECT count(*), count(*) FILTER (WHERE _blank),
                   count(DISTINCT doc_id) FILTER (WHERE NOT _blank),
                   count(*) FILTER (WHERE text IS NULL), count(*) FILTER (WHERE given_id IS NULL),
                   count(DISTINCT given_id), count(*) FILTER (WHERE source IS NULL),
                   count(*) FILTER (WHERE {bad_date})
            FROM temp._stage""",
    )
    if n == 0:
        where = files[0] if len(files) == 1 else "the input"
        raise IngestError(f"{where}: holds no documents.")
    if no_text:
        row = one(con, "SELECT _file FROM temp._stage WHERE text IS NULL LIMIT 1")
        raise IngestError(_missing_message(_as_path(row[0]), fields["text"], fmt, "text", limits))
    if fields["id"]:
        if no_id:
            row = one(con, "SELECT _file FROM temp._stage WHERE given_id IS NULL LIMIT 1")
            raise IngestError(_missing_message(_as_path(row[0]), fields["id"], fmt, "id", limits))
        row = None
        if n_ids < n:  # only then can an id carry two different texts
            row = one(
                con,
                """SELECT given_id, count(*), min(_file), max(_file) FROM temp._stage
                   GROUP BY given_id HAVING count(DISTINCT text) > 1 LIMIT 1""",
            )
        if row:
            raise IngestError(
                f"{row[2]}: id {row[0]!r} (field {fields['id']!r}) appears {row[1]} times "
                "with different texts; ids must be unique."
            )
    if fields["source"] and no_source:
        row = one(con, "SELECT _file FROM temp._stage WHERE source IS NULL LIMIT 1")
        raise IngestError(
            _missing_message(_as_path(row[0]), fields["source"], fmt, "source", limits)
        )
    if n_bad_date:
        row = one(con, f"SELECT _file, _raw_date FROM temp._stage WHERE {bad_date} LIMIT 1")
        raise IngestError(
            f"{row[0]}: field {fields['date']!r} holds {row[1]!r}, which is not a date; "
            "expected ISO dates (YYYY-MM-DD) or timestamps."
        )
    return int(n), int(n_blank), int(n_unique)


def _missing_message(
    path: Path, name: str, fmt: str | None, role: str, limits: IngestLimits | None = None
) -> str:
    if fmt == "jsonl" and not is_remote(str(path)):
        line = diagnose.first_jsonl_line_missing(path, name, limits)
        if line:
            return f"{path}: line {line}: the {role} field {name!r} is missing or null."
    return f"{path}: some records have no {role} field {name!r} (missing or null)."


def _as_path(name: str):
    return name if is_remote(name) else Path(name)

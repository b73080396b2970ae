"""Ingest documents into a workspace: atomic, idempotent, inside DuckDB's readers.

`ingest()` stages every input row's metadata in a temporary DuckDB table (the text itself
only when it is copied or cannot be read back by file + row), validates it (missing text,
wrong types, unparsable dates, conflicting ids), counts tokens with the workspace tokenizer
over Arrow batches (in the staging pass on a first registration of Parquet files, else for
the new rows only), and inserts only documents whose id is new, in one short commit; a
failure anywhere leaves the published workspace unchanged.
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
    Steps: read the sources, stage and validate the rows, keep and count the new ones,
    prepare them, commit."""
    limits = limits or IngestLimits.from_env()
    if not paths:
        raise IngestError("no input files given.")
    if not workspace.exists:
        workspace.initialise()
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    con = workspace.connect(read_only=False, remote=any(is_remote(p) for p in paths))
    try:
        con.execute(f"SET max_temp_directory_size='{int(limits.max_temp_bytes)}B'")
        srcs = _read_sources(con, paths, copy_text)
        tokenizer = _tokenizer_name(con)
        counter = get_token_counter(tokenizer)
        _open_source(con, srcs, limits)
        roles = dict(id=id_field, date=date_field, url=url_field, domain=domain_field,
                     lang=lang_field, title=title_field, source_field=source_field)  # fmt: skip
        fields, extra = _resolve_fields(srcs, text_field, source, **roles)
        if progress:
            progress("read", 0, 0)
        st = _stage_and_validate(
            con, srcs, fields, extra, (source, domain, lang), limits, counter, batch_size
        )
        has_dups = st.n_unique != st.n_read - st.n_empty
        seen_ingest = scalar(con, "SELECT COALESCE(max(ingest_id), 0) FROM ingests")
        n_new = _count_new(con, st, has_dups, counter, text_field, batch_size, progress)
        if progress:
            progress("insert", 0, n_new)
        _prepare_rows(con, srcs.stats, tokens_staged=st.fused)
        options = {k: v for k, v in fields.items() if v}
        options.update(copy_text=bool(srcs.copy_text), duplicates_in_input=bool(has_dups))
        record = _IngestRecord(
            source or f"field:{fields['source']}", text_field, st.id_expr, st.n_read,
            f"{tokenizer} sha256:{counter.sha256}", counter.sha256, options, started, seen_ingest,
        )  # fmt: skip
        n_new, n_tokens = _commit(workspace, con, srcs, record, on_wait=on_wait)
        if progress:
            progress("insert", n_new, n_new)
    finally:
        workspace.close(con)
    return _report(record.source, srcs, st, n_new, n_tokens, tokenizer, fields)


@dataclass
class _Sources:
    """The input files of one ingest and what reading them found."""

    files: list
    fmt: str | None
    copy_text: bool
    #: (uri, size, mtime) of each data file
    stats: list[tuple[str, int, str]]
    columns: list[str] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)
    #: the query that reads them (the relation registered as `_src`)
    sql: str = ""


@dataclass
class _Staged:
    """What staging found: how the tokens are counted and the row counts."""

    id_expr: str
    #: the text is in `_stage` (copied, or not readable back by file + row)
    stage_text: bool
    #: the token counts were made while staging (`_stage.n_tokens`)
    fused: bool
    n_read: int
    n_empty: int
    n_unique: int


def _stage_and_validate(
    con: duckdb.DuckDBPyConnection,
    srcs: _Sources,
    fields: dict[str, str | None],
    extra: list[str],
    consts: tuple[str | None, str | None, str | None],
    limits: IngestLimits,
    counter,
    batch_size: int,
) -> _Staged:
    """Stage the rows (`consts`: the constant source, domain and lang) and validate them.

    The text is staged only where it is copied or cannot be read back by file + row (JSONL,
    CSV). On a first registration of these files the tokens are counted in the staging pass
    (one read of the text); a re-ingest counts only the rows that turn out new."""
    stage_text = srcs.copy_text or "file_row_number" not in srcs.columns
    fused = not stage_text and not _registered(con, srcs.stats)
    id_expr = _stage_rows(
        con, srcs, fields, extra, *consts, stage_text, limits,
        counter=counter if fused else None, batch_size=batch_size,
    )  # fmt: skip
    counts = _validate_stage(
        con, fields, srcs.fmt, srcs.files, limits, text="text" if stage_text else "_th"
    )
    return _Staged(id_expr, stage_text, fused, *counts)


@dataclass
class _IngestRecord:
    """The row of `ingests` (and of `ingest_files`) known before the commit."""

    source: str
    text_field: str
    id_expr: str
    n_read: int
    tokenizer: str
    tokenizer_sha256: str
    options: dict
    started: dt.datetime
    #: the last ingest committed when the new rows were chosen
    seen_ingest: int


def _report(
    source: str,
    srcs: _Sources,
    st: _Staged,
    n_new: int,
    n_tokens: int,
    tokenizer: str,
    fields: dict[str, str | None],
) -> IngestReport:
    return IngestReport(
        source=source,
        format=srcs.fmt or "",
        files=[str(f) for f in srcs.files],
        n_read=int(st.n_read),
        n_added=int(n_new),
        n_skipped_existing=int(st.n_unique - n_new),
        n_skipped_empty=int(st.n_empty),
        n_duplicate_in_input=int(st.n_read - st.n_empty - st.n_unique),
        n_tokens_added=int(n_tokens),
        tokenizer=tokenizer,
        fields=fields,
    )


def _tokenizer_name(con: duckdb.DuckDBPyConnection) -> str:
    """The workspace's tokenizer (meta `tokenizer`, else the default)."""
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    return meta.get("tokenizer", DEFAULT_TOKENIZER)


def _read_sources(con: duckdb.DuckDBPyConnection, paths: list[str], copy_text: bool) -> _Sources:
    """Expand the inputs, detect their format and record their files' sizes and times."""
    files = expand_inputs(con, paths)
    fmt = detect_common_format(files)
    copy_text = copy_text or fmt == "hf"  # Arrow IPC streams are not read back in place
    data_files = [a for f in files for a in hf_arrow_files(f)] if fmt == "hf" else files
    return _Sources(files, fmt, copy_text, file_stats(con, data_files))


def _open_source(con: duckdb.DuckDBPyConnection, srcs: _Sources, limits: IngestLimits) -> None:
    """Open the files as one relation `_src` after checking it against `limits`."""
    try:
        rel = open_relation(con, srcs.files, srcs.fmt, limits)
        check_relation(con, rel, srcs.files, srcs.fmt, limits)
        srcs.columns = list(rel.columns)
        srcs.types = {c: str(t) for c, t in zip(rel.columns, rel.types)}
        srcs.sql = rel.sql_query()
        con.register("_src", rel)
    except duckdb.Error as exc:
        raise _reader_error(exc, srcs.files, srcs.fmt, limits) from exc


def _resolve_fields(
    srcs: _Sources, text_field: str, source: str | None, **options: str | None
) -> tuple[dict[str, str | None], list[str]]:
    """The input field of each role (`options`: the ones given) and the extra columns."""
    columns, types, first = srcs.columns, srcs.types, srcs.files[0]
    if text_field not in columns:
        raise IngestError(
            f"{first}: no text field {text_field!r}; fields are: "
            f"{', '.join(c for c in columns if c not in ('filename', 'file_row_number'))}. "
            "Pass --text-field NAME."
        )
    if types[text_field] not in STRING_TYPES:
        raise IngestError(
            f"{first}: field {text_field!r} has type {types[text_field]}; expected text (a string)."
        )
    fields: dict[str, str | None] = {"text": text_field}
    for role in ("id", "date", "url", "domain", "lang", "title"):
        fields[role] = _pick(columns, options[role], role, first)
    given = options["source_field"]
    fields["source"] = _pick(columns, given, "source", first) if not source else None
    if not source and not fields["source"]:
        raise IngestError(f"{first}: no source name: pass --source NAME (or --source-field FIELD).")
    used = {v for v in fields.values() if v} | {"filename", "file_row_number"}
    return fields, [c for c in columns if c not in used]


def _stage_rows(
    con: duckdb.DuckDBPyConnection,
    srcs: _Sources,
    fields: dict[str, str | None],
    extra: list[str],
    source: str | None,
    domain: str | None,
    lang: str | None,
    stage_text: bool,
    limits: IngestLimits,
    *,
    counter=None,
    batch_size: int = 20_000,
) -> str:
    """Stage every input row's metadata in `temp._stage` (with the text if `stage_text`,
    else its hash `_th`); returns the doc id expression. With a token `counter`, the rows
    stream through Python once and `_stage` also holds their `n_tokens`."""
    types, text_field = srcs.types, fields["text"]

    def col(role: str, const: str | None = None) -> str:
        name = fields[role]
        if name:
            return f"CAST({_q(name)} AS VARCHAR)"
        return "CAST(? AS VARCHAR)" if const is not None else "NULL::VARCHAR"

    params: list = []
    text = _q(text_field)
    content_id = f"'sha256:' || substr(sha256({text}), 1, 32)"
    id_expr = col("id") if fields["id"] else content_id
    row_expr = "file_row_number" if "file_row_number" in srcs.columns else "NULL::BIGINT"
    select = [
        "filename AS _file",
        f"{row_expr} AS _frow",
        f"{text} AS text" if stage_text else f"hash({text}) AS _th",
        f"strlen({text}) AS n_bytes",
        f"length({text}) AS n_chars",
        # blank: nothing but whitespace (anchored, so it stops at the first other char)
        f"regexp_full_match({text}, '\\s*') AS _blank",
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
    select += _date_columns(fields["date"], types)
    if extra:
        packed = ", ".join(f"{_q(c)} := {_q(c)}" for c in extra)
        select.append(f"to_json(struct_pack({packed})) AS metadata")
    else:
        select.append("NULL::JSON AS metadata")
    try:
        if counter is None:
            con.execute(f"CREATE TEMP TABLE _stage AS SELECT {', '.join(select)} FROM _src", params)
        else:
            sql = f"SELECT {', '.join(select)}, {text} AS _text FROM ({srcs.sql})"
            _stage_counted(con, sql, params, counter, batch_size)
    except duckdb.Error as exc:
        raise _reader_error(exc, srcs.files, srcs.fmt, limits) from exc
    return id_expr


def _registered(con: duckdb.DuckDBPyConnection, stats: list[tuple[str, int, str]]) -> bool:
    """Whether any of these files was registered before (by URI)."""
    uris = [s[0] for s in stats]
    return bool(
        scalar(con, "SELECT count(*) FROM ingest_files WHERE list_contains(?, uri)", [uris])
    )


def _stage_counted(
    con: duckdb.DuckDBPyConnection, select: str, params: list, counter, batch_size: int
) -> None:
    """`temp._stage` from the query `select` (whose last column `_text` is the text), with
    `n_tokens` counted over its Arrow batches instead of the text (one pass)."""
    reader_con = con.cursor()  # streams while `con` writes the stage
    try:
        reader = reader_con.execute(select, params).to_arrow_reader(batch_size)
        names = reader.schema.names[:-1] + ["n_tokens"]
        schema = pa.schema([*list(reader.schema)[:-1], pa.field("n_tokens", pa.int64())])

        def batches():
            for batch in reader:
                texts = batch.column(len(names) - 1).fill_null("")
                counts = pa.array(counter.count(texts.to_pylist()), pa.int64())
                yield pa.RecordBatch.from_arrays([*batch.columns[:-1], counts], names=names)

        stream = pa.RecordBatchReader.from_batches(schema, batches())
        con.register("_stage_src", stream)
        try:
            con.execute("CREATE TEMP TABLE _stage AS SELECT * FROM _stage_src")
        finally:
            con.unregister("_stage_src")
    finally:
        reader_con.close()


def _date_columns(name: str | None, types: dict[str, str]) -> list[str]:
    """The staged `date` (parsed) and `_raw_date` (as given) of the date field `name`."""
    if not name:
        return ["NULL::DATE AS date", "NULL::VARCHAR AS _raw_date"]
    d = _q(name)
    if types[name] in ("BIGINT", "INTEGER", "SMALLINT"):
        parsed = f"CASE WHEN {d} BETWEEN 1 AND 9999 THEN make_date({d}, 1, 1) END AS date"
    else:
        parsed = (
            f"COALESCE(TRY_CAST({d} AS DATE), "
            f"TRY_CAST(TRY_CAST({d} AS TIMESTAMPTZ) AS DATE)) AS date"
        )
    return [parsed, f"CAST({d} AS VARCHAR) AS _raw_date"]


def _new_rows(con: duckdb.DuckDBPyConnection, has_dups: bool) -> int:
    """`temp._new`: the staged rows to add (one per doc id, its first occurrence, and only
    ids the workspace does not have yet); returns their number."""
    # the window only runs when the input really holds duplicates
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
    return scalar(con, "SELECT count(*) FROM temp._new")


def _count_new(
    con: duckdb.DuckDBPyConnection,
    st: _Staged,
    has_dups: bool,
    counter,
    text_field: str,
    batch_size: int,
    progress: Progress | None,
) -> int:
    """Choose the new rows and count their tokens unless staging did; returns their number."""
    if progress:
        progress("read", st.n_read, st.n_read)
        progress("dedupe", 0, st.n_read)
    n_new = _new_rows(con, has_dups)
    if progress:
        progress("dedupe", st.n_read, st.n_read)
        progress("tokenize", 0, n_new)
    if not st.fused:
        _token_counts(con, counter, st.stage_text, text_field, n_new, batch_size, progress)
    elif progress:
        progress("tokenize", n_new, n_new)
    return n_new


def _token_counts(
    con: duckdb.DuckDBPyConnection,
    counter,
    stage_text: bool,
    text_field: str,
    n_new: int,
    batch_size: int,
    progress: Progress | None,
) -> None:
    """`temp._tok`: the token count of each new row (by its `_stage` rowid), counted over
    Arrow batches of the staged text or, when the text was not staged, of the source's text
    read again by file and row."""
    if stage_text:
        text_sql = (
            "SELECT s.rowid AS _row, s.text FROM temp._stage s SEMI JOIN temp._new n "
            "ON s.rowid = n._row"
        )
    else:
        text_sql = (
            f"SELECT n._row, s.{_q(text_field)} AS text FROM _src s JOIN ("
            "SELECT st.rowid AS _row, st._file, st._frow FROM temp._stage st "
            "SEMI JOIN temp._new n ON st.rowid = n._row) n "
            "ON s.filename = n._file AND s.file_row_number = n._frow"
        )
    rows: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    done = 0
    for batch in con.sql(text_sql).to_arrow_reader(batch_size):
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


_ROLLUP = f"""SELECT source, domain, lang, year(date) AS year,
                     {LEN_BUCKET_SQL} AS len_bucket, count(*) AS n_docs,
                     sum(n_tokens) AS n_tokens, sum(n_bytes) AS n_bytes,
                     sum(n_chars) AS n_chars
              FROM {{src}} GROUP BY ALL"""


def _prepare_rows(
    con: duckdb.DuckDBPyConnection, stats: list[tuple[str, int, str]], *, tokens_staged: bool
) -> None:
    """Everything but the ids, before the lock: the rows to insert (`temp._pre`, with a file
    index instead of a file id) and their rollup (`temp._roll`). `tokens_staged`: the token
    counts are in `_stage` (else in `_tok`)."""
    tokens = (
        "n.n_tokens FROM temp._stage n JOIN temp._new t ON n.rowid = t._row"
        if tokens_staged
        else "t.n_tokens FROM temp._stage n JOIN temp._tok t ON n.rowid = t._row"
    )
    uris = [s[0] for s in stats]
    con.execute(
        "CREATE TEMP TABLE _files AS SELECT unnest(?::VARCHAR[]) AS uri, "
        "generate_subscripts(?::VARCHAR[], 1) - 1 AS fidx",
        [uris, uris],
    )
    con.execute(
        f"""CREATE TEMP TABLE _pre AS
           SELECT n.doc_id, n.source, n.domain, n.lang, n.date, n.url, n.title,
                  n.n_bytes, n.n_chars, n.metadata, f.fidx, n._frow, {tokens}
           JOIN temp._files f ON f.uri = n._file"""
    )
    con.execute(f"CREATE TEMP TABLE _roll AS {_ROLLUP.format(src='temp._pre')}")


def _commit(
    workspace: Workspace,
    con: duckdb.DuckDBPyConnection,
    srcs: _Sources,
    record: _IngestRecord,
    *,
    on_wait,
) -> tuple[int, int]:
    """Insert the prepared rows in one transaction under the workspace lock; returns (the
    documents added, their tokens)."""
    with workspace.write(job="ingest", con=con, on_wait=on_wait):
        ingest_id = scalar(con, "SELECT COALESCE(max(ingest_id), 0) + 1 FROM ingests")
        first_file = scalar(con, "SELECT COALESCE(max(file_id), 0) + 1 FROM ingest_files")
        _insert_files(con, srcs, record, ingest_id, first_file)
        src = _drop_late(con, record.seen_ingest)
        con.execute(
            "INSERT INTO documents SELECT doc_id, source, domain, lang, date, url, title, "
            "n_bytes, n_chars, n_tokens, metadata, CAST(? AS BIGINT), ? + fidx, _frow "
            f"FROM {src}",
            [ingest_id, first_file],
        )
        if srcs.copy_text:
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
                record.source,
                [str(f) for f in srcs.files],
                srcs.fmt,
                _files_digest(srcs.stats),
                record.n_read,
                n_new,
                int(n_tokens),
                record.tokenizer,
                json.dumps(record.options),
                record.started,
                dt.datetime.now(dt.UTC).replace(tzinfo=None),
            ],
        )
        set_meta(con, "tokenizer_sha256", record.tokenizer_sha256)
        from analytics.text import refresh_text_view  # (text imports ingest.formats)

        refresh_text_view(con)
    return int(n_new), int(n_tokens)


def _insert_files(
    con: duckdb.DuckDBPyConnection,
    srcs: _Sources,
    record: _IngestRecord,
    ingest_id: int,
    first_file: int,
) -> None:
    """The `ingest_files` rows: one per data file, ids from `first_file` on."""
    uris = [s[0] for s in srcs.stats]
    con.execute(
        "INSERT INTO ingest_files SELECT ? + fidx, ?, uri, ?, ?, ?, f.size, f.mtime, "
        "NULL, ? FROM (SELECT unnest(?::VARCHAR[]) AS uri, unnest(?::BIGINT[]) AS size, "
        "unnest(?::VARCHAR[]) AS mtime, "
        "generate_subscripts(?::VARCHAR[], 1) - 1 AS fidx) f",
        [
            first_file,
            ingest_id,
            srcs.fmt,
            record.text_field,
            record.id_expr,
            bool(srcs.copy_text),
            uris,
            [s[1] for s in srcs.stats],
            [s[2] for s in srcs.stats],
            uris,
        ],
    )


def _drop_late(con: duckdb.DuckDBPyConnection, seen_ingest: int) -> str:
    """The table of rows to insert: `temp._pre`, or without the ids another writer committed
    since the read (only ingests after `seen_ingest`, or rows of no ingest, are checked);
    `temp._roll` follows."""
    late = scalar(
        con,
        "SELECT count(*) FROM temp._pre p SEMI JOIN (SELECT doc_id FROM documents "
        "WHERE ingest_id > ? OR ingest_id IS NULL) d ON d.doc_id = p.doc_id",
        [seen_ingest],
    )
    if not late:
        return "temp._pre"
    con.execute(
        "CREATE TEMP TABLE _ins AS SELECT * FROM temp._pre p "
        "ANTI JOIN documents d ON d.doc_id = p.doc_id"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE _roll AS {_ROLLUP.format(src='temp._ins')}")
    return "temp._ins"


def _validate_stage(
    con: duckdb.DuckDBPyConnection,
    fields: dict,
    fmt: str | None,
    files: list[Path],
    limits: IngestLimits | None = None,
    *,
    text: str = "text",
) -> tuple[int, int, int]:
    """Check the staged rows; return (read, blank, distinct ids among the non-blank).
    `text`: the staged column that tells texts apart (the text, or its hash `_th`).

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
                   count(*) FILTER (WHERE n_bytes IS NULL),
                   count(*) FILTER (WHERE given_id IS NULL),
                   count(DISTINCT given_id), count(*) FILTER (WHERE source IS NULL),
                   count(*) FILTER (WHERE {bad_date})
            FROM temp._stage""",
    )
    if n == 0:
        where = files[0] if len(files) == 1 else "the input"
        raise IngestError(f"{where}: holds no documents.")
    if no_text:
        row = one(con, "SELECT _file FROM temp._stage WHERE n_bytes IS NULL LIMIT 1")
        raise IngestError(_missing_message(_as_path(row[0]), fields["text"], fmt, "text", limits))
    if fields["id"]:
        if no_id:
            row = one(con, "SELECT _file FROM temp._stage WHERE given_id IS NULL LIMIT 1")
            raise IngestError(_missing_message(_as_path(row[0]), fields["id"], fmt, "id", limits))
        row = None
        if n_ids < n:  # only then can an id carry two different texts
            row = one(
                con,
                f"""SELECT given_id, count(*), min(_file), max(_file) FROM temp._stage
                   GROUP BY given_id HAVING count(DISTINCT {text}) > 1 LIMIT 1""",
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

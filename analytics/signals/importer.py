"""Import per-document scores and tags computed elsewhere as signals of the workspace.

Formats (every file is read by DuckDB, so globs, .gz and remote paths s3:// gs:// hf://
https:// work as they do for ingest):

* ``dolma-attributes``: Dolma attribute files, JSONL(.gz), one line per document
  ``{"id": ..., "attributes": {"<experiment>__<tagger>__<attr>": [[start, end, score], ...]}}``.
  Every attribute becomes a DOUBLE column; its spans are reduced to one value per document
  (``reduce``: ``weighted`` = mean of the span scores weighted by span length in characters,
  which for the usual document-level attribute (one span) is that span's score; ``mean``,
  ``max``, ``min``, ``sum``, ``first``, ``count`` = number of spans).
* ``rpv2``: RedPajama-V2 quality signals, JSONL(.gz) ``{"id": ..., "quality_signals":
  {"ccnet_perplexity": [[0, 1234, 312.5]], "rps_lines_...": [[s, e, v], ...]}}``: the same
  span layout as Dolma's, reduced the same way.
* ``datatrove``: documents written by datatrove's JsonlWriter / ParquetWriter
  (``{"text", "id", "media", "metadata": {...}}``, e.g. the output or the exclusion writer of
  a filter step): every scalar field of ``metadata`` becomes a column (numbers, booleans,
  strings such as ``filter_reason``).
* ``parquet``: any table (Parquet; also CSV or JSONL by extension) with a key column: every
  other scalar column becomes a column; a table of keys alone (e.g. RedPajama-V2's
  duplicates files, a list of ids to drop) gives one BOOLEAN column ``<name>_listed``, true
  for the listed documents (NULL for the others).

Keys: ``key`` names the field holding the document id (default ``id``; ``doc_id`` for
parquet), matched against the workspace's ``doc_id``; or ``FILE,ROW`` names two fields, a
corpus file (its URI as ingested, or a path suffix such as the base name) and a 0-based row in
that file, matched against the text locators of ingest.

Column names: ``<name>_<field>`` with the field lower-cased and non-alphanumerics folded to
``_`` (for Dolma attributes, the part after the last ``__``, unless two attributes share it).

Everything happens in the caller's transaction: a bad file, no matching key (or, with
``strict``, any unmatched key), a duplicate key, or a clashing name raise SignalError and
nothing is committed.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from analytics.signals.base import Column, SignalError, canonical_json
from analytics.signals.external import check_columns, check_new_name, define, record_throughput

FORMATS = ("dolma-attributes", "rpv2", "datatrove", "parquet")
REDUCERS = ("weighted", "mean", "max", "min", "sum", "first", "count")
_SPAN_FIELD = {"dolma-attributes": "attributes", "rpv2": "quality_signals"}
_SCALAR = {
    "BOOLEAN": "BOOLEAN",
    "TINYINT": "BIGINT",
    "SMALLINT": "BIGINT",
    "INTEGER": "BIGINT",
    "BIGINT": "BIGINT",
    "UTINYINT": "BIGINT",
    "USMALLINT": "BIGINT",
    "UINTEGER": "BIGINT",
    "UBIGINT": "DOUBLE",
    "HUGEINT": "DOUBLE",
    "FLOAT": "DOUBLE",
    "DOUBLE": "DOUBLE",
    "VARCHAR": "VARCHAR",
}


class ImportError_(SignalError):
    """A signal file that cannot be imported."""


@dataclass
class ImportResult:
    name: str
    version: str
    columns: list[str]
    rows: int  # rows in the file(s)
    matched: int  # rows whose key matched a document
    n_docs: int  # documents of the workspace
    seconds: float
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def unmatched(self) -> int:
        return self.rows - self.matched


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fold(text: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]+", "_", text.lower())).strip("_")


def _kind(path: str) -> str:
    p = path.lower()
    for ext in (".gz", ".zst", ".zstd"):
        if p.endswith(ext):
            p = p[: -len(ext)]
    if p.endswith(".parquet") or p.endswith(".pq"):
        return "parquet"
    if p.endswith(".csv") or p.endswith(".tsv"):
        return "csv"
    return "json"


def _reader(path: str, kind: str, columns: dict[str, str] | None = None) -> str:
    """A DuckDB table function reading `path` (a literal: table functions take no parameters
    in every position; the path is quoted, never interpreted)."""
    if kind == "parquet":
        return f"read_parquet({_lit(path)}, filename='_file')"
    if kind == "csv":
        return f"read_csv({_lit(path)}, header=true, filename='_file')"
    cols = ""
    if columns:
        cols = ", columns={" + ", ".join(f"{_lit(k)}: {_lit(v)}" for k, v in columns.items()) + "}"
    return f"read_json({_lit(path)}, format='newline_delimited', filename='_file'{cols})"


def _first_bad_line(path: str) -> str | None:
    """'FILE line N: what' of the first line of a local JSONL(.gz) file that is not a JSON
    object (None when every line parses or the file is not local)."""
    import glob

    files = sorted(glob.glob(path)) if any(c in path for c in "*?[") else [path]
    for f in files:
        p = Path(f)
        if not p.is_file():
            return None
        opener = gzip.open if f.endswith(".gz") else open
        with opener(p, "rt", encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    return f"{f} line {n}: not valid JSON ({exc.msg} at column {exc.colno})"
                if not isinstance(obj, dict):
                    return f"{f} line {n}: expected a JSON object, got {type(obj).__name__}"
    return None


def _read_error(path: str, kind: str, exc: Exception) -> ImportError_:
    if kind == "json":
        bad = _first_bad_line(path)
        if bad:
            return ImportError_(bad)
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    from analytics.lake import is_remote

    if is_remote(path):
        from analytics.ingest.formats import remote_reason

        msg = remote_reason(str(exc))
    return ImportError_(f"{path}: cannot be read as {kind}: {msg}")


def _stage(con: duckdb.DuckDBPyConnection, sql: str, path: str, kind: str) -> int:
    """CREATE TEMP TABLE _sig_import AS `sql` (with a `_line` number); return its rows."""
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _sig_import AS {sql}")
    except duckdb.Error as exc:
        raise _read_error(path, kind, exc) from None
    return int(con.execute("SELECT count(*) FROM _sig_import").fetchall()[0][0])


def _where(con: duckdb.DuckDBPyConnection, path: str, line: int | None, kind: str) -> str:
    """'FILE line N' of the staged row numbered `line` (rows are numbered in reading order
    across the files of a glob; N counts within its own file)."""
    if line is None:
        return path
    got = con.execute(
        "SELECT _file, ? - (SELECT min(_line) FROM _sig_import s WHERE s._file = i._file) + 1 "
        "FROM _sig_import i WHERE _line = ?",
        [line, line],
    ).fetchone()
    where, n = (got[0], got[1]) if got else (path, line)
    return f"{where} {'line' if kind == 'json' else 'row'} {n}"


def _span_columns(
    con: duckdb.DuckDBPyConnection, path: str, fmt: str, reduce: str
) -> list[tuple[str, str, str, str]]:
    """(source key, SQL expression over the staged spans, DuckDB type, description) per span
    attribute, after checking that every value has the span layout. Replaces the staged
    JSON `v` by columns `_j<n>` (the attribute's JSON) and `_s<n>` (its spans as DOUBLE[][])."""
    keys = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT unnest(json_keys(v)) AS k FROM _sig_import WHERE v IS NOT NULL "
            "ORDER BY k"
        ).fetchall()
    ]
    what = _SPAN_FIELD[fmt]
    if not keys:
        raise ImportError_(f"{path}: no line has a non-empty {what!r} object")
    for key in keys:
        if '"' in key or "\\" in key:
            raise ImportError_(f"{path}: {what} name {key!r} contains a quote or backslash")
    # one JSON parse per row for all attributes, one cast per attribute
    plist = "[" + ", ".join(_lit('$."' + k + '"') for k in keys) + "]"
    cols = ", ".join(
        f"_j[{n + 1}] AS _j{n}, TRY_CAST(_j[{n + 1}] AS DOUBLE[][]) AS _s{n}"
        for n in range(len(keys))
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _sig_spans AS SELECT * EXCLUDE (v, _j), {cols} "
        f"FROM (SELECT *, json_extract(v, {plist}) AS _j FROM _sig_import)"
    )
    con.execute("DROP TABLE _sig_import")
    con.execute("ALTER TABLE _sig_spans RENAME TO _sig_import")
    out = []
    for n, key in enumerate(keys):
        bad = con.execute(
            f"SELECT _line, CAST(_j{n} AS VARCHAR) FROM _sig_import WHERE _j{n} IS NOT NULL "
            f"AND json_type(_j{n}) <> 'NULL' AND (_s{n} IS NULL OR "
            f"list_bool_or(list_transform(_s{n}, s -> len(s) <> 3))) ORDER BY _line LIMIT 1"
        ).fetchall()
        if bad:
            line, value = bad[0]
            raise ImportError_(
                f"{_where(con, path, line, 'json')}: {what}.{key} = {value[:60]}: expected a list "
                "of [start, end, score] spans"
            )
        sp = f"_s{n}"
        expr = {
            "weighted": f"CASE WHEN len({sp}) = 1 THEN {sp}[1][3] ELSE "
            f"list_sum(list_transform({sp}, s -> (s[2] - s[1]) * s[3])) / "
            f"nullif(list_sum(list_transform({sp}, s -> s[2] - s[1])), 0) END",
            "mean": f"list_avg(list_transform({sp}, s -> s[3]))",
            "max": f"list_max(list_transform({sp}, s -> s[3]))",
            "min": f"list_min(list_transform({sp}, s -> s[3]))",
            "sum": f"list_sum(list_transform({sp}, s -> s[3]))",
            "first": f"{sp}[1][3]",
            "count": f"CAST(len({sp}) AS DOUBLE)",
        }[reduce]
        out.append((key, expr, "DOUBLE", f"{what} {key} ({reduce} of its spans)"))
    return out


def _scalar_columns(
    con: duckdb.DuckDBPyConnection, skip: set[str], prefix: str = ""
) -> list[tuple[str, str, str, str]]:
    """(field, SQL expression, DuckDB type, description) of every scalar column of
    `_sig_import` (besides `skip`), or of the struct `_sig_import.metadata` with `prefix`."""
    out = []
    if prefix:
        typ = con.execute(
            "SELECT data_type FROM duckdb_columns() WHERE table_name = '_sig_import' "
            "AND column_name = 'metadata'"
        ).fetchall()
        if not typ or not str(typ[0][0]).startswith("STRUCT"):
            return _json_columns(con)
        fields = con.execute("SELECT struct_keys(metadata) FROM _sig_import LIMIT 1").fetchall()
        rows = []
        for f in fields[0][0] if fields else []:
            t = con.execute(f"SELECT typeof(metadata.{_q(f)}) FROM _sig_import LIMIT 1")
            rows.append((f, t.fetchall()[0][0]))
    else:
        rows = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = "
            "'_sig_import' ORDER BY column_index"
        ).fetchall()
    for f, t in rows:
        if f in skip or f in ("_line", "_file"):
            continue
        kind = _SCALAR.get(str(t).upper()) or ("DOUBLE" if str(t).startswith("DECIMAL") else None)
        if kind is None:
            continue
        src = f"metadata.{_q(f)}" if prefix else _q(f)
        out.append((f, f"CAST({src} AS {kind})", kind, f"{prefix}{f}"))
    return out


def _json_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, str]]:
    """Columns of a `metadata` JSON value: each key's type decided over all rows."""
    keys = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT unnest(json_keys(CAST(metadata AS JSON))) AS k FROM _sig_import "
            "ORDER BY k"
        ).fetchall()
    ]
    out = []
    for key in keys:
        if '"' in key or "\\" in key:
            continue
        jpath = '$."' + key + '"'
        types = {
            r[0]
            for r in con.execute(
                "SELECT DISTINCT json_type(json_extract(CAST(metadata AS JSON), ?)) "
                "FROM _sig_import",
                [jpath],
            ).fetchall()
        } - {None, "NULL"}
        if not types:
            continue
        if types <= {"BIGINT", "UBIGINT"}:
            kind = "BIGINT"
        elif types <= {"BIGINT", "UBIGINT", "DOUBLE"}:
            kind = "DOUBLE"
        elif types == {"BOOLEAN"}:
            kind = "BOOLEAN"
        elif types == {"VARCHAR"}:
            kind = "VARCHAR"
        else:
            continue  # lists / objects / mixed: not a per-document scalar
        expr = (
            f"json_extract_string(CAST(metadata AS JSON), {_lit(jpath)})"
            if kind == "VARCHAR"
            else f"CAST(json_extract(CAST(metadata AS JSON), {_lit(jpath)}) AS {kind})"
        )
        out.append((key, expr, kind, f"metadata.{key}"))
    return out


def _column_names(name: str, fields: list[str], fmt: str) -> list[str]:
    short = [f.rsplit("__", 1)[-1] for f in fields] if fmt in _SPAN_FIELD else list(fields)
    folded = [_fold(s) for s in short]
    if fmt in _SPAN_FIELD and len(set(folded)) < len(folded):
        folded = [_fold(f) for f in fields]
    names = [f"{name}_{f}" if f else name for f in folded]
    seen: dict[str, str] = {}
    for col, src in zip(names, fields, strict=True):
        if col in seen:
            raise ImportError_(
                f"fields {seen[col]!r} and {src!r} both become column {col!r}; rename one"
            )
        seen[col] = src
    return names


def _match(
    con: duckdb.DuckDBPyConnection, path: str, keys: list[str], kind: str
) -> tuple[str, int]:
    """SQL of `_sig_import` rows joined to their doc_id (column `_doc`), and rows matched."""
    if len(keys) == 1:
        sql = (
            f"SELECT d.doc_id AS _doc, i.* FROM _sig_import i "
            f"JOIN documents d ON d.doc_id = CAST(i.{_q(keys[0])} AS VARCHAR)"
        )
        dup = con.execute(
            f"SELECT CAST({_q(keys[0])} AS VARCHAR) AS k, min(_line), count(*) FROM _sig_import "
            "GROUP BY k HAVING count(*) > 1 ORDER BY 2 LIMIT 1"
        ).fetchall()
        if dup:
            raise ImportError_(
                f"{_where(con, path, dup[0][1], kind)}: key {keys[0]} = {str(dup[0][0])[:60]!r} "
                f"appears {dup[0][2]} times in the input; expected one row per document"
            )
    else:
        fcol, rcol = (_q(k) for k in keys)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _sig_files AS
            SELECT k.f AS f, any_value(x.file_id) AS file_id, count(DISTINCT x.file_id) AS n
            FROM (SELECT DISTINCT CAST({fcol} AS VARCHAR) AS f FROM _sig_import) k
            JOIN ingest_files x ON x.uri = k.f OR (x.uri LIKE '%/' || k.f
                 AND NOT EXISTS (SELECT 1 FROM ingest_files y WHERE y.uri = k.f))
            GROUP BY k.f"""
        )
        amb = con.execute("SELECT f, n FROM _sig_files WHERE n > 1 LIMIT 1").fetchall()
        if amb:
            raise ImportError_(
                f"{path}: file {amb[0][0]!r} matches {amb[0][1]} ingested files; give its "
                "full URI as ingested (mixscope info lists them)"
            )
        sql = (
            "SELECT d.doc_id AS _doc, i.* FROM _sig_import i "
            f"JOIN _sig_files f ON f.f = CAST(i.{fcol} AS VARCHAR) "
            f"JOIN documents d ON d.file_id = f.file_id AND d.text_row = CAST(i.{rcol} AS BIGINT)"
        )
        dup = con.execute(
            f"SELECT _doc, count(*) FROM ({sql}) GROUP BY 1 HAVING count(*) > 1 LIMIT 1"
        ).fetchall()
        if dup:
            raise ImportError_(
                f"{path}: document {dup[0][0]!r} appears {dup[0][1]} times; expected one row "
                "per (file, row)"
            )
    matched = int(con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0])
    return sql, matched


def _checked_keys(
    con: duckdb.DuckDBPyConnection,
    path: str,
    *,
    format: str,  # noqa: A002 - the CLI's word
    name: str,
    key: str | None,
    reduce: str,
    replace: bool,
) -> list[str]:
    """The key field names, once the arguments, the name and the workspace are checked."""
    if format not in FORMATS:
        raise ImportError_(f"--format {format!r}: expected one of {', '.join(FORMATS)}")
    if reduce not in REDUCERS:
        raise ImportError_(f"--reduce {reduce!r}: expected one of {', '.join(REDUCERS)}")
    if "://" not in path and not any(c in path for c in "*?[") and not Path(path).exists():
        raise ImportError_(f"{path}: no such file")
    check_new_name(con, name, "import", replace=replace)
    from analytics.signals.store import table_exists

    if not table_exists(con, "documents"):
        raise ImportError_("the workspace has no documents: ingest a corpus first")
    keys = [k.strip() for k in (key or ("doc_id" if format == "parquet" else "id")).split(",")]
    if len(keys) not in (1, 2) or not all(keys):
        raise ImportError_(f"--key {key!r}: expected a field name, or FILE,ROW (two names)")
    return keys


def _stage_file(
    con: duckdb.DuckDBPyConnection,
    path: str,
    format: str,  # noqa: A002 - the CLI's word
    kind: str,
    keys: list[str],
) -> tuple[int, set[str]]:
    """Read the file into table _sig_import (numbered lines); (rows, fields), once every row
    has its key fields."""
    numbered = "row_number() OVER () AS _line"
    if format in _SPAN_FIELD:
        field_name = _SPAN_FIELD[format]
        cols = {k: "VARCHAR" for k in keys} | {field_name: "JSON"}
        sql = f"SELECT *, {numbered} FROM {_reader(path, kind, cols)}"
        n_rows = _stage(con, sql, path, kind)
        con.execute(f"ALTER TABLE _sig_import RENAME COLUMN {_q(field_name)} TO v")
    else:
        n_rows = _stage(con, f"SELECT *, {numbered} FROM {_reader(path, kind)}", path, kind)
    if n_rows == 0:
        raise ImportError_(f"{path}: holds no rows")
    present = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = '_sig_import'"
        ).fetchall()
    }
    missing = [k for k in keys if k not in present]
    if missing:
        raise ImportError_(
            f"{path}: no field {missing[0]!r} (the --key); fields: "
            + ", ".join(sorted(present - {"_line", "_file", "v"}))
        )
    nulls = con.execute(
        "SELECT min(_line) FROM _sig_import WHERE " + " OR ".join(f"{_q(k)} IS NULL" for k in keys)
    ).fetchall()[0][0]
    if nulls is not None:
        raise ImportError_(
            f"{_where(con, path, nulls, kind)}: the key field {'/'.join(keys)} is missing"
        )
    return n_rows, present


def _value_specs(
    con: duckdb.DuckDBPyConnection,
    path: str,
    format: str,  # noqa: A002 - the CLI's word
    reduce: str,
    keys: list[str],
    present: set[str],
) -> list[tuple[str, str, str, str]]:
    """(name, SQL expression, type, description) of each value column to import."""
    if format in _SPAN_FIELD:
        specs = _span_columns(con, path, format, reduce)
    elif format == "datatrove":
        if "metadata" not in present:
            raise ImportError_(
                f"{path}: no 'metadata' field; expected documents written by a datatrove "
                "writer ({text, id, metadata})"
            )
        specs = _scalar_columns(con, set(keys), prefix="metadata.")
    else:
        specs = _scalar_columns(con, set(keys))
    if not specs and format == "parquet":
        # a list of ids only (e.g. RedPajama-V2's duplicates files): a tag "listed in the file"
        specs = [("listed", "TRUE", "BOOLEAN", f"listed in {path}")]
    if not specs:
        raise ImportError_(f"{path}: no numeric, boolean or text field to import besides the key")
    return specs


def _check_matched(
    con: duckdb.DuckDBPyConnection,
    path: str,
    keys: list[str],
    *,
    n_rows: int,
    matched: int,
    n_docs: int,
    strict: bool,
) -> None:
    """Refuse an import where no key matches a document (or, with ``strict``, any key not)."""
    if matched == 0:
        sample = con.execute(
            f"SELECT CAST({_q(keys[0])} AS VARCHAR) FROM _sig_import ORDER BY _line LIMIT 1"
        ).fetchall()[0][0]
        raise ImportError_(
            f"{path}: none of its {n_rows:,} keys ({'/'.join(keys)}, e.g. {sample[:60]!r}) "
            f"matches a document of the workspace ({n_docs:,} documents); expected ids as "
            "ingested (--key names the field holding them)"
        )
    if strict and matched < n_rows:
        raise ImportError_(
            f"{path}: only {matched:,} of {n_rows:,} keys match a document ({n_rows - matched:,} "
            "do not) and --strict refuses a partial import"
        )


def _insert_values(
    con: duckdb.DuckDBPyConnection,
    sig: Any,
    specs: list[tuple[str, str, str, str]],
    columns: list[Column],
    match_sql: str,
    version: str,
) -> None:
    """Write the matched rows into the signal's table (file order) and drop the staging."""
    select = ", ".join(f"{s[1]} AS {_q(c.name)}" for s, c in zip(specs, columns, strict=True))
    col_list = ", ".join(_q(c.name) for c in columns)
    con.execute(
        f"INSERT INTO {sig.table} (doc_id, version, {col_list}) "
        f"SELECT _doc, ?, {select} FROM ({match_sql}) "
        f"ORDER BY _line",
        [version],
    )
    from analytics.signals.store import update_catalog

    update_catalog(con, sig)
    for tmp in ("_sig_import", "_sig_files"):
        con.execute(f"DROP TABLE IF EXISTS {tmp}")


def import_signal(
    con: duckdb.DuckDBPyConnection,
    path: str,
    *,
    format: str,  # noqa: A002 - the CLI's word
    name: str,
    key: str | None = None,
    reduce: str = "weighted",
    strict: bool = False,
    replace: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> ImportResult:
    """Import the per-document values of `path` as signal `name` (in `con`'s transaction).

    Raises SignalError (nothing to commit) for an unknown format/reducer, a name that clashes
    (with a built-in signal, an existing one unless `replace`, or a column of another signal),
    a file that cannot be read (file and line where DuckDB or the JSON parser says), a value
    that is not a span list, a duplicate key, no key matching a document, or - with `strict`
    - any key matching no document. Returns what was imported and how many keys matched.
    """
    t0 = time.perf_counter()
    path = str(path)
    keys = _checked_keys(
        con, path, format=format, name=name, key=key, reduce=reduce, replace=replace
    )
    kind = "json" if format in _SPAN_FIELD else _kind(path)
    if progress:
        progress("reading", 0, 1)
    n_rows, present = _stage_file(con, path, format, kind, keys)
    specs = _value_specs(con, path, format, reduce, keys, present)
    names = _column_names(name, [s[0] for s in specs], format)
    columns = [Column(n, s[2], s[3]) for n, s in zip(names, specs, strict=True)]
    check_columns(name, columns)

    if progress:
        progress("matching keys", 0, n_rows)
    match_sql, matched = _match(con, path, keys, kind)
    n_docs = int(con.execute("SELECT count(*) FROM documents").fetchall()[0][0])
    _check_matched(con, path, keys, n_rows=n_rows, matched=matched, n_docs=n_docs, strict=strict)
    imported_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    provenance = {
        "source": path,
        "format": format,
        "key": ",".join(keys),
        "reduce": reduce if format in _SPAN_FIELD else None,
        "imported_at": imported_at,
        "rows": n_rows,
        "matched": matched,
    }
    version = "import." + hashlib.sha1(canonical_json(provenance).encode()).hexdigest()[:10]
    sig = define(
        con,
        name=name,
        origin="import",
        version=version,
        columns=columns,
        params=provenance,
        provenance=provenance,
    )
    _insert_values(con, sig, specs, columns, match_sql, version)
    seconds = time.perf_counter() - t0
    record_throughput(con, name, version, docs=matched, seconds=seconds, device="import")
    if progress:
        progress("matching keys", n_rows, n_rows)
    return ImportResult(
        name=name,
        version=version,
        columns=[c.name for c in columns],
        rows=n_rows,
        matched=matched,
        n_docs=n_docs,
        seconds=seconds,
        provenance=provenance,
    )

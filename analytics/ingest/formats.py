"""Input formats: find files, detect their format, and expose them to DuckDB as a relation.

Every format is read by DuckDB's own readers (JSON, CSV, Parquet) or streamed as Arrow
record batches (Hugging Face `save_to_disk` directories), never row by row in Python.
Registered by name so adding a format is adding one function.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable
from pathlib import Path

import duckdb

from analytics.errors import IngestError
from analytics.ingest import diagnose
from analytics.ingest.limits import EXPANSION_FLOOR, IngestLimits, human
from analytics.lake import is_remote

JSON_EXT = (".jsonl", ".json", ".ndjson")
COMPRESSED = (".gz", ".zst", ".zstd")


def expand_paths(paths: list[str]) -> list[Path]:
    """Expand globs (`**` allowed); every pattern must match and every file must exist."""
    out: list[Path] = []
    for pattern in paths:
        if any(ch in pattern for ch in "*?["):
            matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
            if not matches:
                raise IngestError(f"{pattern}: the pattern matches no file.")
            out.extend(Path(m) for m in matches)
        else:
            p = Path(pattern).expanduser()
            if not p.exists():
                raise IngestError(f"{p}: no such file or directory.")
            out.append(p)
    seen: set[Path] = set()
    unique = []
    for p in out:
        rp = p.resolve()
        if rp not in seen:
            seen.add(rp)
            unique.append(rp)
    return unique


#: Document length bucket of the rollups: floor(log2(n_bytes)) (0 for empty texts).
LEN_BUCKET_SQL = "CAST(floor(log2(greatest(n_bytes, 1))) AS INTEGER)"


def remote_reason(text: str) -> str:
    """A one-line reason for a failed read of a remote object, with what to check."""
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    low = text.lower()
    if "403" in low or "forbidden" in low or "invalidaccesskeyid" in low or "signature" in low:
        return (
            f"access denied ({first}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(or HF_TOKEN / GCS_ACCESS_KEY_ID) in the environment."
        )
    if "404" in low or "not found" in low or "no files found" in low or "nosuchkey" in low:
        return f"no such object or revision ({first})."
    if "could not resolve" in low or "connection" in low or "timed out" in low:
        return f"the store does not answer ({first}); check the URI and AWS_ENDPOINT_URL."
    return first


def expand_inputs(con: duckdb.DuckDBPyConnection, paths: list[str]) -> list:
    """Local paths/globs (as resolved Paths) and remote URIs/globs (as strings, expanded by
    DuckDB's own glob over httpfs); every pattern must match at least one file."""
    out: list = []
    for pattern in paths:
        if not is_remote(pattern):
            out.extend(expand_paths([pattern]))
            continue
        if pattern.lower().startswith(("http://", "https://")):
            out.append(pattern)
            continue
        try:
            found = [r[0] for r in con.execute("SELECT file FROM glob(?)", [pattern]).fetchall()]
        except duckdb.Error as exc:
            raise IngestError(f"{pattern}: cannot be listed: {remote_reason(str(exc))}") from exc
        if not found:
            raise IngestError(f"{pattern}: no such object (the pattern matches no file).")
        out.extend(sorted(found))
    seen: set[str] = set()
    return [f for f in out if not (str(f) in seen or seen.add(str(f)))]


def file_stats(con: duckdb.DuckDBPyConnection, files: list) -> list[tuple[str, int, str]]:
    """(uri, size, last modified) of every file, recorded at registration so that a file
    changed later is detected before its text is read back."""
    uris = [str(f) for f in files]
    try:
        rows = con.execute(
            "SELECT filename, size, CAST(last_modified AS VARCHAR) FROM read_blob(?)", [uris]
        ).fetchall()
    except duckdb.Error as exc:
        culprit = next((u for u in uris if u in str(exc)), uris[0])
        raise IngestError(f"{culprit}: cannot be read: {remote_reason(str(exc))}") from exc
    by_name = {r[0]: (int(r[1]), r[2] or "") for r in rows}
    return [(u, *by_name.get(u, (0, ""))) for u in uris]


def detect_format(path: Path) -> str:
    """One of jsonl, csv, parquet, hf (a `save_to_disk` directory)."""
    if not isinstance(path, Path):
        path = Path(str(path).split("://", 1)[-1].split("?")[0])
    elif path.is_dir():
        if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
            return "hf"
        raise IngestError(
            f"{path}: a directory that is not a Hugging Face `save_to_disk` dataset "
            "(no state.json or dataset_dict.json); pass files or a glob instead."
        )
    name = path.name.lower()
    for ext in COMPRESSED:
        if name.endswith(ext):
            name = name[: -len(ext)]
    if name.endswith(JSON_EXT):
        return "jsonl"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name.endswith(".parquet"):
        return "parquet"
    raise IngestError(
        f"{path}: unknown format; expected .jsonl/.json/.ndjson (optionally .gz/.zst), "
        ".csv, .parquet or a Hugging Face save_to_disk directory."
    )


def _check_files(paths: list[Path], fmt: str, limits: IngestLimits) -> None:
    for p in paths:
        if isinstance(p, Path) and p.is_file():
            if p.stat().st_size == 0:
                raise IngestError(f"{p}: the file is empty (no documents).")
            diagnose.check_file(p, fmt, limits)


def type_depth(t) -> tuple[int, bool]:
    """(nesting levels of a DuckDB column type: a scalar is 0, a list of structs 2; whether
    it holds a JSON value somewhere), without recursion."""
    deepest, has_json = 0, False
    stack = [(t, 0)]
    while stack:
        t, d = stack.pop()
        deepest = max(deepest, d)
        if str(t) == "JSON":
            has_json = True
        if t.id not in ("struct", "list", "array", "map", "union"):
            continue
        for _name, child in t.children:
            if not isinstance(child, int):
                stack.append((child, d + 1))
    return deepest, has_json


def check_relation(
    con: duckdb.DuckDBPyConnection,
    rel: duckdb.DuckDBPyRelation,
    files: list,
    fmt: str,
    limits: IngestLimits,
) -> None:
    """Refuse what the per-file byte checks cannot see: nesting deeper than the JSON depth
    limit (a record is level 1, its nested values add levels), and for Parquet / HF files
    string values longer than the record limit or a dictionary that expands beyond the
    expansion limits. Runs as streaming aggregates (DuckDB keeps dictionary pages
    unexpanded for them), before any row is staged."""
    cols = [c for c in rel.columns if c not in ("filename", "file_row_number")]
    for c, t in zip(rel.columns, rel.types):
        if c not in cols:
            continue
        depth, has_json = type_depth(t)
        if depth + 1 > limits.max_json_depth or (has_json and fmt == "jsonl"):
            local = [f for f in files if isinstance(f, Path)]
            line = culprit = None
            for f in local if fmt == "jsonl" else []:
                line = diagnose.first_too_deep_line(f, limits)
                if line:
                    culprit = f
                    break
            if line or depth + 1 > limits.max_json_depth:
                raise diagnose.depth_error(culprit or files[0], line, limits, column=c)
    if fmt != "parquet":  # HF Arrow streams are uncompressed and read only once
        return
    strings = [c for c, t in zip(rel.columns, rel.types) if c in cols and str(t) == "VARCHAR"]
    if not strings:
        return
    lens = [f"COALESCE(strlen({_q(c)}), 0)" for c in strings]
    longest = f"greatest({', '.join(lens)})" if len(lens) > 1 else lens[0]
    total = " + ".join(lens)
    rows = rel.aggregate(f"filename, max({longest}), sum({total})", "filename").fetchall()
    sizes = {}
    for name, size in (
        con.execute("SELECT filename, size FROM read_blob(?)", [[r[0] for r in rows]]).fetchall()
        if rows
        else []
    ):
        sizes[name] = int(size)
    for name, most, everything in rows:
        if most and most > limits.max_record_bytes:
            where = ""
            if "file_row_number" in rel.columns:
                r = con.execute(
                    f"SELECT file_row_number FROM ({rel.sql_query()}) "
                    f"WHERE filename = ? AND {longest} > ? LIMIT 1",
                    [name, limits.max_record_bytes],
                ).fetchone()
                where = f"row {r[0] + 1}: " if r else ""
            raise IngestError(
                f"{name}: {where}a value of {int(most):,} bytes, longer than the record limit "
                f"of {human(limits.max_record_bytes)}; raise it with "
                f"{IngestLimits.how('max_record_bytes')}."
            )
        size = sizes.get(name, 0)
        everything = int(everything or 0)
        if everything > limits.max_expanded_bytes or (
            everything > EXPANSION_FLOOR and everything > limits.max_expansion_ratio * size
        ):
            raise IngestError(
                f"{name}: refusing a suspected dictionary/compression bomb ({size:,} bytes "
                f"expand to {everything:,} bytes of text; the limits are "
                f"{limits.max_expansion_ratio}x ({IngestLimits.how('max_expansion_ratio')}) "
                f"and {human(limits.max_expanded_bytes)} "
                f"({IngestLimits.how('max_expanded_bytes')}))."
            )


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_list(uris: list[str]) -> str:
    return "[" + ", ".join("'" + str(u).replace("'", "''") + "'" for u in uris) + "]"


def max_object_size(limits: IngestLimits | None = None) -> int:
    """DuckDB's JSON reader buffer for one record: the record limit (lines were measured
    before reading) with room for DuckDB's own accounting, at least the old 64 MiB so that
    files ingested before keep reading back."""
    limits = limits or IngestLimits.from_env()
    return max(64 * 1024 * 1024, 2 * limits.max_record_bytes)


def reader_sql(
    fmt: str, uris: list[str], *, row_numbers: bool = False, limits: IngestLimits | None = None
) -> str:
    """A table function reading `uris` of format `fmt` (jsonl, csv, parquet), with a
    `filename` column (and `file_row_number` for Parquet when `row_numbers`). The same text
    is used at ingest and whenever documents' text is read back, so both see the same rows."""
    files = _sql_list(uris)
    if fmt == "jsonl":
        return (
            f"read_json({files}, format='newline_delimited', union_by_name=true, "
            f"filename=true, maximum_object_size={max_object_size(limits)})"
        )
    if fmt == "csv":
        return (
            f"read_csv({files}, union_by_name=true, filename=true, header=true, "
            f"max_line_size={max_object_size(limits)})"
        )
    if fmt == "parquet":
        rn = ", file_row_number=true" if row_numbers else ""
        return f"read_parquet({files}, union_by_name=true, filename=true{rn})"
    raise IngestError(f"format {fmt!r} cannot be read back from its files; use --copy-text.")


def _reader(fmt: str) -> Callable[..., duckdb.DuckDBPyRelation]:
    def read(
        con: duckdb.DuckDBPyConnection, paths: list, limits: IngestLimits | None = None
    ) -> duckdb.DuckDBPyRelation:
        uris = [str(p) for p in paths]
        return con.sql(f"SELECT * FROM {reader_sql(fmt, uris, row_numbers=True, limits=limits)}")

    return read


_read_jsonl = _reader("jsonl")
_read_csv = _reader("csv")
_read_parquet = _reader("parquet")


def hf_arrow_files(path: Path) -> list[Path]:
    if (path / "dataset_dict.json").exists():
        splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
        files: list[Path] = []
        for split in splits:
            files.extend(hf_arrow_files(path / split))
        return files
    state = json.loads((path / "state.json").read_text())
    return [path / f["filename"] for f in state["_data_files"]]


def _read_hf(
    con: duckdb.DuckDBPyConnection, paths: list[Path], limits: IngestLimits | None = None
) -> duckdb.DuckDBPyRelation:
    import pyarrow as pa

    files = [f for p in paths for f in hf_arrow_files(p)]
    if not files:
        raise IngestError(f"{paths[0]}: the dataset directory lists no data files.")
    schema = None
    for f in files:
        with pa.memory_map(str(f)) as src:
            s = pa.ipc.open_stream(src).schema
        if schema is None:
            schema = s
        elif not s.equals(schema):
            raise IngestError(f"{f}: its columns differ from {files[0]}'s.")
    assert schema is not None
    schema = schema.append(pa.field("filename", pa.string()))

    def batches():
        for f in files:
            with pa.memory_map(str(f)) as src:
                for batch in pa.ipc.open_stream(src):
                    name = pa.array([str(f)] * batch.num_rows, pa.string())
                    yield pa.RecordBatch.from_arrays([*batch.columns, name], schema=schema)

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    con.register("_hf_src", reader)
    return con.view("_hf_src")


READERS: dict[str, Callable[..., duckdb.DuckDBPyRelation]] = {
    "jsonl": _read_jsonl,
    "csv": _read_csv,
    "parquet": _read_parquet,
    "hf": _read_hf,
}


def detect_common_format(paths: list[Path]) -> str:
    """The one format all `paths` share."""
    formats = {detect_format(p) for p in paths}
    if len(formats) != 1:
        raise IngestError(
            f"one ingest takes one format; these paths mix {', '.join(sorted(formats))}."
        )
    return formats.pop()


def open_relation(
    con: duckdb.DuckDBPyConnection,
    paths: list[Path],
    fmt: str,
    limits: IngestLimits | None = None,
) -> duckdb.DuckDBPyRelation:
    """A relation over all `paths` of format `fmt`, after checking files and archives."""
    limits = limits or IngestLimits.from_env()
    _check_files(paths, fmt, limits)
    return READERS[fmt](con, paths, limits)

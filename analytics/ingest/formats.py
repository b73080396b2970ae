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
from analytics.ingest.diagnose import check_compressed
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


def _check_files(paths: list[Path]) -> None:
    for p in paths:
        if isinstance(p, Path) and p.is_file():
            if p.stat().st_size == 0:
                raise IngestError(f"{p}: the file is empty (no documents).")
            if p.name.lower().endswith(COMPRESSED):
                check_compressed(p)


def _sql_list(uris: list[str]) -> str:
    return "[" + ", ".join("'" + str(u).replace("'", "''") + "'" for u in uris) + "]"


def reader_sql(fmt: str, uris: list[str], *, row_numbers: bool = False) -> str:
    """A table function reading `uris` of format `fmt` (jsonl, csv, parquet), with a
    `filename` column (and `file_row_number` for Parquet when `row_numbers`). The same text
    is used at ingest and whenever documents' text is read back, so both see the same rows."""
    files = _sql_list(uris)
    if fmt == "jsonl":
        return (
            f"read_json({files}, format='newline_delimited', union_by_name=true, "
            f"filename=true, maximum_object_size={64 * 1024 * 1024})"
        )
    if fmt == "csv":
        return f"read_csv({files}, union_by_name=true, filename=true, header=true)"
    if fmt == "parquet":
        rn = ", file_row_number=true" if row_numbers else ""
        return f"read_parquet({files}, union_by_name=true, filename=true{rn})"
    raise IngestError(f"format {fmt!r} cannot be read back from its files; use --copy-text.")


def _reader(fmt: str) -> Callable[[duckdb.DuckDBPyConnection, list], duckdb.DuckDBPyRelation]:
    def read(con: duckdb.DuckDBPyConnection, paths: list) -> duckdb.DuckDBPyRelation:
        return con.sql(
            f"SELECT * FROM {reader_sql(fmt, [str(p) for p in paths], row_numbers=True)}"
        )

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


def _read_hf(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> duckdb.DuckDBPyRelation:
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


READERS: dict[str, Callable[[duckdb.DuckDBPyConnection, list[Path]], duckdb.DuckDBPyRelation]] = {
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
    con: duckdb.DuckDBPyConnection, paths: list[Path], fmt: str
) -> duckdb.DuckDBPyRelation:
    """A relation over all `paths` of format `fmt`, after checking files and archives."""
    _check_files(paths)
    return READERS[fmt](con, paths)

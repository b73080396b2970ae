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


def detect_format(path: Path) -> str:
    """One of jsonl, csv, parquet, hf (a `save_to_disk` directory)."""
    if path.is_dir():
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
        if p.is_file():
            if p.stat().st_size == 0:
                raise IngestError(f"{p}: the file is empty (no documents).")
            if p.name.lower().endswith(COMPRESSED):
                check_compressed(p)


def _read_jsonl(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> duckdb.DuckDBPyRelation:
    return con.read_json(
        [str(p) for p in paths],
        format="newline_delimited",
        union_by_name=True,
        filename=True,
        maximum_object_size=64 * 1024 * 1024,
    )


def _read_csv(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> duckdb.DuckDBPyRelation:
    return con.read_csv([str(p) for p in paths], union_by_name=True, filename=True, header=True)


def _read_parquet(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> duckdb.DuckDBPyRelation:
    return con.read_parquet([str(p) for p in paths], union_by_name=True, filename=True)


def _hf_arrow_files(path: Path) -> list[Path]:
    if (path / "dataset_dict.json").exists():
        splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
        files: list[Path] = []
        for split in splits:
            files.extend(_hf_arrow_files(path / split))
        return files
    state = json.loads((path / "state.json").read_text())
    return [path / f["filename"] for f in state["_data_files"]]


def _read_hf(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> duckdb.DuckDBPyRelation:
    import pyarrow as pa

    files = [f for p in paths for f in _hf_arrow_files(p)]
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

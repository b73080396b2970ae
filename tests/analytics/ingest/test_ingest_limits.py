"""Ingest bombs: record size, decompression and dictionary expansion, JSON depth, exact line
numbers, and spill directories. Each refusal names file, line (or row/column) and the limit,
and leaves the workspace's committed snapshot and data files exactly as they were."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from analytics.errors import IngestError
from analytics.ingest import ingest
from analytics.ingest.diagnose import json_depth
from analytics.ingest.limits import IngestLimits, parse_size
from analytics.workspace import Workspace
from tests.conftest import ROOT, fingerprint

SMALL = IngestLimits(max_record_bytes=1000)


@pytest.fixture
def seeded(tmp_path, jsonl_file):
    ws = Workspace(tmp_path / "ws")
    ingest(ws, [str(jsonl_file)], source="web")
    return ws, fingerprint(ws)


def assert_clean(ws: Workspace, before) -> None:
    """Nothing committed, no data file left, no spill directory of this process left."""
    assert fingerprint(ws) == before
    tmp = ws.path / ".tmp"
    assert not [p for p in tmp.iterdir() if p.name.startswith(f"w-{os.getpid()}-")]


def _raw(r) -> bytes:
    return r if isinstance(r, bytes) else json.dumps(r).encode()


def _lines(*records) -> bytes:
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records
    )


# ------------------------------------------------------------------ limits: parsing
def test_sizes_and_sources_of_limits():
    assert parse_size("16MiB") == parse_size("16mb") == parse_size("16M") == 16 * 2**20
    assert parse_size("1.5G") == 3 * 2**29 and parse_size("123") == 123
    env = {"MIXSCOPE_MAX_RECORD_BYTES": "2KiB", "MIXSCOPE_MAX_JSON_DEPTH": "7"}
    lim = IngestLimits.from_env(env)
    assert (lim.max_record_bytes, lim.max_json_depth) == (2048, 7)
    assert lim.max_expansion_ratio == IngestLimits().max_expansion_ratio  # default kept
    # a CLI flag (an override) wins over the environment
    assert IngestLimits.from_env(env, max_record_bytes="1KiB").max_record_bytes == 1024
    with pytest.raises(IngestError, match=r"\$MIXSCOPE_MAX_JSON_DEPTH: 'deep' is not a whole"):
        IngestLimits.from_env({"MIXSCOPE_MAX_JSON_DEPTH": "deep"})
    with pytest.raises(IngestError, match=r"--max-record-bytes: '0' must be at least 1"):
        IngestLimits.from_env({}, max_record_bytes="0")


def test_json_depth_counts_brackets_outside_strings_only():
    assert json_depth(b'{"a": 1}') == 1
    assert json_depth(b'{"a": [1, {"b": [[]]}]}') == 5  # { [ { [ [
    assert json_depth(b'{"a": "[[[[{{{{", "b": "\\"[[["}') == 1  # brackets inside strings
    assert json_depth(b"[" * 100_000 + b"]" * 100_000) == 100_000  # no recursion


# ------------------------------------------------------------------ record size
@pytest.mark.parametrize("suffix", ["", ".gz", ".zst"])
def test_long_line_names_file_line_and_limit(tmp_path, seeded, suffix):
    ws, before = seeded
    raw = _lines({"text": "a"}, b"", b"", {"text": "x" * 5000}, {"text": "b"})
    path = tmp_path / f"long.jsonl{suffix}"
    if suffix == ".gz":
        raw = gzip.compress(raw)
    elif suffix == ".zst":
        raw = zstandard.ZstdCompressor().compress(raw)
    path.write_bytes(raw)
    with pytest.raises(IngestError) as info:
        ingest(ws, [str(path)], source="long", limits=SMALL)
    msg = str(info.value)
    # line 4: the two blank lines count, and decompression changes nothing
    assert msg.startswith(f"{path}: line 4: a record longer than the limit of 1,000 bytes")
    assert "--max-record-bytes" in msg
    assert_clean(ws, before)
    # under a limit that fits, the same file goes in
    assert ingest(ws, [str(path)], source="long", limits=IngestLimits()).n_added == 3


def test_huge_line_without_newline_is_refused_in_bounded_memory(tmp_path, seeded):
    """A sparse 1 GiB file of NUL bytes with no newline: refused once the default limit
    (16 MiB) is passed, long before it could be loaded."""
    ws, before = seeded
    path = tmp_path / "sparse.jsonl"
    with open(path, "wb") as fh:
        fh.write(b'{"text": "ok"}\n')
        fh.truncate(1024**3)
    with pytest.raises(IngestError, match=r"sparse.jsonl: line 2: a record longer than .*16 MiB"):
        ingest(ws, [str(path)], source="s")
    assert_clean(ws, before)


def test_env_limit_applies_to_csv_lines(tmp_path, seeded, monkeypatch):
    ws, before = seeded
    path = tmp_path / "d.csv"
    path.write_text("id,text\n1,short\n2," + "y" * 3000 + "\n")
    monkeypatch.setenv("MIXSCOPE_MAX_RECORD_BYTES", "2KiB")
    with pytest.raises(IngestError, match=r"d.csv: line 3: .*2 KiB \(2,048 bytes\).*RECORD_BYTES"):
        ingest(ws, [str(path)], source="c")
    assert_clean(ws, before)


def test_parquet_value_over_the_record_limit_names_its_row(tmp_path, seeded):
    ws, before = seeded
    texts = ["a", "b", "c" * 1500, "d"]
    pq.write_table(pa.table({"text": texts}), tmp_path / "p.parquet")
    with pytest.raises(IngestError, match=r"p.parquet: row 3: a value of 1,500 bytes"):
        ingest(ws, [str(tmp_path / "p.parquet")], source="p", limits=SMALL)
    assert_clean(ws, before)


@pytest.mark.slow
def test_parquet_dictionary_bomb_is_refused(tmp_path, seeded):
    """150 rows that share one 10 MiB dictionary entry: a file of under 2 KB whose text is
    1.5 GiB. Refused from streaming aggregates, without expanding it."""
    ws, before = seeded
    big = "A" * (10 * 1024**2)
    col = pa.array([big] * 150, pa.large_string()).dictionary_encode()
    path = tmp_path / "bomb.parquet"
    pq.write_table(pa.table({"text": col}), path, compression="zstd", compression_level=19)
    size = path.stat().st_size
    assert size < 2000
    with pytest.raises(IngestError) as info:
        ingest(ws, [str(path)], source="bomb")
    msg = str(info.value)
    assert f"{path}: refusing a suspected dictionary/compression bomb ({size:,} bytes" in msg
    assert f"expand to {150 * len(big):,} bytes" in msg and "1000x" in msg
    assert_clean(ws, before)


# ------------------------------------------------------------------ depth and line numbers
def test_deep_json_names_line_and_limit(tmp_path, seeded):
    ws, before = seeded
    deep = b'{"text": "b", "m": ' + b"[" * 100 + b"]" * 100 + b"}"
    path = tmp_path / "deep.jsonl"
    path.write_bytes(_lines({"text": "a"}, b"", deep))
    with pytest.raises(IngestError, match=r"deep.jsonl: line 3: nested more than 64 levels"):
        ingest(ws, [str(path)], source="d")
    assert_clean(ws, before)
    # 101 levels (the record plus 100 arrays) fit a limit of 101
    assert ingest(ws, [str(path)], source="d", limits=IngestLimits(max_json_depth=101)).n_added


def test_deep_json_of_mixed_types_is_found_too(tmp_path, seeded):
    """A field that is a string in one record and deeply nested in another is typed JSON by
    the reader (no depth in its type): the records themselves are measured."""
    ws, before = seeded
    deep = b'{"text": "b", "m": ' + b'{"k":' * 80 + b"1" + b"}" * 80 + b"}"
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(_lines({"text": "a", "m": "plain"}, deep))
    with pytest.raises(IngestError, match=r"mixed.jsonl: line 2: nested more than 64"):
        ingest(ws, [str(path)], source="m")
    assert_clean(ws, before)


def test_parquet_nesting_over_the_limit_names_the_column(tmp_path, seeded):
    ws, before = seeded
    t = pa.table({"text": ["a"], "m": pa.array([[[1]]], pa.list_(pa.list_(pa.int64())))})
    pq.write_table(t, tmp_path / "n.parquet")
    with pytest.raises(IngestError, match=r"n.parquet: column 'm': nested more than 2 levels"):
        ingest(ws, [str(tmp_path / "n.parquet")], source="n", limits=IngestLimits(max_json_depth=2))
    assert_clean(ws, before)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_lone_surrogate_and_bad_json_name_the_physical_line(tmp_path, seeded, suffix):
    ws, before = seeded
    raw = b'{"text": "a"}\n\n\n{"text": "b"}\n{"text": "c\\ud800"}\n'
    path = tmp_path / f"s.jsonl{suffix}"
    path.write_bytes(gzip.compress(raw) if suffix else raw)
    with pytest.raises(IngestError, match=r"s.jsonl(.gz)?: line 5: .*lone UTF-16 surrogate"):
        ingest(ws, [str(path)], source="s")
    raw = b'{"text": "a"}\n\n\n{"text": "b"}\n\n{"text": broken}\n'
    path.write_bytes(gzip.compress(raw) if suffix else raw)
    with pytest.raises(IngestError, match=r"line 6: invalid JSON"):
        ingest(ws, [str(path)], source="s")
    assert_clean(ws, before)


# ------------------------------------------------------------------ spill directories
def test_spill_dirs_of_dead_processes_are_swept_and_live_ones_kept(tmp_path, seeded):
    ws, before = seeded
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp = ws.path / ".tmp"
    stale = tmp / f"w-{dead.pid}-deadbeef"
    stale.mkdir(parents=True)
    (stale / "duckdb_temp_storage_S32K-0.tmp").write_bytes(b"\0" * 4096)
    stale_sql = tmp / f"sql-{dead.pid}"
    stale_sql.mkdir()
    live = tmp / f"w-{os.getppid()}-cafecafe"  # a process that is alive (our parent)
    live.mkdir()
    path = tmp_path / "more.jsonl"
    path.write_bytes(_lines({"text": "one more"}))
    assert ingest(ws, [str(path)], source="more").n_added == 1  # the next writer succeeds
    assert not stale.exists() and not stale_sql.exists() and live.exists()
    assert fingerprint(ws) != before


def test_cli_flag_limit_is_one_line_and_commits_nothing(tmp_path, seeded):
    ws, before = seeded
    path = tmp_path / "long.jsonl"
    path.write_bytes(_lines({"text": "a"}, {"text": "z" * 3000}))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "ingest", "--source", "x",
         "--max-record-bytes", "1KiB", "--workspace", str(ws.path), "--", str(path)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert f"{path}: line 2: a record longer than the limit of 1 KiB" in lines[0]
    bad = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "ingest", "--source", "x",
         "--max-json-depth", "lots", "--workspace", str(ws.path), "--", str(path)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 2 and "--max-json-depth: 'lots' is not a whole number" in bad.stderr
    assert_clean(ws, before)

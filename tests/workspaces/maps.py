"""A small map workspace (20 demo documents per source), shared by the embed/map CLI, page and
browser tests, and checks of the cluster and selection filter conditions on it.

`small_docs_path()` is the ingested workspace with nothing embedded; `map_path()` a copy with
every document embedded by the fake embedder and one map (default parameters) published.
Both are built once per test session (memoised here: several test modules import them).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from analytics.filters import DocFilter
from analytics.workspace import Workspace
from tests.conftest import ROOT
from tests.workspaces import copy_of  # noqa: F401 (re-exported)

DEMO = ROOT / "data" / "demo_corpus.parquet"
PER_SOURCE = 20
MODEL = "fake"
KEY = "fake__msl128"
N_ALL = 17 * PER_SOURCE + 17  # licenses has 17 documents
_CACHE: dict[str, Path] = {}


def _build_docs(root: Path) -> Path:
    from analytics.ingest import ingest

    src = root / "small.parquet"
    con = duckdb.connect()
    con.execute(
        f"""COPY (
            SELECT id, text, source, domain, lang, date, url, title FROM (
                SELECT *, row_number() OVER (PARTITION BY source ORDER BY id) AS k
                FROM read_parquet('{DEMO}'))
            WHERE k <= {PER_SOURCE}) TO '{src}' (FORMAT parquet)"""
    )
    con.close()
    ws_path = root / "docs"
    ingest(Workspace(ws_path), [str(src)], id_field="id")
    return ws_path


def small_docs_path(tmp_path_factory) -> Path:
    if "docs" not in _CACHE:
        _CACHE["docs"] = _build_docs(tmp_path_factory.mktemp("map_small"))
    return _CACHE["docs"]


def map_path(tmp_path_factory) -> Path:
    if "map" not in _CACHE:
        from analytics.embed import embed_corpus
        from analytics.maps import compute_map, publish_map

        dst = small_docs_path(tmp_path_factory).parent / "mapped"
        shutil.copytree(small_docs_path(tmp_path_factory), dst)
        ws = Workspace(dst)
        embed_corpus(ws, model=MODEL)
        publish_map(ws, compute_map(ws, KEY))
        _CACHE["map"] = dst
    return _CACHE["map"]


def rows(ws, sql, params=()):
    return ws.cursor().execute(sql, list(params)).fetchall()


def count(ws, flt: DocFilter) -> int:
    where, params = flt.where()
    return rows(ws, f"SELECT count(*) FROM documents WHERE {where}", params)[0][0]

"""What the Map and Search pages read, cached so that a rerun recomputes nothing.

Maps and embedding sets are immutable artefacts on disk named by content hashes, so their
cached readers are keyed by (workspace, map id / model key, file identity); queries on the
workspace go through `state.cached` (keyed by the snapshot). Nothing here embeds a corpus or
fits UMAP: the only model call is embedding a search query or a few target texts on demand
(cached by their text).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import streamlit as st

from analytics.errors import MixscopeError
from analytics.filters import DocFilter
from analytics.query import run_query
from dashboard import state

#: at most this many points are drawn (a seeded subset beyond; the page says so)
MAX_DRAW = 60_000
SNIPPET_CHARS = 160
BASE_COLOURS = {"cluster": "Cluster", "source": "Source", "domain": "Domain", "lang": "Language"}
#: sets larger than this (float32 bytes) are searched by streaming the shards, not held in memory
MAX_INDEX_BYTES = 2 * 1024**3


# ---------------------------------------------------------------------- workspace queries
def colour_options(cur: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """column -> label of everything a map can be coloured by: cluster, source, domain,
    language, and every numeric/boolean column of a computed signal."""
    from analytics.mixture.builder import signal_columns

    out = dict(BASE_COLOURS)
    for col, info in signal_columns(cur).items():
        if col not in out:
            out[col] = f"{col} ({info['signal']})"
    return out


def map_points(
    cur: duckdb.DuckDBPyConnection,
    flt: DocFilter | None = None,
    *,
    map_id: str,
    color: str = "cluster",
    snippet_chars: int = SNIPPET_CHARS,
) -> pd.DataFrame:
    """doc_id, cluster, source, color, snippet of the documents of map `map_id` that match
    `flt` (all of them without one). `color` is a key of `colour_options`."""
    from analytics.mixture.builder import signal_columns

    join, params = "", []
    if color == "cluster":
        expr = "c.cluster"
    elif color in ("source", "domain", "lang"):
        expr = f"d.{color}"
    else:
        info = signal_columns(cur).get(color)
        if info is None:
            raise MixscopeError(f"cannot colour the map by {color!r}: not a known column")
        join = f" LEFT JOIN signal_{info['signal']} s ON s.doc_id = c.doc_id AND s.version = ?"
        expr = f's."{color}"'
        params.append(info["version"])
    where, wparams = (flt or DocFilter()).where("d")
    sql = (
        f"SELECT c.doc_id, c.cluster, d.source, {expr} AS color, "
        f"regexp_replace(left(x.text, {int(snippet_chars) * 2}), '\\s+', ' ', 'g') AS snippet "
        f"FROM doc_clusters c JOIN documents d ON d.doc_id = c.doc_id "
        f"JOIN document_text x ON x.doc_id = c.doc_id{join} "
        f"WHERE c.map_id = ? AND {where}"
    )
    df, _ = run_query(cur, sql, [*params, map_id, *wparams], max_rows=10_000_000, timeout_s=120)
    df["snippet"] = df["snippet"].str.slice(0, int(snippet_chars))
    return df


def documents_brief(cur: duckdb.DuckDBPyConnection, *, doc_ids: list[str]) -> pd.DataFrame:
    """doc_id, source, lang, n_tokens, snippet of some documents (for result tables)."""
    if not doc_ids:
        return pd.DataFrame(columns=["doc_id", "source", "lang", "n_tokens", "snippet"])
    df, _ = run_query(
        cur,
        "SELECT doc_id, source, lang, n_tokens, "
        "regexp_replace(left(text, 400), '\\s+', ' ', 'g') AS snippet "
        "FROM documents JOIN document_text USING (doc_id) "
        "WHERE doc_id IN (SELECT unnest(?::VARCHAR[]))",
        [list(doc_ids)],
        max_rows=len(doc_ids),
    )
    df["snippet"] = df["snippet"].str.slice(0, 200)
    return df


def filtered_ids(cur: duckdb.DuckDBPyConnection, flt: DocFilter | None = None) -> list[str]:
    """Doc ids of every document matching `flt`."""
    where, params = (flt or DocFilter()).where("d")
    df, _ = run_query(
        cur, f"SELECT d.doc_id FROM documents d WHERE {where}", params, max_rows=50_000_000,
        timeout_s=120,
    )  # fmt: skip
    return df["doc_id"].tolist()


# ---------------------------------------------------------------------- map artefacts
def _map_stamp(map_id: str) -> int:
    from analytics.maps.compute import maps_root

    f = maps_root(state.workspace()) / map_id / "params.json"
    try:
        return f.stat().st_mtime_ns
    except OSError:
        return 0


@st.cache_data(max_entries=8, show_spinner=False)
def _load_map(ws_path: str, map_id: str, stamp: int):
    from analytics.maps import load_map

    return load_map(ws_path, map_id)


def load_map(map_id: str):
    """The map's MapResult (points, clusters, record), read once per map version."""
    return _load_map(str(state.workspace().path), map_id, _map_stamp(map_id))


def coverage(n_points: int, n_corpus: int) -> str:
    """'all N documents' or 'sample of N of M documents'."""
    if n_points >= n_corpus:
        return f"all {n_points:,} documents"
    return f"sample of {n_points:,} of {n_corpus:,} documents"


@st.cache_data(max_entries=16, show_spinner=False)
def _frame(ws_path: str, map_id: str, stamp: int, snap: tuple, color: str, flt_key: str,
           _flt: DocFilter | None) -> pd.DataFrame:  # fmt: skip
    m = _load_map(ws_path, map_id, stamp)
    info = state.cached(map_points, _flt, map_id=map_id, color=color)
    df = m.points[["doc_id", "x", "y"]].merge(info, on="doc_id", how="inner")
    return df.sort_values("doc_id", kind="stable").reset_index(drop=True)


def map_frame(map_id: str, color: str, flt: DocFilter | None) -> pd.DataFrame:
    """doc_id, x, y, cluster, source, color, snippet of the map's documents matching `flt`."""
    return _frame(
        str(state.workspace().path), map_id, _map_stamp(map_id), state.snapshot_key(), color,
        repr(flt), flt,
    )  # fmt: skip


def draw_subset(df: pd.DataFrame, limit: int = MAX_DRAW, seed: int = 0) -> pd.DataFrame:
    """At most `limit` rows of `df` (a seeded subset; order kept)."""
    if len(df) <= limit:
        return df
    pick = np.sort(np.random.default_rng(seed).choice(len(df), size=limit, replace=False))
    return df.iloc[pick].reset_index(drop=True)


# ---------------------------------------------------------------------- diversity panels
@st.cache_data(max_entries=32, show_spinner=False)
def _diversity(ws_path: str, map_id: str, stamp: int, snap: tuple, by: str) -> pd.DataFrame:
    from analytics.maps import diversity_by

    return diversity_by(state.workspace(), _load_map(ws_path, map_id, stamp), by=by)


def diversity(map_id: str, by: str) -> pd.DataFrame:
    """Per value of `by`: n, cluster entropy, normalised entropy, mean cosine distance."""
    ws = state.workspace()
    return _diversity(str(ws.path), map_id, _map_stamp(map_id), state.snapshot_key(), by)


@st.cache_data(max_entries=32, show_spinner=False)
def _selection_diversity(ws_path: str, map_id: str, stamp: int, ids_key: str,
                         _ids: tuple[str, ...]) -> dict:  # fmt: skip
    from analytics.maps import selection_diversity

    return selection_diversity(state.workspace(), _load_map(ws_path, map_id, stamp), list(_ids))


def selection_diversity(map_id: str, doc_ids: list[str]) -> dict:
    ids = tuple(sorted(doc_ids))
    key = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    return _selection_diversity(str(state.workspace().path), map_id, _map_stamp(map_id), key, ids)


@st.cache_data(max_entries=16, show_spinner=False)
def _near_dups(ws_path: str, map_id: str, stamp: int, threshold: float) -> pd.DataFrame:
    from analytics.maps import near_duplicates

    return near_duplicates(
        state.workspace(), _load_map(ws_path, map_id, stamp), threshold=threshold
    )


def near_duplicates(map_id: str, threshold: float) -> pd.DataFrame:
    """SemDeDup within the map's clusters at `threshold` (one row per mapped document)."""
    return _near_dups(str(state.workspace().path), map_id, _map_stamp(map_id), float(threshold))


@st.cache_data(max_entries=16, show_spinner=False)
def _target(ws_path: str, model_key: str, set_stamp: str, snap: tuple, texts_key: str,
            _texts: tuple[str, ...], by: str, ids_key: str, _ids: tuple[str, ...]):  # fmt: skip
    from analytics.maps import similarity_to_target

    return similarity_to_target(
        state.workspace(), model_key, list(_texts), by=by, doc_ids=list(_ids) or None
    )


def target_similarity(model_key: str, texts: list[str], by: str, doc_ids: list[str]):
    """Per value of `by`: centroid cosine and MMD^2 of the mapped documents to the texts."""
    ids = tuple(sorted(doc_ids))
    return _target(
        str(state.workspace().path), model_key, set_stamp(model_key), state.snapshot_key(),
        _digest(texts), tuple(texts), by, _digest(ids), ids,
    )  # fmt: skip


def _digest(items) -> str:
    return hashlib.sha256(json.dumps(list(items)).encode()).hexdigest()


# ---------------------------------------------------------------------- search
def set_stamp(model_key: str) -> str:
    """Identity of an embedding set's current contents (shard names, sizes, mtimes)."""
    from analytics.embed import EmbeddingSet

    eset = EmbeddingSet.for_workspace(state.workspace(), model_key)
    parts = []
    for p in eset.shard_paths():
        s = p.stat()
        parts.append(f"{p.name}:{s.st_size}:{s.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


@st.cache_resource(max_entries=2, show_spinner="Loading the embeddings ...")
def _index(ws_path: str, model_key: str, stamp: str):
    from analytics.embed import EmbeddingSet
    from analytics.maps import EmbeddingIndex

    eset = EmbeddingSet.for_workspace(ws_path, model_key)
    if eset.count() * int(eset.stored_dim() or 0) * 4 > MAX_INDEX_BYTES:
        return None  # too big to hold: search streams the shards
    return EmbeddingIndex.from_workspace(ws_path, model_key)


def index(model_key: str):
    """An in-memory index of the set (None when the set is too big to hold)."""
    return _index(str(state.workspace().path), model_key, set_stamp(model_key))


@st.cache_data(max_entries=64, show_spinner="Searching ...")
def _search(
    ws_path: str,
    model_key: str,
    stamp: str,
    snap: tuple,
    query: str | None,
    like: str | None,
    k: int,
    flt_key: str,
    _flt: DocFilter | None,
) -> pd.DataFrame:
    from analytics.embed import EmbeddingSet
    from analytics.maps import EmbeddingIndex, MapError, embed_queries, more_like_this, search

    idx = _index(ws_path, model_key, stamp)
    if _flt is None or _flt.is_empty():
        if like is not None:
            res = more_like_this(ws_path, model_key, like, k, index=idx)
        else:
            res = search(ws_path, model_key, query, k=k, index=idx)
    else:  # exact top-k among the documents that match the filter
        eset = EmbeddingSet.for_workspace(ws_path, model_key)
        if like is not None:
            got_ids, got = eset.load([like])
            if not len(got_ids):
                raise MapError(f"document {like!r} has no embedding in set {model_key!r}.")
            q = got[0]
        else:
            if not query or not query.strip():
                raise MapError("the search query is empty; type some words to search for.")
            q = embed_queries(ws_path, model_key, [query])[0]
        ids, X = eset.load(state.cached(filtered_ids, _flt))
        sub = EmbeddingIndex(ids, X, model_key=model_key)
        res = sub.search_vector(q, k=k, exclude=[like] if like else ())
    info = state.cached(documents_brief, doc_ids=res["doc_id"].tolist())
    return res.merge(info, on="doc_id", how="left").reset_index(drop=True)


def search_results(
    model_key: str, *, query: str | None = None, like: str | None = None, k: int = 10,
    flt: DocFilter | None = None,
) -> pd.DataFrame:  # fmt: skip
    """rank, doc_id, score, source, lang, n_tokens, snippet of the `k` documents nearest to
    `query` (or to document `like`), among those matching `flt` when given."""
    flt = None if flt is None or flt.is_empty() else flt
    return _search(
        str(state.workspace().path), model_key, set_stamp(model_key), state.snapshot_key(),
        query, like, int(k), repr(flt), flt,
    )  # fmt: skip


def model_of(model_key: str) -> dict[str, Any]:
    """The manifest of an embedding set (model name, dim, max_seq_length, count...)."""
    from analytics.embed import EmbeddingSet

    return dict(EmbeddingSet.for_workspace(state.workspace(), model_key).manifest() or {})

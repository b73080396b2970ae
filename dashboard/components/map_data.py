"""What the Map and Search pages read, cached so that a rerun recomputes nothing.

The readers live in analytics (``analytics.maps.views``, ``analytics.maps``); this module
only keys their caches. Maps and embedding sets are immutable artefacts on disk named by
content hashes, so their results are keyed by (workspace, map id / model key, file
identity); queries on the workspace go through `state.cached` (keyed by the snapshot).
Nothing here embeds a corpus or fits UMAP: the only model call is embedding a search query
or a few target texts on demand (cached by their text).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

from analytics.filters import DocFilter
from analytics.maps import views
from analytics.maps.views import MAX_DRAW, coverage, draw_subset  # noqa: F401 (page API)
from dashboard import state

#: sets larger than this (float32 bytes) are searched by streaming the shards, not held in memory
MAX_INDEX_BYTES = 2 * 1024**3


def _ws() -> str:
    return str(state.workspace().path)


# ---------------------------------------------------------------------- map artefacts
def _map_stamp(map_id: str) -> int:
    from analytics.maps.compute import maps_root

    f = maps_root(state.workspace()) / map_id / "params.json"
    try:
        return f.stat().st_mtime_ns
    except OSError:
        return 0


def load_map(map_id: str):
    """The map's MapResult (points, clusters, record), read once per map version."""
    from analytics.maps import load_map as load

    return state.memo(load, _ws(), map_id, key=(_ws(), map_id, _map_stamp(map_id)), rows=True)


def _frame(map_id: str, color: str, flt: DocFilter | None) -> pd.DataFrame:
    m = load_map(map_id)
    info = state.cached(views.map_points, flt, map_id=map_id, color=color)
    df = m.points[["doc_id", "x", "y"]].merge(info, on="doc_id", how="inner")
    return df.sort_values("doc_id", kind="stable").reset_index(drop=True)


def map_frame(map_id: str, color: str, flt: DocFilter | None) -> pd.DataFrame:
    """doc_id, x, y, cluster, source, color, snippet of the map's documents matching `flt`."""
    key = (_ws(), map_id, _map_stamp(map_id), state.snapshot_key(), color, repr(flt))
    return state.memo(_frame, map_id, color, flt, key=key, rows=True)


# ---------------------------------------------------------------------- diversity panels
def _diversity(map_id: str, by: str) -> pd.DataFrame:
    from analytics.maps import diversity_by

    return diversity_by(state.workspace(), load_map(map_id), by=by)


def diversity(map_id: str, by: str) -> pd.DataFrame:
    """Per value of `by`: n, cluster entropy, normalised entropy, mean cosine distance."""
    key = (_ws(), map_id, _map_stamp(map_id), state.snapshot_key(), by)
    return state.memo(_diversity, map_id, by, key=key)


def _selection_diversity(map_id: str, ids: tuple[str, ...]) -> dict:
    from analytics.maps import selection_diversity as compute

    return compute(state.workspace(), load_map(map_id), list(ids))


def selection_diversity(map_id: str, doc_ids: list[str]) -> dict:
    ids = tuple(sorted(doc_ids))
    key = (_ws(), map_id, _map_stamp(map_id), _digest(ids))
    return state.memo(_selection_diversity, map_id, ids, key=key)


def _near_dups(map_id: str, threshold: float) -> pd.DataFrame:
    from analytics.maps import near_duplicates as compute

    return compute(state.workspace(), load_map(map_id), threshold=threshold)


def near_duplicates(map_id: str, threshold: float) -> pd.DataFrame:
    """SemDeDup within the map's clusters at `threshold` (one row per mapped document)."""
    key = (_ws(), map_id, _map_stamp(map_id), float(threshold))
    return state.memo(_near_dups, map_id, float(threshold), key=key, rows=True)


def _target(model_key: str, texts: tuple[str, ...], by: str, ids: tuple[str, ...]):
    from analytics.maps import similarity_to_target

    return similarity_to_target(
        state.workspace(), model_key, list(texts), by=by, doc_ids=list(ids) or None
    )


def target_similarity(model_key: str, texts: list[str], by: str, doc_ids: list[str]):
    """Per value of `by`: centroid cosine and MMD^2 of the mapped documents to the texts."""
    ids, texts_t = tuple(sorted(doc_ids)), tuple(texts)
    key = (_ws(), model_key, set_stamp(model_key), state.snapshot_key(), _digest(texts_t), by,
           _digest(ids))  # fmt: skip
    return state.memo(_target, model_key, texts_t, by, ids, key=key)


def _digest(items) -> str:
    return hashlib.sha256("\x00".join(map(str, items)).encode()).hexdigest()


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


def _load_index(ws_path: str, model_key: str):
    from analytics.embed import EmbeddingSet
    from analytics.maps import EmbeddingIndex

    eset = EmbeddingSet.for_workspace(ws_path, model_key)
    if eset.count() * int(eset.stored_dim() or 0) * 4 > MAX_INDEX_BYTES:
        return None  # too big to hold: search streams the shards
    return EmbeddingIndex.from_workspace(ws_path, model_key)


def index(model_key: str):
    """An in-memory index of the set (None when the set is too big to hold)."""
    key = (_ws(), model_key, set_stamp(model_key))
    return state.memo_large(_load_index, _ws(), model_key, key=key)


def _search(model_key: str, query: str | None, like: str | None, k: int,
            flt: DocFilter | None) -> pd.DataFrame:  # fmt: skip
    from analytics.maps import more_like_this, search

    ws_path = _ws()
    if flt is None:
        idx = index(model_key)
        if like is not None:
            res = more_like_this(ws_path, model_key, like, k, index=idx)
        else:
            res = search(ws_path, model_key, query, k=k, index=idx)
    else:  # exact top-k among the documents that match the filter
        ids = state.cached(views.filtered_ids, flt)
        res = views.search_among(ws_path, model_key, ids, query=query, like=like, k=k)
    info = state.cached(views.documents_brief, doc_ids=res["doc_id"].tolist())
    return res.merge(info, on="doc_id", how="left").reset_index(drop=True)


def search_results(
    model_key: str, *, query: str | None = None, like: str | None = None, k: int = 10,
    flt: DocFilter | None = None,
) -> pd.DataFrame:  # fmt: skip
    """rank, doc_id, score, source, lang, n_tokens, snippet of the `k` documents nearest to
    `query` (or to document `like`), among those matching `flt` when given."""
    flt = None if flt is None or flt.is_empty() else flt
    key = (_ws(), model_key, set_stamp(model_key), state.snapshot_key(), query, like, int(k),
           repr(flt))  # fmt: skip
    return state.memo(_search, model_key, query, like, int(k), flt, key=key)


def model_of(model_key: str) -> dict[str, Any]:
    """The manifest of an embedding set (model name, dim, max_seq_length, count...)."""
    from analytics.embed import EmbeddingSet

    return dict(EmbeddingSet.for_workspace(state.workspace(), model_key).manifest() or {})

"""Workspace-level diversity and similarity: join a map's clusters and the stored embeddings
with a documents column (source, domain, lang, ...) or a selection of doc ids.
Definitions are in `analytics.maps.diversity`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from analytics.embed.sample import NOT_STRATA
from analytics.embed.store import EmbeddingSet
from analytics.maps.compute import MapResult, load_map
from analytics.maps.diversity import group_diversity, semantic_duplicates, target_similarity
from analytics.maps.errors import MapError
from analytics.maps.search import _open_set, embed_queries


def group_values(workspace: Any, doc_ids: Sequence[str], by: str) -> np.ndarray:
    """The value of documents column `by` for each of `doc_ids` (None when absent)."""
    cur = workspace.cursor()
    cols = [r[0] for r in cur.execute("DESCRIBE documents").fetchall()]
    if by not in cols or by in NOT_STRATA:
        usable = [c for c in cols if c not in NOT_STRATA]
        raise MapError(
            f"cannot group by {by!r}: not a column of documents; use one of {', '.join(usable)}."
        )
    ids = pa.array([str(d) for d in doc_ids], pa.string())
    cur.register("_mx_group_ids", pa.table({"doc_id": ids, "pos": pa.array(np.arange(len(ids)))}))
    q = '"' + by.replace('"', '""') + '"'
    rows = cur.execute(
        f"SELECT s.pos, CAST(d.{q} AS VARCHAR) FROM _mx_group_ids s "
        "JOIN documents d ON d.doc_id = s.doc_id"
    ).fetchall()
    cur.unregister("_mx_group_ids")
    out = np.full(len(ids), None, dtype=object)
    for pos, val in rows:
        out[pos] = val
    return out


def _map(workspace: Any, map_or_id: MapResult | str) -> MapResult:
    return map_or_id if isinstance(map_or_id, MapResult) else load_map(workspace, map_or_id)


def _points_and_vectors(
    workspace: Any, m: MapResult, doc_ids: Sequence[str] | None
) -> tuple[pd.DataFrame, np.ndarray]:
    pts = m.points
    if doc_ids is not None:
        pts = pts[pts["doc_id"].isin(set(map(str, doc_ids)))]
    if pts.empty:
        raise MapError("none of the selected documents is on this map.")
    ids, X = EmbeddingSet.for_workspace(workspace, m.model_key).load(pts["doc_id"].tolist())
    pos = pd.Series(np.arange(len(ids)), index=ids)
    X = X[pos.loc[pts["doc_id"]].to_numpy()]
    return pts.reset_index(drop=True), X


def diversity_by(
    workspace: Any,
    map_or_id: MapResult | str,
    *,
    by: str = "source",
    doc_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per value of documents column `by` (and '(all)'): n, cluster entropy (nats and
    normalised by ln K, K = clusters of the map) and mean pairwise cosine distance."""
    m = _map(workspace, map_or_id)
    pts, X = _points_and_vectors(workspace, m, doc_ids)
    groups = group_values(workspace, pts["doc_id"].tolist(), by)
    k = int(m.points["cluster"].nunique())
    return group_diversity(X, groups, pts["cluster"].to_numpy(), n_clusters=k)


def selection_diversity(
    workspace: Any, map_or_id: MapResult | str, doc_ids: Sequence[str]
) -> dict[str, float]:
    """Diversity of one selection of doc ids (e.g. a lasso on the map)."""
    m = _map(workspace, map_or_id)
    pts, X = _points_and_vectors(workspace, m, doc_ids)
    k = int(m.points["cluster"].nunique())
    row = group_diversity(
        X, ["selection"] * len(pts), pts["cluster"].to_numpy(), n_clusters=k, include_all=False
    ).iloc[0]
    return row.to_dict()


def near_duplicates(
    workspace: Any,
    map_or_id: MapResult | str,
    *,
    threshold: float = 0.95,
    doc_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """SemDeDup within the map's clusters: doc_id, cluster, keep, duplicate_of, similarity."""
    m = _map(workspace, map_or_id)
    pts, X = _points_and_vectors(workspace, m, doc_ids)
    return semantic_duplicates(
        X, pts["doc_id"].tolist(), pts["cluster"].to_numpy(), threshold=threshold
    )


def similarity_to_target(
    workspace: Any,
    model_key: str,
    target_texts: Sequence[str],
    *,
    by: str = "source",
    doc_ids: Sequence[str] | None = None,
    kernel: str = "rbf",
    max_samples: int = 1_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per value of `by`: centroid cosine and MMD^2 between its embedded documents and the
    target texts embedded with the same model."""
    texts = [t for t in target_texts if isinstance(t, str) and t.strip()]
    if len(texts) < 2:
        raise MapError("give at least two non-empty target texts.")
    eset = _open_set(workspace, model_key)
    ids, X = eset.load(doc_ids)
    if len(ids) == 0:
        raise MapError("none of the selected documents has an embedding.")
    T = embed_queries(workspace, model_key, texts)
    groups = group_values(workspace, ids.tolist(), by)
    return target_similarity(X, groups, T, kernel=kernel, max_samples=max_samples, seed=seed)

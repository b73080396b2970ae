"""Semantic search over an embedding set: exact cosine top-k by brute force.

Vectors are stored unit-norm, so cosine = dot product. `search`/`more_like_this` without an
index stream the shards in float32 chunks (memory bounded by the chunk, fine up to a few
million vectors per query); `EmbeddingIndex` holds the matrix in memory for repeated queries
(the dashboard caches one per model key). For tens of millions of vectors an approximate
index (FAISS `IndexFlatIP`/`IndexIVFFlat`, `pip install faiss-cpu`) can replace the brute
force: pass `use_faiss=True` to `EmbeddingIndex` (exact inner-product index).
Ties in score are broken by doc_id, so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from analytics.embed.encode import embed_texts
from analytics.embed.models import get_embedder
from analytics.embed.store import EmbeddingSet, _missing_message
from analytics.maps.errors import MapError

CHUNK_ROWS = 262_144


def _open_set(workspace: Any, model_key: str) -> EmbeddingSet:
    eset = EmbeddingSet.for_workspace(workspace, model_key)
    if not eset.exists:
        raise MapError(_missing_message(workspace, model_key))
    return eset


def embed_queries(workspace: Any, model_key: str, texts: Sequence[str]) -> np.ndarray:
    """Embed `texts` with the model that produced set `model_key` (from its manifest)."""
    eset = _open_set(workspace, model_key)
    man = eset.manifest() or {}
    if "model" not in man:
        raise MapError(f"{eset.path}: the manifest does not name the model; cannot embed queries.")
    emb = get_embedder(
        man["model"], man.get("max_seq_length"), "auto", int(man.get("dim") or 0) or None
    )
    if emb.key != model_key:
        raise MapError(
            f"the model {man['model']!r} now loads as {emb.key!r}, not {model_key!r}; "
            "re-embed the corpus or pass an embedder."
        )
    return embed_texts(emb, list(texts))


def _top_k(
    batches: Iterable[tuple[Any, np.ndarray]], q: np.ndarray, k: int, exclude: set[str]
) -> pd.DataFrame:
    cand_ids: list[np.ndarray] = []
    cand_scores: list[np.ndarray] = []
    kk = k + len(exclude)
    for ids, M in batches:
        s = M @ q
        ids = np.asarray(ids.to_pylist() if isinstance(ids, pa.Array) else ids, dtype=object)
        if len(s) > kk:
            # keep every score tied with the kk-th best, so ties resolve by doc_id exactly
            kth = np.partition(s, len(s) - kk)[len(s) - kk]
            idx = np.flatnonzero(s >= kth)
            ids, s = ids[idx], s[idx]
        cand_ids.append(ids)
        cand_scores.append(s)
    if not cand_ids:
        return _finish(np.zeros(0, dtype=object), np.zeros(0, dtype=np.float32), k, exclude)
    return _finish(np.concatenate(cand_ids), np.concatenate(cand_scores), k, exclude)


def _finish(ids: np.ndarray, scores: np.ndarray, k: int, exclude: set[str]) -> pd.DataFrame:
    """Top `k` of the candidates by (score descending, doc_id ascending)."""
    ids = np.asarray(ids, dtype=object)
    scores = np.asarray(scores, dtype=np.float32)
    if exclude and len(ids):
        keep = np.fromiter((d not in exclude for d in ids), dtype=bool, count=len(ids))
        ids, scores = ids[keep], scores[keep]
    order = np.lexsort((ids.astype(str), -scores))[:k] if len(ids) else np.zeros(0, np.int64)
    return pd.DataFrame(
        {"rank": np.arange(1, len(order) + 1), "doc_id": ids[order], "score": scores[order]}
    )


def _check_k(k: int) -> int:
    if not isinstance(k, int | np.integer) or k <= 0:
        raise MapError(f"k must be a positive integer, got {k!r}.")
    return int(k)


class EmbeddingIndex:
    """An in-memory exact cosine index over (doc_ids, unit-norm X)."""

    def __init__(
        self,
        doc_ids: Sequence[str],
        X: np.ndarray,
        *,
        model_key: str | None = None,
        use_faiss: bool = False,
    ):
        self.doc_ids = np.asarray(doc_ids, dtype=object)
        self.X = np.ascontiguousarray(X, dtype=np.float32)
        if self.X.ndim != 2 or len(self.doc_ids) != self.X.shape[0]:
            raise MapError(f"{len(self.doc_ids)} doc ids for a matrix of shape {self.X.shape}.")
        self.model_key = model_key
        self._pos = {d: i for i, d in enumerate(self.doc_ids)}
        self._faiss = None
        if use_faiss:
            try:
                import faiss
            except ImportError as exc:
                raise MapError("use_faiss=True needs FAISS: pip install faiss-cpu") from exc
            self._faiss = faiss.IndexFlatIP(self.X.shape[1])
            self._faiss.add(self.X)

    @classmethod
    def from_workspace(cls, workspace: Any, model_key: str, **kw: Any) -> EmbeddingIndex:
        ids, X = _open_set(workspace, model_key).load()
        return cls(ids, X, model_key=model_key, **kw)

    def __len__(self) -> int:
        return len(self.doc_ids)

    def vector(self, doc_id: str) -> np.ndarray:
        i = self._pos.get(doc_id)
        if i is None:
            raise MapError(f"document {doc_id!r} has no embedding in this set.")
        return self.X[i]

    def search_vector(
        self, q: np.ndarray, *, k: int = 10, exclude: Iterable[str] = ()
    ) -> pd.DataFrame:
        k = _check_k(k)
        q = np.asarray(q, dtype=np.float32).ravel()
        ex = set(exclude)
        if self._faiss is not None:
            kk = min(len(self), k + len(ex))
            scores, idx = self._faiss.search(q[None, :], kk)
            keep = idx[0] >= 0
            return _finish(self.doc_ids[idx[0][keep]], scores[0][keep], k, ex)
        batches = (
            (self.doc_ids[s : s + CHUNK_ROWS], self.X[s : s + CHUNK_ROWS])
            for s in range(0, len(self), CHUNK_ROWS)
        )
        return _top_k(batches, q, k, ex)


def search(
    workspace: Any,
    model_key: str,
    query: str,
    *,
    k: int = 10,
    index: EmbeddingIndex | None = None,
) -> pd.DataFrame:
    """The `k` documents nearest to `query` by cosine: columns rank, doc_id, score."""
    if not isinstance(query, str) or not query.strip():
        raise MapError("the search query is empty; type some words to search for.")
    k = _check_k(k)
    q = embed_queries(workspace, model_key, [query])[0]
    if index is not None:
        return index.search_vector(q, k=k)
    return _top_k(_open_set(workspace, model_key).iter_batches(batch_rows=CHUNK_ROWS), q, k, set())


def more_like_this(
    workspace: Any,
    model_key: str,
    doc_id: str,
    k: int = 10,
    *,
    index: EmbeddingIndex | None = None,
) -> pd.DataFrame:
    """The `k` documents nearest to document `doc_id` (itself excluded)."""
    k = _check_k(k)
    if index is not None:
        return index.search_vector(index.vector(doc_id), k=k, exclude=[doc_id])
    eset = _open_set(workspace, model_key)
    found = list(eset.iter_batches(doc_ids=pa.array([str(doc_id)], pa.string())))
    if not found:
        raise MapError(f"document {doc_id!r} has no embedding in set {model_key!r}.")
    q = found[0][1][0]
    return _top_k(eset.iter_batches(batch_rows=CHUNK_ROWS), q, k, {str(doc_id)})

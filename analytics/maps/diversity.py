"""Diversity and similarity of groups of documents in embedding space.

Definitions (X: unit-norm embeddings, cos(a, b) = a . b):

* cluster entropy: H = -sum_c p_c ln p_c over the cluster shares p_c of a group (nats);
  normalised H / ln K, K = number of clusters of the map (default: clusters present);
  1 means the group spreads evenly over all clusters. Noise (-1) counts as a cluster.
* mean pairwise cosine distance: 1 - mean_{i != j} cos(x_i, x_j). For unit vectors
  sum_{i != j} x_i . x_j = ||sum_i x_i||^2 - N, so the exact value costs O(N d) for any N
  (no sampling needed).
* semantic near-duplicates (SemDeDup, Abbas et al. 2023): within each cluster, order the
  members by cosine to the cluster centroid, farthest first (the paper's default, keeping
  "hard" examples); a member is a duplicate if its cosine to any earlier member is
  >= threshold, and `duplicate_of` names the most similar earlier member. Cost O(m^2 d) per
  cluster of m members (in blocks).
* similarity to a target set T: centroid cosine cos(mean(X_g), mean(T)), and the squared
  maximum mean discrepancy MMD^2 (unbiased U-statistic, Gretton et al. 2012) with an RBF
  kernel k(a, b) = exp(-||a - b||^2 / (2 sigma^2)), sigma = median pairwise distance of the
  pooled samples (median heuristic), or a linear kernel a . b. Each side is subsampled to
  `max_samples` rows with a seed. MMD^2 ~ 0 for the same distribution; it can be slightly
  negative (unbiased estimator).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analytics.embed.encode import l2_normalise
from analytics.maps.errors import MapError

KERNELS = ("rbf", "linear")


def cluster_entropy(
    clusters: Sequence[int] | np.ndarray, *, n_clusters: int | None = None
) -> dict[str, float]:
    """{'entropy': H in nats, 'normalized': H / ln K, 'k': K} for one group's labels."""
    c = np.asarray(clusters)
    if c.size == 0:
        return {"entropy": math.nan, "normalized": math.nan, "k": 0}
    _, counts = np.unique(c, return_counts=True)
    p = counts / counts.sum()
    h = float(-(p * np.log(p)).sum()) + 0.0  # no -0.0
    k = int(n_clusters) if n_clusters is not None else len(counts)
    if k < len(counts):
        raise MapError(f"n_clusters={k} is smaller than the {len(counts)} clusters present.")
    return {"entropy": h, "normalized": h / math.log(k) if k > 1 else 0.0, "k": k}


def mean_pairwise_cosine_distance(X: np.ndarray) -> float:
    """1 - mean off-diagonal cosine similarity of the rows of X (exact, O(N d))."""
    U = l2_normalise(np.asarray(X, dtype=np.float32)).astype(np.float64)
    n = U.shape[0]
    if n < 2:
        return math.nan
    norms2 = float((U * U).sum())  # = N for nonzero rows
    s = U.sum(axis=0)
    mean_cos = (float(s @ s) - norms2) / (n * (n - 1))
    return 1.0 - mean_cos


def semantic_duplicates(
    X: np.ndarray,
    doc_ids: Sequence[str],
    clusters: Sequence[int],
    *,
    threshold: float = 0.95,
    block_rows: int = 2_048,
) -> pd.DataFrame:
    """SemDeDup within clusters: doc_id, cluster, keep, duplicate_of, similarity (cosine to
    `duplicate_of`, NaN for the first member), one row per document."""
    if not -1.0 <= threshold <= 1.0:
        raise MapError(f"threshold must be a cosine within [-1, 1], got {threshold}.")
    U = l2_normalise(X)
    ids = np.asarray(doc_ids, dtype=object)
    lab = np.asarray(clusters)
    if not (len(ids) == len(lab) == U.shape[0]):
        raise MapError(f"{len(ids)} doc ids, {len(lab)} cluster labels and {U.shape[0]} vectors.")
    keep = np.ones(len(ids), dtype=bool)
    dup_of = np.full(len(ids), None, dtype=object)
    sim = np.full(len(ids), np.nan, dtype=np.float64)
    for c in np.unique(lab):
        members = np.flatnonzero(lab == c)
        V = U[members]
        centroid = V.mean(axis=0)
        norm = np.linalg.norm(centroid)
        to_centroid = V @ (centroid / norm) if norm > 0 else np.zeros(len(members))
        order = np.lexsort((ids[members], to_centroid))  # farthest first, ties by doc_id
        members, V = members[order], V[order]
        for a in range(1, len(members), block_rows):
            b = min(len(members), a + block_rows)
            S = V[a:b] @ V[:b].T  # rows j in [a, b), columns i in [0, b)
            S[np.arange(b - a)[:, None] + a <= np.arange(b)[None, :]] = -np.inf
            best = S.argmax(axis=1)
            best_sim = S[np.arange(b - a), best]
            rows = members[a:b]
            sim[rows] = best_sim
            dup_of[rows] = ids[members[best]]
            keep[rows] = best_sim < threshold
    dup_of[keep] = None
    return pd.DataFrame(
        {
            "doc_id": ids,
            "cluster": lab.astype(np.int32),
            "keep": keep,
            "duplicate_of": dup_of,
            "similarity": sim,
        }
    )


def _subsample(X: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if X.shape[0] <= n:
        return X
    return X[np.sort(rng.choice(X.shape[0], size=n, replace=False))]


def mmd2(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    kernel: str = "rbf",
    bandwidth: float | None = None,
    max_samples: int = 2_000,
    seed: int = 0,
) -> float:
    """Unbiased MMD^2 between the rows of X and Y (see module docstring)."""
    if kernel not in KERNELS:
        raise MapError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}.")
    rng = np.random.default_rng(seed)
    A = _subsample(np.asarray(X, dtype=np.float64), max_samples, rng)
    B = _subsample(np.asarray(Y, dtype=np.float64), max_samples, rng)
    m, n = A.shape[0], B.shape[0]
    if m < 2 or n < 2:
        return math.nan
    if kernel == "linear":
        Kaa, Kbb, Kab = A @ A.T, B @ B.T, A @ B.T
    else:
        P = np.vstack([A, B])
        sq = (P * P).sum(1)
        D2 = np.maximum(sq[:, None] + sq[None, :] - 2 * P @ P.T, 0.0)
        if bandwidth is None:
            d = np.sqrt(D2[np.triu_indices(m + n, k=1)])
            sigma = float(np.median(d))
            sigma = sigma if sigma > 0 else 1.0
        else:
            sigma = float(bandwidth)
        K = np.exp(-D2 / (2 * sigma * sigma))
        Kaa, Kbb, Kab = K[:m, :m], K[m:, m:], K[:m, m:]
    xx = (Kaa.sum() - np.trace(Kaa)) / (m * (m - 1))
    yy = (Kbb.sum() - np.trace(Kbb)) / (n * (n - 1))
    return float(xx + yy - 2 * Kab.mean())


def centroid_cosine(X: np.ndarray, Y: np.ndarray) -> float:
    a = np.asarray(X, dtype=np.float64).mean(0)
    b = np.asarray(Y, dtype=np.float64).mean(0)
    den = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / den) if den > 0 else math.nan


def group_diversity(
    X: np.ndarray,
    groups: Sequence[Any],
    clusters: Sequence[int],
    *,
    n_clusters: int | None = None,
    include_all: bool = True,
) -> pd.DataFrame:
    """Per group: n, cluster_entropy (nats), cluster_entropy_norm, mean_cosine_distance.
    K for normalisation = `n_clusters` or the clusters present overall."""
    g = pd.Series(list(groups), dtype=object).fillna("(none)").to_numpy()
    lab = np.asarray(clusters)
    if not (len(g) == len(lab) == len(X)):
        raise MapError(f"{len(g)} group values, {len(lab)} cluster labels and {len(X)} vectors.")
    k = n_clusters if n_clusters is not None else len(np.unique(lab))
    rows = []
    keys = sorted(set(g.tolist()), key=str)
    parts = [(key, g == key) for key in keys]
    if include_all:
        parts.append(("(all)", np.ones(len(g), dtype=bool)))
    for key, mask in parts:
        e = cluster_entropy(lab[mask], n_clusters=k)
        rows.append(
            {
                "group": key,
                "n": int(mask.sum()),
                "cluster_entropy": e["entropy"],
                "cluster_entropy_norm": e["normalized"],
                "mean_cosine_distance": mean_pairwise_cosine_distance(X[mask]),
            }
        )
    return pd.DataFrame(rows)


def target_similarity(
    X: np.ndarray,
    groups: Sequence[Any],
    T: np.ndarray,
    *,
    kernel: str = "rbf",
    max_samples: int = 1_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per group: n, centroid_cosine to the target set T, mmd2 (kernel recorded)."""
    g = pd.Series(list(groups), dtype=object).fillna("(none)").to_numpy()
    if len(g) != len(X):
        raise MapError(f"{len(g)} group values for {len(X)} vectors.")
    if len(T) == 0:
        raise MapError("the target set is empty; give at least two target texts.")
    rows = []
    for key in sorted(set(g.tolist()), key=str):
        Xg = X[g == key]
        rows.append(
            {
                "group": key,
                "n": int(len(Xg)),
                "centroid_cosine": centroid_cosine(Xg, T),
                "mmd2": mmd2(Xg, T, kernel=kernel, max_samples=max_samples, seed=seed),
                "kernel": kernel,
            }
        )
    return pd.DataFrame(rows)

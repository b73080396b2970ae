"""Clustering for maps: k-means or HDBSCAN, registered by name, on a chosen space.

Spaces (`cluster_on`):

* "embedding": the unit-norm embeddings themselves (Euclidean k-means on unit vectors is
  cosine k-means up to the centroid norm) -- the default for k-means;
* "pca": a PCA reduction to `pca_dims` dimensions (cheaper for large d, denoises);
* "umap": the 2-D UMAP projection -- the default for HDBSCAN: density clusters in 384
  dimensions are mostly noise, while on the 2-D map they coincide with what a reader sees
  (UMAP distorts densities, so these are "visual" clusters, as in Embedding Atlas/BERTopic).

Labels are renumbered by size (0 = largest); HDBSCAN's noise keeps -1.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import numpy as np

from analytics.maps.errors import MapError
from analytics.registry import Registry

Clusterer = Callable[..., np.ndarray]
CLUSTERERS: Registry[Clusterer] = Registry("clusterer", MapError)
DEFAULT_SPACE = {"kmeans": "embedding", "hdbscan": "umap"}
SPACES = ("embedding", "pca", "umap")


register_clusterer = CLUSTERERS.register


def default_n_clusters(n: int) -> int:
    """round(sqrt(n / 2)) clamped to [2, 50] (and to n)."""
    return int(min(n, max(2, min(50, round(math.sqrt(n / 2))))))


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..K-1 by decreasing size (ties: first occurrence); -1 stays."""
    labels = np.asarray(labels)
    out = np.full(labels.shape, -1, dtype=np.int32)
    ids, first, counts = np.unique(labels[labels >= 0], return_index=True, return_counts=True)
    order = sorted(range(len(ids)), key=lambda i: (-counts[i], first[i]))
    for new, i in enumerate(order):
        out[labels == ids[i]] = new
    return out


@register_clusterer("kmeans")
def kmeans(
    Z: np.ndarray, *, n_clusters: int | None = None, random_state: int = 42, **_
) -> np.ndarray:
    """k-means (k-means++ init); MiniBatchKMeans above 50,000 points. k defaults to
    `default_n_clusters(N)`."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    n = Z.shape[0]
    k = default_n_clusters(n) if n_clusters is None else int(n_clusters)
    if not 1 <= k <= n:
        raise MapError(f"n_clusters must be within [1, {n}] (the number of points), got {k}.")
    if n > 50_000:
        model = MiniBatchKMeans(n_clusters=k, random_state=random_state, batch_size=4096, n_init=3)
    else:
        model = KMeans(n_clusters=k, random_state=random_state, n_init="auto")
    return model.fit_predict(Z)


@register_clusterer("hdbscan")
def hdbscan(
    Z: np.ndarray, *, min_cluster_size: int | None = None, min_samples: int | None = None, **_
) -> np.ndarray:
    """sklearn HDBSCAN; min_cluster_size defaults to max(5, N // 200); noise is -1."""
    from sklearn.cluster import HDBSCAN

    n = Z.shape[0]
    mcs = max(5, n // 200) if min_cluster_size is None else int(min_cluster_size)
    if mcs < 2:
        raise MapError(f"min_cluster_size must be at least 2, got {mcs}.")
    mcs = min(mcs, n)
    kwargs = {"min_cluster_size": mcs, "min_samples": min_samples}
    if "copy" in inspect.signature(HDBSCAN).parameters:
        kwargs["copy"] = True  # never modify the caller's matrix (and silence sklearn 1.9)
    return HDBSCAN(**kwargs).fit_predict(Z)


def clustering_space(
    X: np.ndarray, Y2: np.ndarray | None, *, space: str, pca_dims: int = 50, random_state: int = 42
) -> np.ndarray:
    """The matrix to cluster: X, PCA(X) or the 2-D projection (see module docstring)."""
    if space == "embedding":
        return X
    if space == "pca":
        from sklearn.decomposition import PCA

        dims = int(min(pca_dims, X.shape[1], X.shape[0]))
        return PCA(n_components=dims, random_state=random_state).fit_transform(X).astype(np.float32)
    if space == "umap":
        if Y2 is None:
            raise MapError("cluster_on='umap' needs the 2-D projection.")
        return Y2
    raise MapError(f"cluster_on must be one of {', '.join(SPACES)}, got {space!r}.")


def cluster_points(
    X: np.ndarray,
    *,
    method: str = "kmeans",
    projection: np.ndarray | None = None,
    cluster_on: str | None = None,
    pca_dims: int = 50,
    n_clusters: int | None = None,
    min_cluster_size: int | None = None,
    random_state: int = 42,
) -> np.ndarray:
    """int32 cluster label per row of X (see module docstring for methods and spaces)."""
    if method not in CLUSTERERS:
        raise MapError(f"unknown cluster method {method!r}; valid: {', '.join(CLUSTERERS)}.")
    space = cluster_on or DEFAULT_SPACE.get(method, "embedding")
    Z = clustering_space(X, projection, space=space, pca_dims=pca_dims, random_state=random_state)
    labels = CLUSTERERS[method](
        np.ascontiguousarray(Z),
        n_clusters=n_clusters,
        min_cluster_size=min_cluster_size,
        random_state=random_state,
    )
    return relabel_by_size(labels)

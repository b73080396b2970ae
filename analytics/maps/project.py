"""2-D projection of embeddings with UMAP (umap-learn)."""

from __future__ import annotations

import warnings

import numpy as np

from analytics.maps.errors import MapError

#: how many times UMAP was fitted in this process (tests check that a cache hit does not fit)
FIT_COUNT = 0


def project_umap(
    X: np.ndarray,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "cosine",
    random_state: int = 42,
    n_components: int = 2,
) -> np.ndarray:
    """UMAP projection of the rows of `X`: float32 (N, n_components).

    Defaults follow umap-learn (n_neighbors 15, min_dist 0.1) with the cosine metric and a
    fixed seed (a seed makes umap-learn single-threaded, hence reproducible). With fewer
    than n_neighbors + 1 points, n_neighbors becomes N - 1. Needs at least 4 points.
    """
    global FIT_COUNT
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise MapError(f"expected a 2-D matrix of embeddings, got shape {X.shape}.")
    n = X.shape[0]
    if n < 4:
        raise MapError(f"a map needs at least 4 embedded documents, got {n}.")
    if not np.isfinite(X).all():
        raise MapError("the embeddings contain NaN or infinite values.")
    if n_neighbors < 2:
        raise MapError(f"n_neighbors must be at least 2, got {n_neighbors}.")
    if not 0.0 <= min_dist <= 1.0:
        raise MapError(f"min_dist must be within [0, 1], got {min_dist}.")
    try:
        import umap
    except ImportError as exc:  # pragma: no cover
        raise MapError("projection needs umap-learn: pip install umap-learn") from exc
    k = min(int(n_neighbors), n - 1)
    reducer = umap.UMAP(
        n_neighbors=k,
        min_dist=float(min_dist),
        metric=metric,
        n_components=int(n_components),
        random_state=int(random_state),
        init="spectral" if n > n_components + 2 else "random",
        n_jobs=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Y = reducer.fit_transform(X)
    FIT_COUNT += 1
    return np.asarray(Y, dtype=np.float32)


def effective_n_neighbors(n_points: int, n_neighbors: int) -> int:
    """The n_neighbors `project_umap` actually uses for `n_points` points."""
    return min(int(n_neighbors), max(1, n_points - 1))

"""Representation similarity: linear CKA (biased and debiased).

Linear CKA (Kornblith et al. 2019) on column-centred X (N x D1) and Y (N x D2):

    CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)

It is invariant to orthogonal transforms and isotropic scaling of either input and the
two inputs may have different widths (same N rows, row i of X and of Y describe the same
text). Debiased CKA replaces each HSIC by the unbiased estimator of Song et al. (2012)
with linear kernels K = X X^T, L = Y Y^T and zeroed diagonals K~, L~:

    HSIC_u(K, L) = [tr(K~ L~) + (1^T K~ 1)(1^T L~ 1) / ((n-1)(n-2))
                    - 2/(n-2) 1^T K~ L~ 1] / (n (n-3))

computed here in feature space in O(N D1 D2) without forming the N x N kernels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._linalg import as_matrix, centred
from .errors import GeometryInputError


def _frob2_cross(x: np.ndarray, y: np.ndarray) -> float:
    """||Y^T X||_F^2 = tr(K L), in whichever space is cheaper."""
    n = x.shape[0]
    if x.shape[1] * y.shape[1] <= n * n:
        c = y.T @ x
        return float(np.sum(c * c))
    k = x @ x.T
    l_ = y @ y.T
    return float(np.sum(k * l_))


def _hsic_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    n = x.shape[0]
    kd = np.einsum("ij,ij->i", x, x)  # diag of K
    ld = np.einsum("ij,ij->i", y, y)
    tr_kl = _frob2_cross(x, y) - float(kd @ ld)
    sx = x.sum(axis=0)
    sy = y.sum(axis=0)
    k1 = x @ sx - kd  # K~ 1
    l1 = y @ sy - ld  # L~ 1
    one_k_one = float(k1.sum())
    one_l_one = float(l1.sum())
    one_kl_one = float(k1 @ l1)
    val = tr_kl + one_k_one * one_l_one / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * one_kl_one
    return val / (n * (n - 3))


def linear_cka(X: Any, Y: Any, *, debiased: bool = False) -> float:
    """Linear CKA between representations ``X`` (N x D1) and ``Y`` (N x D2).

    Both are column-centred first. ``debiased=False`` (default) gives the standard
    estimator in [0, 1]; ``debiased=True`` uses the unbiased HSIC estimator (Song et al.
    2012), which is close to 0 for independent data even when D is comparable to N and
    can be slightly negative; it needs N >= 4. Returns NaN when either input has no
    variance.
    """
    x = as_matrix(X, name="X")
    y = as_matrix(Y, name="Y")
    if x.shape[0] != y.shape[0]:
        raise GeometryInputError(
            f"X, Y: expected the same number of rows (texts), got {x.shape[0]} and {y.shape[0]}"
        )
    x = centred(x)
    y = centred(y)
    if debiased:
        if x.shape[0] < 4:
            raise GeometryInputError(f"X: debiased CKA needs at least 4 rows, got {x.shape[0]}")
        xy = _hsic_unbiased(x, y)
        xx = _hsic_unbiased(x, x)
        yy = _hsic_unbiased(y, y)
        if xx <= 0 or yy <= 0:
            return float("nan")
        return float(xy / np.sqrt(xx * yy))
    xy = _frob2_cross(x, y)
    xx = np.sqrt(_frob2_cross(x, x))
    yy = np.sqrt(_frob2_cross(y, y))
    if xx == 0 or yy == 0:
        return float("nan")
    return float(xy / (xx * yy))


def cka_matrix(
    representations: Mapping[str, Any] | Sequence[Any],
    *,
    debiased: bool = False,
) -> pd.DataFrame:
    """Square DataFrame of pairwise linear CKA between named representations.

    ``representations`` maps a label (checkpoint, layer, ...) to an N x D_i array (same
    N for all); a sequence is labelled 0..n-1. The result is symmetric with labels as
    index and columns.
    """
    if isinstance(representations, Mapping):
        labels = list(representations.keys())
        mats = [representations[k] for k in labels]
    else:
        mats = list(representations)
        labels = list(range(len(mats)))
    m = len(mats)
    out = np.full((m, m), np.nan)
    for i in range(m):
        for j in range(i, m):
            v = linear_cka(mats[i], mats[j], debiased=debiased)
            out[i, j] = out[j, i] = v
    return pd.DataFrame(out, index=labels, columns=labels)

"""Array coercion and float64 spectral kernels shared by the metric modules.

Inputs may be numpy arrays, torch tensors (any device or dtype, detached here) or
nested sequences. Everything is converted to a C-contiguous ``float64`` numpy array
before any arithmetic, so spectra are always computed in double precision.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .errors import GeometryInputError

SpectrumMethod = Literal["auto", "gram", "svd"]


def to_numpy64(x: Any, *, name: str = "array") -> np.ndarray:
    """Return ``x`` as a float64 numpy array (a copy when conversion is needed).

    Torch tensors are detached, moved to CPU and upcast to float64 *before* the
    conversion, so bf16/fp16 inputs are handled.
    """
    if x is None:
        raise GeometryInputError(f"{name}: expected an array or tensor, got None")
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor without importing torch
        x = x.detach().to("cpu")
        if hasattr(x, "double"):
            x = x.double()
        x = x.numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GeometryInputError(f"{name}: cannot convert to a float array ({exc})") from exc
    return np.ascontiguousarray(arr)


def as_matrix(x: Any, *, name: str = "Z", min_rows: int = 1, min_cols: int = 1) -> np.ndarray:
    """Coerce to a finite float64 matrix of shape (N, D) with N >= min_rows, D >= min_cols."""
    arr = to_numpy64(x, name=name)
    if arr.ndim != 2:
        raise GeometryInputError(f"{name}: expected a 2-D array (N x D), got shape {arr.shape}")
    n, d = arr.shape
    if n < min_rows or d < min_cols:
        raise GeometryInputError(
            f"{name}: expected at least {min_rows} rows and {min_cols} columns, "
            f"got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise GeometryInputError(
            f"{name}: contains a non-finite value at row {int(bad[0])}, column {int(bad[1])}"
        )
    return arr


def as_spectrum(x: Any, *, name: str = "eigenvalues") -> np.ndarray:
    """Coerce to a finite, non-negative 1-D float64 vector sorted descending.

    Tiny negative values (round-off from eigensolvers, ``>= -1e-12 * max``) are clipped
    to zero; clearly negative ones are an error.
    """
    arr = to_numpy64(x, name=name).ravel()
    if arr.size == 0:
        raise GeometryInputError(f"{name}: expected a non-empty vector of values")
    if not np.isfinite(arr).all():
        raise GeometryInputError(f"{name}: contains non-finite values")
    scale = float(np.max(np.abs(arr)))
    if arr.min() < -1e-12 * max(scale, 1e-300):
        raise GeometryInputError(f"{name}: expected non-negative values, got min {arr.min():.3g}")
    arr = np.clip(arr, 0.0, None)
    return np.sort(arr)[::-1].copy()


def gram_eigenvalues(z: np.ndarray) -> np.ndarray:
    """Eigenvalues of the smaller Gram matrix (Z^T Z or Z Z^T) in float64, descending,
    clipped at 0: the min(N, D) squared singular values of Z. Absolute error about
    1e-16 * sigma_max^2 per value."""
    n, d = z.shape
    g = z.T @ z if d <= n else z @ z.T
    ev = np.linalg.eigvalsh(g)[::-1]
    return np.clip(ev, 0.0, None)


#: below this ratio lambda_min / lambda_max the "auto" method switches from the Gram
#: eigenvalues to an SVD, so tiny singular values keep their relative accuracy.
GRAM_CONDITION_LIMIT = 1e-8


def singular_values_of(z: np.ndarray, *, method: SpectrumMethod = "auto") -> np.ndarray:
    """Singular values (descending, length min(N, D)) of a float64 matrix.

    ``"svd"``: LAPACK SVD. ``"gram"``: square roots of :func:`gram_eigenvalues`, several
    times faster, but a singular value far below sigma_max (sigma^2 < ~1e-14 sigma_max^2)
    comes out with absolute error up to ~1e-8 sigma_max. ``"auto"`` (default) uses the Gram
    route and falls back to the SVD when lambda_min / lambda_max < 1e-8, i.e. whenever
    that error could reach the 1e-7 level at which RankMe's eps acts.
    """
    if method == "svd":
        return np.sort(np.linalg.svd(z, compute_uv=False))[::-1]
    if method not in ("gram", "auto"):
        raise GeometryInputError(f"method: expected 'auto', 'gram' or 'svd', got {method!r}")
    ev = gram_eigenvalues(z)
    if method == "auto" and ev.size and ev[0] > 0 and ev[-1] < GRAM_CONDITION_LIMIT * ev[0]:
        return np.sort(np.linalg.svd(z, compute_uv=False))[::-1]
    return np.sqrt(ev)


def centred(z: np.ndarray) -> np.ndarray:
    """Column-centred copy of ``z``."""
    return z - z.mean(axis=0, keepdims=True)


def covariance_eigenvalues_of(
    z: np.ndarray, *, center: bool = True, method: SpectrumMethod = "auto"
) -> np.ndarray:
    """Eigenvalues of the sample covariance Z_c^T Z_c / (N - 1), descending.

    Computed from the Gram matrix ("auto"/"gram": absolute error ~1e-16 * lambda_max,
    which is what eigenvalue-based metrics need) or by SVD ("svd").

    Equal to scikit-learn's ``PCA(...).explained_variance_`` (length min(N, D)).
    With ``center=False`` the second-moment matrix Z^T Z / (N - 1) is used instead.
    """
    n = z.shape[0]
    if n < 2:
        raise GeometryInputError(f"Z: covariance needs at least 2 rows, got {n}")
    zc = centred(z) if center else z
    if method == "svd":
        s = singular_values_of(zc, method="svd")
        return s * s / (n - 1)
    return gram_eigenvalues(zc) / (n - 1)

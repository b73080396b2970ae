"""Spectral geometry of a representation matrix Z (N texts x D features).

Definitions (REFERENCES.md, "Representation geometry"); all arithmetic in float64:

* covariance eigenspectrum: eigenvalues lambda_1 >= lambda_2 >= ... of
  Z_c^T Z_c / (N - 1), Z_c = Z with column means removed (PCA explained variance).
* RankMe, ``variant="singular"`` (Garrido et al. 2023): sigma = singular values of the
  *uncentred* Z, p_k = sigma_k / sum(sigma) + eps, RankMe = exp(-sum_k p_k log p_k).
* RankMe, ``variant="covariance"`` (Li et al. 2025 "Tracing the representation
  geometry..."; the ``reptrix`` package): lambda = covariance eigenvalues of the centred Z,
  top ``max_eigs`` (2048) kept, p_k = lambda_k / sum(lambda) + eps, same entropy formula.
* alpha-ReQ (Agrawal et al. 2022): weighted least squares fit of
  log(lambda_k) = -alpha * log(k) + c.
* participation ratio: (sum lambda)^2 / sum lambda^2.
* anisotropy: mean off-diagonal cosine similarity between rows of Z.
* intrinsic dimension: TwoNN / MLE from scikit-dimension.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from ._linalg import (
    SpectrumMethod,
    as_matrix,
    as_spectrum,
    covariance_eigenvalues_of,
    singular_values_of,
)
from .errors import GeometryInputError

RankMeVariant = Literal["singular", "covariance"]

#: Named alpha-ReQ fit ranges: half-open 0-based index ranges [start, stop) into the
#: descending eigenvalue vector. "tracing" = Li et al. 2025 (indices 11..99),
#: "reptrix" = the reptrix package default as recorded in REFERENCES.md (10..99).
ALPHA_FIT_RANGES: dict[str, tuple[int, int]] = {"tracing": (11, 100), "reptrix": (10, 100)}

DEFAULT_RANKME_EPS = 1e-7
DEFAULT_MAX_EIGS = 2048


def eigenspectrum(
    Z: Any,
    *,
    center: bool = True,
    max_eigs: int | None = None,
    method: SpectrumMethod = "auto",
) -> np.ndarray:
    """Covariance eigenvalues of ``Z`` in descending order (float64).

    lambda = eigenvalues of Z_c^T Z_c / (N - 1) where Z_c is ``Z`` with column means removed
    (``center=True``, default) or ``Z`` itself (``center=False``). The vector has length
    min(N, D), truncated to the top ``max_eigs`` when given. This equals scikit-learn's
    ``PCA().explained_variance_``.
    """
    z = as_matrix(Z, name="Z", min_rows=2)
    lam = covariance_eigenvalues_of(z, center=center, method=method)
    if max_eigs is not None:
        if int(max_eigs) < 1:
            raise GeometryInputError(f"max_eigs: expected a positive integer, got {max_eigs!r}")
        lam = lam[: int(max_eigs)]
    return lam


def singular_values(Z: Any, *, center: bool = False, method: SpectrumMethod = "auto") -> np.ndarray:
    """Singular values of ``Z`` (uncentred by default), descending, length min(N, D)."""
    z = as_matrix(Z, name="Z")
    if center:
        z = z - z.mean(axis=0, keepdims=True)
    return singular_values_of(z, method=method)


def rankme_from_values(values: Any, *, eps: float = DEFAULT_RANKME_EPS) -> float:
    """exp(entropy) of p_k = v_k / sum(v) + eps for a non-negative spectrum ``values``.

    This is the shared formula of both RankMe variants: pass singular values for the
    Garrido variant or covariance eigenvalues for the covariance variant.
    """
    v = as_spectrum(values, name="values")
    total = float(v.sum())
    if total <= 0.0:
        raise GeometryInputError("values: the spectrum sums to zero (Z is all zeros)")
    if eps < 0:
        raise GeometryInputError(f"eps: expected eps >= 0, got {eps!r}")
    p = v / total + eps
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def rankme(
    Z: Any,
    *,
    variant: RankMeVariant = "singular",
    eps: float = DEFAULT_RANKME_EPS,
    max_eigs: int = DEFAULT_MAX_EIGS,
    method: SpectrumMethod = "auto",
) -> float:
    """RankMe effective rank of ``Z`` (N x D).

    ``variant="singular"`` (default, Garrido et al.): singular values of the *uncentred*
    Z, all min(N, D) of them; ``max_eigs`` is ignored.
    ``variant="covariance"`` (tracing paper / reptrix): eigenvalues of the covariance of
    the column-centred Z, keeping the top ``max_eigs`` (default 2048).
    Both then use p_k = x_k / sum(x) + ``eps`` (default 1e-7) and return
    exp(-sum p_k log p_k). For a flat spectrum of m equal values this is
    (1/m + eps)^-(1 + m*eps), i.e. m up to the eps correction.
    """
    z = as_matrix(Z, name="Z", min_rows=1)
    if variant == "singular":
        values = singular_values_of(z, method=method)
    elif variant == "covariance":
        values = covariance_eigenvalues_of(z, center=True, method=method)[: int(max_eigs)]
    else:
        raise GeometryInputError(f"variant: expected 'singular' or 'covariance', got {variant!r}")
    return rankme_from_values(values, eps=eps)


def rankme_record(
    Z: Any,
    *,
    variant: RankMeVariant = "singular",
    eps: float = DEFAULT_RANKME_EPS,
    max_eigs: int = DEFAULT_MAX_EIGS,
    method: SpectrumMethod = "auto",
) -> dict[str, Any]:
    """RankMe plus the variant and parameters that produced it.

    Returns ``{"metric": "rankme", "variant": ..., "value": float, "params": {...}}`` where
    params holds eps, max_eigs (covariance only), centred, N and D.
    """
    z = as_matrix(Z, name="Z")
    value = rankme(z, variant=variant, eps=eps, max_eigs=max_eigs, method=method)
    params: dict[str, Any] = {
        "eps": eps,
        "centred": variant == "covariance",
        "n": z.shape[0],
        "d": z.shape[1],
    }
    if variant == "covariance":
        params["max_eigs"] = int(max_eigs)
    return {"metric": "rankme", "variant": variant, "value": value, "params": params}


@dataclass(frozen=True)
class AlphaReqResult:
    """Result of :func:`alpha_req`.

    alpha: decay exponent (positive for a decaying spectrum); intercept: c in
    log(lambda_k) = -alpha log(k) + c; r2: ordinary (unweighted) coefficient of
    determination of that line over the fitted points; r2_weighted: the same with the
    fit weights; fit_range: the requested half-open 0-based index range; n_used: points
    actually fitted (the range is clipped to the spectrum and non-positive eigenvalues
    are dropped); weighting: "1/k" or "none".
    """

    alpha: float
    intercept: float
    r2: float
    r2_weighted: float
    fit_range: tuple[int, int]
    n_used: int
    weighting: str

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fit_range"] = list(self.fit_range)
        return d


def _check_fit_range(fit_range: Any) -> tuple[int, int]:
    if isinstance(fit_range, str):
        if fit_range not in ALPHA_FIT_RANGES:
            raise GeometryInputError(
                f"fit_range: unknown preset {fit_range!r}; "
                f"expected one of {sorted(ALPHA_FIT_RANGES)}"
            )
        return ALPHA_FIT_RANGES[fit_range]
    try:
        start, stop = (int(fit_range[0]), int(fit_range[1]))
    except (TypeError, ValueError, IndexError) as exc:
        raise GeometryInputError(
            f"fit_range: expected (start, stop) integers, got {fit_range!r}"
        ) from exc
    if start < 0 or stop <= start:
        raise GeometryInputError(f"fit_range: expected 0 <= start < stop, got {fit_range!r}")
    return start, stop


def alpha_req(
    Z_or_eigs: Any,
    *,
    fit_range: tuple[int, int] | str = ALPHA_FIT_RANGES["tracing"],
    weighting: Literal["1/k", "none"] = "1/k",
    from_eigs: bool = False,
    max_eigs: int = DEFAULT_MAX_EIGS,
    method: SpectrumMethod = "auto",
) -> AlphaReqResult:
    """alpha-ReQ: power-law decay exponent of the covariance eigenspectrum.

    The eigenvalues are those of :func:`eigenspectrum` (centred covariance, top
    ``max_eigs``) or, with ``from_eigs=True``, the given vector (sorted descending).

    Fit: the points are the 0-based indices i in ``range(start, stop)`` (half-open,
    clipped to the spectrum length; eigenvalues <= 0 are skipped). The regressor uses the
    **1-based rank** k = i + 1, so an exact power law lambda_k = C k^-alpha is recovered
    exactly. Weighted least squares minimises sum_i w_i (log lambda_k + alpha log k - c)^2
    with w = 1/k (``weighting="1/k"``, as reptrix) or w = 1 (``"none"``).

    ``fit_range`` defaults to (11, 100), the tracing paper's indices 11..99; the preset
    ``"reptrix"`` is (10, 100), i.e. 10..99. Fewer than 2 usable points gives NaNs.
    """
    start, stop = _check_fit_range(fit_range)
    if weighting not in ("1/k", "none"):
        raise GeometryInputError(f"weighting: expected '1/k' or 'none', got {weighting!r}")
    if from_eigs:
        lam = as_spectrum(Z_or_eigs, name="eigenvalues")[: int(max_eigs)]
    else:
        lam = eigenspectrum(Z_or_eigs, center=True, max_eigs=max_eigs, method=method)
    idx = np.arange(start, min(stop, lam.size))
    idx = idx[lam[idx] > 0] if idx.size else idx
    n_used = int(idx.size)
    nan = float("nan")
    if n_used < 2:
        return AlphaReqResult(nan, nan, nan, nan, (start, stop), n_used, weighting)
    k = (idx + 1).astype(np.float64)
    x = np.log(k)
    y = np.log(lam[idx])
    w = 1.0 / k if weighting == "1/k" else np.ones_like(k)
    design = np.column_stack([-x, np.ones_like(x)])
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)
    alpha, intercept = float(coef[0]), float(coef[1])
    resid = y - design @ coef
    ss_res = float(np.sum(resid**2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    ybar_w = float(np.sum(w * y) / np.sum(w))
    ss_res_w = float(np.sum(w * resid**2))
    ss_tot_w = float(np.sum(w * (y - ybar_w) ** 2))
    tiny = 1e-24 * n_used
    r2 = 1.0 - ss_res / ss_tot if ss_tot > tiny else nan
    r2w = 1.0 - ss_res_w / ss_tot_w if ss_tot_w > tiny else nan
    return AlphaReqResult(alpha, intercept, r2, r2w, (start, stop), n_used, weighting)


def participation_ratio(
    Z_or_eigs: Any,
    *,
    from_eigs: bool = False,
    center: bool = True,
    method: SpectrumMethod = "auto",
) -> float:
    """Participation ratio (sum lambda)^2 / sum lambda^2 of the covariance eigenvalues.

    Lies in [1, min(N, D)]; equals m for m equal non-zero eigenvalues. ``from_eigs=True``
    takes the eigenvalues directly.
    """
    if from_eigs:
        lam = as_spectrum(Z_or_eigs, name="eigenvalues")
    else:
        lam = eigenspectrum(Z_or_eigs, center=center, method=method)
    sq = float(np.sum(lam * lam))
    if sq <= 0.0:
        raise GeometryInputError(
            "Z: all eigenvalues are zero (constant rows); participation ratio undefined"
        )
    return float(np.sum(lam) ** 2 / sq)


def anisotropy(Z: Any) -> float:
    """Mean off-diagonal cosine similarity between the rows of ``Z``.

    With u_i = z_i / ||z_i||: (||sum_i u_i||^2 - N) / (N (N - 1)). 1 for identical
    directions, 0 for mutually orthogonal rows, about 0 for isotropic random rows.
    Rows with zero norm are an error.
    """
    z = as_matrix(Z, name="Z", min_rows=2)
    norms = np.linalg.norm(z, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise GeometryInputError(
            f"Z: row {int(zero[0])} has zero norm; cosine similarity undefined"
        )
    u = z / norms[:, None]
    n = z.shape[0]
    s = u.sum(axis=0)
    return float((s @ s - n) / (n * (n - 1)))


def intrinsic_dimension(
    Z: Any,
    *,
    method: Literal["twonn", "mle"] = "twonn",
    **kwargs: Any,
) -> float:
    """Intrinsic dimension of the point cloud ``Z`` via scikit-dimension.

    ``method="twonn"`` uses ``skdim.id.TwoNN`` (Facco et al. 2017; default discards the
    10% largest neighbour-distance ratios); ``"mle"`` uses ``skdim.id.MLE`` (Levina &
    Bickel). Extra keyword arguments go to the estimator. Duplicate rows are removed
    first (they make nearest-neighbour distances zero). Needs ``pip install scikit-dimension``.
    """
    try:
        import skdim
    except ImportError as exc:  # pragma: no cover - exercised only without the package
        raise ImportError(
            "intrinsic_dimension needs scikit-dimension: pip install scikit-dimension"
        ) from exc
    z = as_matrix(Z, name="Z", min_rows=3)
    z = np.unique(z, axis=0)
    if z.shape[0] < 3:
        raise GeometryInputError("Z: fewer than 3 distinct rows; intrinsic dimension undefined")
    if method == "twonn":
        est = skdim.id.TwoNN(**kwargs)
    elif method == "mle":
        est = skdim.id.MLE(**kwargs)
    else:
        raise GeometryInputError(f"method: expected 'twonn' or 'mle', got {method!r}")
    value = float(est.fit(z).dimension_)
    return value if math.isfinite(value) else float("nan")

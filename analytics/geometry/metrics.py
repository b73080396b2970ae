"""Public metric functions and the registry of per-representation metrics.

The functions themselves live in small modules (``spectral``, ``similarity``,
``weights``, ``phases``) and are re-exported here. :data:`REPRESENTATION_METRICS` maps a
metric name to a function ``(spectra: ZSpectra, params: dict) -> list[dict]`` that
:func:`analytics.geometry.run.compute_geometry` calls for every (checkpoint, layer,
group); :class:`ZSpectra` decomposes Z once and shares the spectra across metrics.
Adding a metric is writing one function and decorating it with :func:`register_metric`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

import numpy as np

from analytics.registry import Registry

from ._linalg import as_matrix, covariance_eigenvalues_of, singular_values_of
from .errors import GeometryInputError
from .phases import PHASE_LABELS, phase_bands, phases
from .similarity import cka_matrix, linear_cka
from .spectral import (
    ALPHA_FIT_RANGES,
    DEFAULT_MAX_EIGS,
    DEFAULT_RANKME_EPS,
    AlphaReqResult,
    alpha_req,
    anisotropy,
    eigenspectrum,
    intrinsic_dimension,
    participation_ratio,
    rankme,
    rankme_from_values,
    rankme_record,
    singular_values,
)
from .weights import (
    IntruderResult,
    PowerLawResult,
    esd,
    intruder_dimensions,
    powerlaw_alpha,
    stable_rank,
    weight_spectra,
)

__all__ = [
    "ALPHA_FIT_RANGES",
    "DEFAULT_MAX_EIGS",
    "DEFAULT_METRIC_PARAMS",
    "DEFAULT_RANKME_EPS",
    "PHASE_LABELS",
    "REPRESENTATION_METRICS",
    "AlphaReqResult",
    "IntruderResult",
    "PowerLawResult",
    "ZSpectra",
    "alpha_req",
    "anisotropy",
    "cka_matrix",
    "eigenspectrum",
    "esd",
    "intrinsic_dimension",
    "intruder_dimensions",
    "linear_cka",
    "participation_ratio",
    "phase_bands",
    "phases",
    "powerlaw_alpha",
    "rankme",
    "rankme_from_values",
    "rankme_record",
    "register_metric",
    "singular_values",
    "stable_rank",
    "weight_spectra",
]


class ZSpectra:
    """A representation matrix with lazily computed, shared float64 spectra.

    ``sv``: singular values of the uncentred Z (descending); ``cov_eigs``: eigenvalues
    of the centred covariance Z_c^T Z_c / (N - 1) (descending, all min(N, D)).
    """

    def __init__(self, Z: Any) -> None:
        self.z = as_matrix(Z, name="Z", min_rows=2)

    @property
    def n(self) -> int:
        return int(self.z.shape[0])

    @property
    def d(self) -> int:
        return int(self.z.shape[1])

    @cached_property
    def sv(self) -> np.ndarray:
        return singular_values_of(self.z, method="auto")

    @cached_property
    def cov_eigs(self) -> np.ndarray:
        return covariance_eigenvalues_of(self.z, center=True, method="auto")


MetricFn = Callable[[ZSpectra, dict[str, Any]], list[dict[str, Any]]]

#: name -> metric function; each returns records {"metric", "variant", "value", "params"}.
REPRESENTATION_METRICS: Registry[MetricFn] = Registry("metric", GeometryInputError)

#: Defaults used by compute_geometry; every record stores the ones it used.
DEFAULT_METRIC_PARAMS: dict[str, Any] = {
    "rankme_eps": DEFAULT_RANKME_EPS,
    "max_eigs": DEFAULT_MAX_EIGS,
    "alpha_fit_range": ALPHA_FIT_RANGES["tracing"],
    "alpha_weighting": "1/k",
    "id_method": "twonn",
    "id_max_points": 2000,
}


def register_metric(name: str) -> Callable[[MetricFn], MetricFn]:
    """Decorator registering a per-representation metric under ``name``."""
    return REPRESENTATION_METRICS.register(name)


def _rec(metric: str, variant: str, value: float, **params: Any) -> dict[str, Any]:
    return {"metric": metric, "variant": variant, "value": float(value), "params": params}


def _degenerate_nan(fn: Callable[..., float], *args: Any, **kwargs: Any) -> float:
    """NaN instead of an error for a degenerate representation (e.g. every row equal, so
    the centred covariance is zero - last-token pooling of an encoder's [SEP] at layer 0)."""
    try:
        return fn(*args, **kwargs)
    except GeometryInputError:
        return float("nan")


@register_metric("rankme_singular")
def _m_rankme_singular(sp: ZSpectra, p: dict[str, Any]) -> list[dict[str, Any]]:
    v = _degenerate_nan(rankme_from_values, sp.sv, eps=p["rankme_eps"])
    return [_rec("rankme", "singular", v, eps=p["rankme_eps"], centred=False)]


@register_metric("rankme_covariance")
def _m_rankme_cov(sp: ZSpectra, p: dict[str, Any]) -> list[dict[str, Any]]:
    lam = sp.cov_eigs[: int(p["max_eigs"])]
    v = _degenerate_nan(rankme_from_values, lam, eps=p["rankme_eps"])
    return [
        _rec(
            "rankme",
            "covariance",
            v,
            eps=p["rankme_eps"],
            centred=True,
            max_eigs=int(p["max_eigs"]),
        )
    ]


@register_metric("alpha_req")
def _m_alpha(sp: ZSpectra, p: dict[str, Any]) -> list[dict[str, Any]]:
    fr = tuple(int(x) for x in p["alpha_fit_range"])
    res = alpha_req(
        sp.cov_eigs,
        from_eigs=True,
        fit_range=fr,
        weighting=p["alpha_weighting"],
        max_eigs=p["max_eigs"],
    )
    prm = {
        "fit_range": list(fr),
        "weighting": p["alpha_weighting"],
        "rank_base": 1,
        "n_used": res.n_used,
    }
    return [
        _rec("alpha_req", "covariance", res.alpha, **prm),
        _rec("alpha_req_r2", "covariance", res.r2, **prm),
    ]


@register_metric("participation_ratio")
def _m_pr(sp: ZSpectra, p: dict[str, Any]) -> list[dict[str, Any]]:
    lam = sp.cov_eigs
    v = float(lam.sum() ** 2 / np.sum(lam * lam)) if np.any(lam > 0) else float("nan")
    return [_rec("participation_ratio", "covariance", v, centred=True)]


@register_metric("stable_rank")
def _m_stable_rank(sp: ZSpectra, p: dict[str, Any]) -> list[dict[str, Any]]:
    s = sp.sv
    v = float(np.sum(sp.z * sp.z) / s[0] ** 2) if s[0] > 0 else float("nan")
    return [_rec("stable_rank", "uncentred", v, centred=False)]


@register_metric("anisotropy")
def _m_anisotropy(sp: ZSpectra, p: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        v = anisotropy(sp.z)
    except ValueError:
        v = float("nan")
    return [_rec("anisotropy", "cosine", v)]


@register_metric("intrinsic_dimension")
def _m_id(sp: ZSpectra, p: dict[str, Any]) -> list[dict[str, Any]]:
    method = p["id_method"]
    z = sp.z
    cap = int(p.get("id_max_points") or 0)
    if cap and z.shape[0] > cap:
        z = z[np.random.default_rng(0).choice(z.shape[0], cap, replace=False)]
    try:
        v = intrinsic_dimension(z, method=method) if z.shape[0] >= 10 else float("nan")
    except ValueError:
        v = float("nan")
    return [_rec("intrinsic_dimension", method, v, n_points=int(z.shape[0]))]

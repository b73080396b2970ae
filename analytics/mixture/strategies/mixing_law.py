"""Data Mixing Laws (Ye et al., ICLR 2025): L_i(r) = c_i + k_i exp(sum_j t_ij r_j).

One law per validation domain i, fitted by non-linear least squares (scipy
``least_squares``, trust-region reflective) from a linearised initialisation. Because the
mixture r lies on the simplex (sum_j r_j = 1), k_i and a common shift of t_i are not
separately identifiable: k exp(t.r) = exp((t + log k).r). The fit uses s_i = t_i + log k_i
and reports the canonical split k_i = exp(mean_j s_ij), t_ij = s_ij - mean_j s_ij.

The proposal minimises the weighted total sum_i a_i L_i(r) over the simplex (within optional
upper bounds): best of ``n_candidates`` Dirichlet samples, polished with SLSQP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from analytics.mixture.dirichlet import DirichletSampler
from analytics.mixture.errors import StrategyInputError
from analytics.mixture.weights import MixtureWeights

from ._proxy import (
    check_losses,
    check_runs,
    cv_predictions,
    dirichlet_candidates,
    domain_weights_vector,
    fit_scores,
    from_proxy_runs,
    upper_bound_vector,
)
from ._registry import StrategyInputs, register_strategy, strategy_spec


def _fit_one(r: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fit (c, s_1..s_G) of y = c + exp(r @ s); returns the parameter vector."""
    from scipy.optimize import least_squares

    spread = float(np.ptp(y)) or max(abs(float(y.min())), 1.0) * 1e-3
    best: tuple[float, np.ndarray] | None = None
    for frac in (1e-3, 0.01, 0.05, 0.1, 0.3, 1.0, 3.0, 10.0):
        c0 = float(y.min()) - frac * spread
        s0, *_ = np.linalg.lstsq(r, np.log(y - c0), rcond=None)
        x0 = np.concatenate([[c0], s0])
        res = least_squares(
            lambda p: p[0] + np.exp(np.clip(r @ p[1:], -50, 50)) - y, x0, method="trf"
        )
        cost = float(res.cost)
        if best is None or cost < best[0]:
            best = (cost, res.x)
    assert best is not None
    return best[1]


def _predict(params: np.ndarray, r: np.ndarray) -> np.ndarray:
    """params: (domains, 1 + G); r: (n, G) -> (n, domains)."""
    return params[:, 0][None, :] + np.exp(np.clip(r @ params[:, 1:].T, -50, 50))


def _fit_all(r: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([_fit_one(r, y[:, i]) for i in range(y.shape[1])])


def _minimise_total(
    params: np.ndarray,
    a: np.ndarray,
    total: Any,
    groups: list[str],
    *,
    n_candidates: int,
    seed: int,
    upper_bounds: Mapping[str, float] | None,
) -> np.ndarray:
    """The mixture minimising ``total``: the best of Dirichlet(1) candidates within the
    bounds, refined by SLSQP (kept only where it improves)."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(seed)
    upper = upper_bound_vector(upper_bounds, groups)
    flat = DirichletSampler.make(groups, prior="uniform")  # alpha = 1 per group
    cand = dirichlet_candidates(flat, n=n_candidates, rng=rng, upper=upper)
    x0 = cand[int(np.argmin(_predict(params, cand) @ a))]
    res = minimize(
        total,
        x0,
        method="SLSQP",
        bounds=[(0.0, float(u)) for u in upper],
        constraints=[{"type": "eq", "fun": lambda x: float(np.sum(x) - 1.0)}],
        options={"maxiter": 500, "ftol": 1e-12},
    )
    x = np.clip(res.x, 0.0, upper) if res.success else x0
    x = x / x.sum()
    if total(x) > total(x0):
        x = x0
    return x


def _laws(params: np.ndarray, cols: list[str], groups: list[str]) -> dict[str, dict]:
    """The fitted laws, by validation domain: {c, k, t per group}."""
    laws = {}
    for i, c in enumerate(cols):
        s = params[i, 1:]
        laws[c] = {
            "c": float(params[i, 0]),
            "k": float(np.exp(s.mean())),
            "t": dict(zip(groups, (s - s.mean()).tolist())),
        }
    return laws


@register_strategy("mixing_law")
def fit_mixing_law(
    df_weights: Any,
    losses: Any,
    *,
    loss_weights: Mapping[str, float] | None = None,
    n_folds: int = 5,
    seed: int = 0,
    n_candidates: int = 20_000,
    upper_bounds: Mapping[str, float] | None = None,
) -> MixtureWeights:
    """Fit one mixing law per validation domain and propose the mixture minimising the total.

    ``df_weights``: DataFrame runs x groups (rows normalised); ``losses``: DataFrame runs x
    validation domains (or one Series). ``loss_weights`` (default equal) weighs the domains in
    the total objective. Diagnostics: per-domain and total ``spearman``/``r2`` of K-fold
    out-of-fold predictions, the fitted ``laws`` {domain: {c, k, t}}, ``predicted_loss``.
    """
    groups, r, dev = check_runs(df_weights)
    frame = check_losses(losses, r.shape[0])
    cols = list(frame.columns)
    y = frame.to_numpy()
    a = domain_weights_vector(loss_weights, cols)
    if r.shape[0] < 4:
        raise StrategyInputError(
            f"df_weights: a mixing-law fit needs at least 4 runs, got {r.shape[0]}"
        )

    oof = cv_predictions(
        r, y, lambda xtr, ytr, xte: _predict(_fit_all(xtr, ytr), xte), n_folds=n_folds, seed=seed
    )
    per_domain = {c: fit_scores(y[:, i], oof[:, i]) for i, c in enumerate(cols)}
    total_scores = fit_scores(y @ a, oof @ a)

    params = _fit_all(r, y)

    def total(x: np.ndarray) -> float:
        return float(_predict(params, x[None, :])[0] @ a)

    x = _minimise_total(
        params, a, total, groups, n_candidates=n_candidates, seed=seed, upper_bounds=upper_bounds
    )
    laws = _laws(params, cols, groups)
    return MixtureWeights(
        dict(zip(groups, x.tolist())),
        method="mixing_law",
        params={
            "law": "L_i(r) = c_i + k_i exp(sum_j t_ij r_j)",
            "fit": "scipy.optimize.least_squares (trf), linearised init",
            "search": f"best of {int(n_candidates)} Dirichlet(1) samples + SLSQP",
            "seed": int(seed),
            "loss_weights": dict(zip(cols, a.tolist())),
            "upper_bounds": dict(upper_bounds) if upper_bounds is not None else None,
        },
        diagnostics={
            **total_scores,
            "per_domain": per_domain,
            "cv": f"{min(int(n_folds), r.shape[0])}-fold out-of-fold",
            "n_runs": int(r.shape[0]),
            "laws": laws,
            "predicted_loss": total(x),
            "best_observed_loss": float((y @ a).min()),
            "max_row_sum_deviation": dev,
        },
        extras={"params": params, "oof_predictions": oof},
    )


@strategy_spec(
    "mixing_law",
    needs=("proxy_runs",),
    summary="Data Mixing Law: exponential law fitted on proxy runs, minimised",
    params={"n_candidates": "candidate mixtures searched (default 20000)"},
)
def _mixing_law(inputs: StrategyInputs, params: dict) -> MixtureWeights:
    return from_proxy_runs("mixing_law", inputs, params)

"""RegMix (Liu et al. 2024): regress validation loss on mixture weights, then search.

Given proxy runs (their mixture weights and validation losses) fit a LightGBM regressor
weights -> loss, score ``n_candidates`` (default 100,000) mixtures drawn from a Dirichlet
distribution, and propose the average of the ``top_k`` mixtures with the lowest predicted
loss. Fit quality is reported from K-fold out-of-fold predictions (Spearman, R^2).

Candidates come from the shared sampler (:mod:`analytics.mixture.dirichlet`). The default
matches the authors: Dirichlet with the token distribution as prior, alpha = concentration
x token distribution, concentration 1 (``tokens`` gives the groups' token counts).
``prior="uniform"`` is mixscope's earlier default, alpha = 1 per group (concentration G).
The prior, the concentration and the prior weights are recorded in the result's params.
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

DEFAULT_LGBM_PARAMS: dict[str, Any] = {
    "objective": "regression",
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 3,
    "subsample": 1.0,
    "verbose": -1,
    "n_jobs": 1,
}


def _lgbm(params: Mapping[str, Any], seed: int):
    try:
        import lightgbm as lgb
    except ImportError as exc:
        raise ImportError("fit_regmix needs LightGBM: pip install 'lightgbm>=4'") from exc
    return lgb.LGBMRegressor(**{**DEFAULT_LGBM_PARAMS, **dict(params), "random_state": seed})


def _regmix_inputs(
    df_weights: Any,
    losses: Any,
    *,
    loss_weights: Mapping[str, float] | None,
    top_k: int,
    tokens: Mapping[str, float] | None,
) -> tuple:
    """The runs checked: (groups, weights, row-sum deviation, loss frame, loss weights,
    combined loss, the token counts of the runs' groups)."""
    groups, w, dev = check_runs(df_weights)
    frame = check_losses(losses, w.shape[0])
    a = domain_weights_vector(loss_weights, list(frame.columns))
    y = frame.to_numpy() @ a
    if w.shape[0] < 4:
        raise StrategyInputError(
            f"df_weights: RegMix needs at least 4 proxy runs, got {w.shape[0]}"
        )
    if not (isinstance(top_k, (int, np.integer)) and top_k >= 1):
        raise StrategyInputError(f"top_k: expected an integer >= 1, got {top_k!r}")
    if tokens is not None:
        unknown = [k for k in tokens if str(k) not in groups]
        tokens = {str(k): v for k, v in tokens.items() if str(k) in groups}
        if unknown and not tokens:
            raise StrategyInputError(f"tokens: none of the groups {groups}; got {unknown[:5]}")
    return groups, w, dev, frame, a, y, tokens


@register_strategy("regmix")
def fit_regmix(
    df_weights: Any,
    losses: Any,
    *,
    loss_weights: Mapping[str, float] | None = None,
    n_candidates: int = 100_000,
    top_k: int = 100,
    n_folds: int = 5,
    seed: int = 0,
    prior: str | Mapping[str, float] | None = "natural",
    tokens: Mapping[str, float] | None = None,
    concentration: float | None = None,
    upper_bounds: Mapping[str, float] | None = None,
    model_params: Mapping[str, Any] | None = None,
) -> MixtureWeights:
    """Fit RegMix and propose a mixture.

    ``df_weights``: DataFrame, one row per proxy run, one column per group (rows are
    normalised to sum to 1). ``losses``: the runs' validation loss (Series/array), or a
    DataFrame of several validation losses combined with ``loss_weights`` (default equal).
    Lower loss is better. Candidates ~ Dirichlet(concentration x prior), restricted to
    ``upper_bounds`` (e.g. from epoch caps): ``prior`` ``natural`` (default, RegMix's
    authors: the token distribution of ``tokens``, group -> token count; concentration 1),
    ``uniform`` (concentration G: alpha = 1 per group, the earlier default) or a mapping of
    group weights. LightGBM parameters default to :data:`DEFAULT_LGBM_PARAMS`, overridable
    with ``model_params``.

    Diagnostics: ``spearman``/``r2`` of out-of-fold predictions, ``n_runs``, ``n_folds``,
    ``predicted_loss`` of the proposal, ``best_observed_loss``, ``max_row_sum_deviation``.
    The model fitted on all runs is in ``result.extras["model"]``.
    """
    groups, w, dev, frame, a, y, tokens = _regmix_inputs(
        df_weights, losses, loss_weights=loss_weights, top_k=top_k, tokens=tokens
    )
    params = dict(model_params or {})
    sampler = DirichletSampler.make(groups, prior=prior, tokens=tokens, concentration=concentration)

    def fit_predict(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray) -> np.ndarray:
        return _lgbm(params, seed).fit(xtr, ytr).predict(xte)

    oof = cv_predictions(w, y, fit_predict, n_folds=n_folds, seed=seed)
    scores = fit_scores(y, oof)
    model = _lgbm(params, seed).fit(w, y)
    rng = np.random.default_rng(seed)
    upper = upper_bound_vector(upper_bounds, groups)
    cand = dirichlet_candidates(sampler, n=n_candidates, rng=rng, upper=upper)
    pred = model.predict(cand)
    k = min(int(top_k), cand.shape[0])
    best = np.argsort(pred, kind="stable")[:k]
    proposal = cand[best].mean(axis=0)
    proposal /= proposal.sum()
    return MixtureWeights(
        dict(zip(groups, proposal.tolist())),
        method="regmix",
        params={
            "regressor": "lightgbm.LGBMRegressor",
            "model_params": {**DEFAULT_LGBM_PARAMS, **params},
            "n_candidates": int(n_candidates),
            "top_k": k,
            "seed": int(seed),
            **sampler.record(),
            "upper_bounds": dict(upper_bounds) if upper_bounds is not None else None,
            "loss_columns": list(frame.columns),
            "loss_weights": dict(zip(frame.columns, a.tolist())),
        },
        diagnostics={
            **scores,
            "cv": f"{min(int(n_folds), w.shape[0])}-fold out-of-fold",
            "n_runs": int(w.shape[0]),
            "n_folds": min(int(n_folds), w.shape[0]),
            "n_candidates_within_bounds": int(cand.shape[0]),
            "predicted_loss": float(model.predict(proposal[None, :])[0]),
            "top_k_mean_predicted_loss": float(pred[best].mean()),
            "best_observed_loss": float(y.min()),
            "max_row_sum_deviation": dev,
        },
        extras={"model": model, "oof_predictions": oof},
    )


@strategy_spec(
    "regmix",
    needs=("proxy_runs",),
    summary="RegMix: LightGBM fitted on proxy runs, best of Dirichlet candidate mixtures",
    params={
        "prior": "natural (token distribution, default) or uniform",
        "concentration": "Dirichlet concentration (default 1 with natural, G with uniform)",
        "n_candidates": "candidate mixtures scored (default 100000)",
        "top_k": "best candidates averaged (default 100)",
    },
)
def _regmix(inputs: StrategyInputs, params: dict) -> MixtureWeights:
    return from_proxy_runs("regmix", inputs, params, tokens=True)

"""Shared plumbing for the regression-from-proxy-runs strategies (RegMix, Data Mixing Laws)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from analytics.mixture.errors import StrategyInputError


def check_runs(df_weights: Any, *, name: str = "df_weights") -> tuple[list[str], np.ndarray, float]:
    """Validate a runs x groups table of mixture weights; return (groups, row-normalised W, max
    |row sum - 1|).
    """
    if not isinstance(df_weights, pd.DataFrame):
        raise StrategyInputError(
            f"{name}: expected a pandas DataFrame (one row per proxy run, one column per group)"
        )
    if df_weights.shape[1] < 2:
        raise StrategyInputError(
            f"{name}: expected at least 2 group columns, got {df_weights.shape[1]}"
        )
    w = np.empty(df_weights.shape, dtype=np.float64)
    for j, col in enumerate(df_weights.columns):
        vals = pd.to_numeric(df_weights[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(vals) | (vals < 0)
        if bad.any():
            row = int(np.argmax(bad))
            raise StrategyInputError(
                f"{name}[{col!r}] row {row}: expected a finite weight >= 0, got "
                f"{df_weights[col].iloc[row]!r}"
            )
        w[:, j] = vals
    sums = w.sum(axis=1)
    if np.any(sums <= 0):
        raise StrategyInputError(f"{name} row {int(np.argmax(sums <= 0))}: all weights are zero")
    return (
        [str(c) for c in df_weights.columns],
        w / sums[:, None],
        float(np.max(np.abs(sums - 1.0))),
    )


def check_losses(losses: Any, n_runs: int, *, name: str = "losses") -> pd.DataFrame:
    """Losses as a runs x validation-domains DataFrame of finite floats (a Series/array gives one
    column).
    """
    if isinstance(losses, pd.DataFrame):
        frame = losses.copy()
    elif isinstance(losses, pd.Series):
        frame = losses.to_frame(name=str(losses.name) if losses.name is not None else "loss")
    else:
        arr = np.asarray(losses, dtype=np.float64)
        if arr.ndim == 1:
            frame = pd.DataFrame({"loss": arr})
        elif arr.ndim == 2:
            frame = pd.DataFrame(arr, columns=[f"loss_{i}" for i in range(arr.shape[1])])
        else:
            raise StrategyInputError(f"{name}: expected 1-D or 2-D losses, got shape {arr.shape}")
    if len(frame) != n_runs:
        raise StrategyInputError(f"{name}: expected {n_runs} rows (one per run), got {len(frame)}")
    frame.columns = [str(c) for c in frame.columns]
    for col in frame.columns:
        vals = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(vals)):
            raise StrategyInputError(
                f"{name}[{col!r}] row {int(np.argmax(~np.isfinite(vals)))}: expected a finite loss"
            )
        frame[col] = vals
    return frame.reset_index(drop=True)


def domain_weights_vector(
    domain_weights: Mapping[str, float] | None, columns: list[str]
) -> np.ndarray:
    """Importance of each validation domain in the total objective (default equal, sums to 1)."""
    if domain_weights is None:
        return np.full(len(columns), 1.0 / len(columns))
    unknown = [k for k in domain_weights if str(k) not in columns]
    if unknown:
        raise StrategyInputError(
            f"loss_weights: unknown validation column(s) {unknown}; known: {columns}"
        )
    a = np.array([float(domain_weights.get(c, 0.0)) for c in columns])
    if not np.all(np.isfinite(a)) or np.any(a < 0) or a.sum() <= 0:
        raise StrategyInputError("loss_weights: expected finite values >= 0 with a positive total")
    return a / a.sum()


def upper_bound_vector(upper_bounds: Mapping[str, float] | None, groups: list[str]) -> np.ndarray:
    if upper_bounds is None:
        return np.ones(len(groups))
    unknown = [k for k in upper_bounds if str(k) not in groups]
    if unknown:
        raise StrategyInputError(f"upper_bounds: unknown group(s) {unknown}; known: {groups}")
    ub = np.array([float(upper_bounds.get(g, 1.0)) for g in groups])
    if not np.all(np.isfinite(ub)) or np.any(ub < 0):
        raise StrategyInputError("upper_bounds: expected finite values >= 0")
    if ub.sum() < 1.0 - 1e-12:
        raise StrategyInputError(
            f"upper_bounds: they sum to {ub.sum():.6g} < 1, no mixture satisfies them"
        )
    return np.minimum(ub, 1.0)


def dirichlet_candidates(
    sampler: Any,
    *,
    n: int,
    rng: np.random.Generator,
    upper: np.ndarray,
) -> np.ndarray:
    """``n`` mixtures drawn by ``sampler`` (a :class:`~analytics.mixture.dirichlet.
    DirichletSampler`), kept within ``upper``."""
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise StrategyInputError(f"n_candidates: expected an integer >= 1, got {n!r}")
    cand = sampler.draw(int(n), rng)
    ok = np.all(cand <= upper[None, :] + 1e-12, axis=1)
    if not ok.any():
        raise StrategyInputError(
            "upper_bounds: none of the sampled mixtures satisfies the bounds; loosen them"
        )
    return cand[ok]


def cv_predictions(
    x: np.ndarray,
    y: np.ndarray,
    fit_predict: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    *,
    n_folds: int,
    seed: int,
) -> np.ndarray:
    """Out-of-fold predictions (KFold, shuffled with ``seed``); y may be 1-D or 2-D."""
    from sklearn.model_selection import KFold

    n = x.shape[0]
    k = min(int(n_folds), n)
    if k < 2:
        raise StrategyInputError(
            f"n_folds: need at least 2 folds and 2 runs, got n_folds={n_folds}, runs={n}"
        )
    pred = np.zeros_like(y, dtype=np.float64)
    for train, test in KFold(n_splits=k, shuffle=True, random_state=seed).split(x):
        pred[test] = fit_predict(x[train], y[train], x[test])
    return pred


def fit_scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Spearman rank correlation and R^2 (1 - SS_res / SS_tot) of held-out predictions."""
    from scipy.stats import spearmanr

    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = float(1.0 - np.sum((y - pred) ** 2) / ss_tot) if ss_tot > 0 else float("nan")
    rho = spearmanr(y, pred).statistic if np.ptp(y) > 0 and np.ptp(pred) > 0 else float("nan")
    return {"spearman": float(rho), "r2": r2}


def from_proxy_runs(
    method: str, inputs: Any, params: Mapping[str, Any], *, tokens: bool = False
) -> Any:
    """A proxy-run strategy over a resolver's inputs (its runs, groups and seed; RegMix also
    takes the token counts as its prior): :func:`analytics.mixture.builder.fit_proxy_runs`."""
    from analytics.mixture.builder import fit_proxy_runs

    df_w, losses = inputs.proxy_runs
    extra = {"tokens": inputs.tokens} if tokens else {}
    return fit_proxy_runs(
        method, df_w, losses, groups=inputs.groups, seed=inputs.seed, **extra, **params
    )

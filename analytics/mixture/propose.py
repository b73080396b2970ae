"""Fit regressors on a swarm of proxy runs and propose a mixture under constraints.

Three regressors map a mixture (weights on the simplex) to the objective (a proxy's bits
per byte on the target, or the mean over groups):

* ``lightgbm``: RegMix (Liu et al. 2024), LightGBM with RegMix's parameters
  (:data:`~analytics.mixture.strategies.regmix.DEFAULT_LGBM_PARAMS`);
* ``mixing_law``: the Data Mixing Law (Ye et al. 2025), L(r) = c + exp(s . r), fitted by
  non-linear least squares with a small ridge penalty on s (with fewer runs than groups the
  law is otherwise not identified). This is also the form of Olmix's ``log_linear``;
* ``loglinear``: L(r) = a + sum_j b_j log(r_j + eps), ridge regression on log weights
  (diminishing returns of upweighting a group).

Each is scored by K-fold cross-validation: Spearman and R^2 of out-of-fold predictions.

:func:`propose` minimises the predicted objective (by default the mean prediction
of the regressors that predict held-out runs better than their mean (positive CV R^2; else
the one with the best held-out Spearman), or of all, or one regressor's) over the simplex
subject to

* a maximum number of epochs per group: w_g * budget <= max_epochs * available_g;
* fixed weights: w_g = value for the given groups;
* a KL bound to the natural mixture: sum_g w_g log(w_g / natural_g) <= kl_max;

with scipy's SLSQP started from the best of many feasible candidates (Dirichlet draws around
the natural and the uniform mixture, the swarm's own mixtures, natural and uniform), each
result checked against the constraints (LightGBM is piecewise constant, so the candidate
search does most of the work for it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InfeasibleMixtureError, StrategyInputError
from .strategies._proxy import cv_predictions, fit_scores

REGRESSORS = ("lightgbm", "mixing_law", "loglinear")
LOG_EPS = 1e-3
RIDGE = 1e-3


# ----------------------------------------------------------------------------- regressors


def _fit_lightgbm(x: np.ndarray, y: np.ndarray, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    from .strategies.regmix import _lgbm

    n = x.shape[0]
    params = {"min_child_samples": max(1, min(3, n // 4)), "min_data_in_bin": 1}
    model = _lgbm(params, seed).fit(x, y)
    return lambda z: np.asarray(model.predict(np.atleast_2d(z)), dtype=np.float64)


def _fit_mixing_law(x: np.ndarray, y: np.ndarray, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    from scipy.optimize import least_squares

    n, g = x.shape
    spread = float(np.ptp(y)) or max(abs(float(y.min())), 1.0) * 1e-3
    lam = math.sqrt(RIDGE * n) * spread
    center = lam * (np.eye(g) - 1.0 / g)

    def resid(p: np.ndarray) -> np.ndarray:
        s = p[1:]
        return np.concatenate([p[0] + np.exp(np.clip(x @ s, -50, 50)) - y, center @ s])

    def jac(p: np.ndarray) -> np.ndarray:
        e = np.exp(np.clip(x @ p[1:], -50, 50))
        top = np.hstack([np.ones((n, 1)), e[:, None] * x])
        return np.vstack([top, np.hstack([np.zeros((g, 1)), center])])

    best: tuple[float, np.ndarray] | None = None
    feats = np.hstack([x, np.ones((n, 1))])
    for frac in (0.05, 0.5, 2.0):
        c0 = float(y.min()) - frac * spread
        s0, *_ = np.linalg.lstsq(feats, np.log(y - c0), rcond=None)
        p0 = np.concatenate([[c0], s0[:g] + s0[g]])  # intercept folded into s (sum r = 1)
        lo = np.full(g + 1, -np.inf)
        lo[0] = 0.0  # bits per byte are >= 0: the law's floor c too
        hi = np.full(g + 1, np.inf)
        hi[0] = float(y.min())
        p0[0] = min(max(p0[0], 0.0), hi[0] * (1 - 1e-9))
        res = least_squares(resid, p0, jac=jac, method="trf", max_nfev=200, bounds=(lo, hi))
        if best is None or res.cost < best[0]:
            best = (float(res.cost), res.x)
    assert best is not None
    p = best[1]
    return lambda z: p[0] + np.exp(np.clip(np.atleast_2d(z) @ p[1:], -50, 50))


def _fit_loglinear(x: np.ndarray, y: np.ndarray, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    from sklearn.linear_model import Ridge

    feats = np.log(x + LOG_EPS)
    model = Ridge(alpha=RIDGE * len(y)).fit(feats, y)
    return lambda z: np.asarray(model.predict(np.log(np.atleast_2d(z) + LOG_EPS)), dtype=np.float64)


FITTERS: dict[str, Callable[[np.ndarray, np.ndarray, int], Callable[[np.ndarray], np.ndarray]]] = {
    "lightgbm": _fit_lightgbm,
    "mixing_law": _fit_mixing_law,
    "loglinear": _fit_loglinear,
}

LABELS = {
    "lightgbm": "RegMix (LightGBM)",
    "mixing_law": "Data Mixing Law c + exp(s·r)",
    "loglinear": "log-linear a + Σ b·log(r+ε)",
}


@dataclass
class FittedRegressor:
    name: str
    predict: Callable[[np.ndarray], np.ndarray]
    spearman: float
    r2: float
    oof: np.ndarray

    def scores(self) -> dict[str, float]:
        return {"spearman": self.spearman, "r2": self.r2}


def check_swarm(weights: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(weights, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if w.ndim != 2 or w.shape[0] != len(y):
        raise StrategyInputError(
            f"swarm: expected one objective per run, got {w.shape[0]} runs and {len(y)} values"
        )
    if w.shape[0] < 4:
        raise StrategyInputError(f"swarm: fitting needs at least 4 proxy runs, got {w.shape[0]}")
    if not (np.all(np.isfinite(w)) and np.all(w >= 0)) or np.any(w.sum(axis=1) <= 0):
        raise StrategyInputError("swarm: weights must be finite, >= 0, with a positive total")
    if not np.all(np.isfinite(y)):
        raise StrategyInputError("swarm: every run needs a finite objective value")
    return w / w.sum(axis=1, keepdims=True), y


def fit_regressors(
    weights: np.ndarray,
    y: np.ndarray,
    *,
    names: Sequence[str] = REGRESSORS,
    n_folds: int = 5,
    seed: int = 0,
) -> dict[str, FittedRegressor]:
    """Fit each regressor on all runs; score it by K-fold out-of-fold Spearman and R^2."""
    w, y = check_swarm(weights, y)
    out = {}
    for name in names:
        if name not in FITTERS:
            raise StrategyInputError(f"regressor: {name!r} is not one of {', '.join(FITTERS)}")
        fit = FITTERS[name]
        oof = cv_predictions(
            w, y, lambda a, b, c, _f=fit: _f(a, b, seed)(c), n_folds=n_folds, seed=seed
        )
        sc = fit_scores(y, oof)
        out[name] = FittedRegressor(name, fit(w, y, seed), sc["spearman"], sc["r2"], oof)
    return out


def predict_all(regs: Mapping[str, FittedRegressor], w: Any) -> dict[str, float]:
    x = np.asarray(w, dtype=np.float64).reshape(1, -1)
    return {n: float(r.predict(x)[0]) for n, r in regs.items()}


# ----------------------------------------------------------------------------- constraints


def kl(w: np.ndarray, q: np.ndarray) -> float:
    """KL(w || q) in nats (0 log 0 = 0)."""
    w = np.asarray(w, dtype=np.float64)
    m = w > 0
    return float(np.sum(w[m] * np.log(w[m] / q[m])))


@dataclass
class Constraints:
    """Bounds per group (from max epochs and fixed weights) and an optional KL bound."""

    groups: list[str]
    lower: np.ndarray
    upper: np.ndarray
    natural: np.ndarray
    kl_max: float | None
    fixed: dict[str, float] = field(default_factory=dict)
    max_epochs: float | None = None

    def violations(self, w: np.ndarray, tol: float = 1e-6) -> list[str]:
        out = []
        if abs(float(np.sum(w)) - 1.0) > tol:
            out.append(f"weights sum to {np.sum(w):.6g}")
        for i, g in enumerate(self.groups):
            if w[i] < self.lower[i] - tol or w[i] > self.upper[i] + tol:
                out.append(f"{g}: {w[i]:.6g} outside [{self.lower[i]:.6g}, {self.upper[i]:.6g}]")
        if self.kl_max is not None and kl(w, self.natural) > self.kl_max + tol:
            out.append(f"KL to natural {kl(w, self.natural):.6g} > {self.kl_max:.6g}")
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "max_epochs": self.max_epochs,
            "fixed": dict(self.fixed),
            "kl_max": self.kl_max,
            "upper": dict(zip(self.groups, self.upper.tolist())),
        }


def make_constraints(
    groups: Sequence[str],
    available: Mapping[str, float],
    *,
    budget: float,
    max_epochs: float | None = None,
    fixed: Mapping[str, float] | None = None,
    kl_max: float | None = None,
) -> Constraints:
    """Constraints over ``groups``; ``available`` = tokens per group (natural ∝ available)."""
    groups = [str(g) for g in groups]
    avail = np.array([float(available.get(g, 0.0)) for g in groups])
    if not np.all(np.isfinite(avail)) or np.any(avail < 0) or avail.sum() <= 0:
        raise StrategyInputError("available tokens: expected finite values >= 0, not all zero")
    if not (math.isfinite(budget) and budget > 0):
        raise StrategyInputError(f"budget: expected a positive number of tokens, got {budget!r}")
    natural = avail / avail.sum()
    upper = np.ones(len(groups))
    lower = np.zeros(len(groups))
    if max_epochs is not None:
        if not (math.isfinite(max_epochs) and max_epochs > 0):
            raise StrategyInputError(f"max_epochs: expected a number > 0, got {max_epochs!r}")
        upper = np.minimum(1.0, max_epochs * avail / budget)
    fx = {str(k): float(v) for k, v in (fixed or {}).items()}
    for g, v in fx.items():
        if g not in groups:
            raise StrategyInputError(f"fixed: unknown group {g!r}; groups are {groups}")
        if not (math.isfinite(v) and 0 <= v <= 1):
            raise StrategyInputError(f"fixed[{g!r}]: expected a weight in [0, 1], got {v!r}")
        i = groups.index(g)
        if v > upper[i] + 1e-12:
            raise InfeasibleMixtureError(
                f"fixed[{g!r}] = {v:.4g} exceeds its max-epochs bound {upper[i]:.4g}"
            )
        lower[i] = upper[i] = v
    if sum(fx.values()) > 1 + 1e-9:
        raise InfeasibleMixtureError(f"fixed: weights sum to {sum(fx.values()):.4g} > 1")
    if upper.sum() < 1 - 1e-9:
        raise InfeasibleMixtureError(
            f"max_epochs: all groups together hold only {upper.sum():.4g} of the budget at "
            f"{max_epochs} epochs; raise max_epochs or lower the budget"
        )
    if lower.sum() > 1 - 1e-9 and len(fx) < len(groups):
        free = [g for g in groups if g not in fx]
        upper[[groups.index(g) for g in free]] = 0.0
    if kl_max is not None and not (math.isfinite(kl_max) and kl_max >= 0):
        raise StrategyInputError(f"kl_max: expected a number >= 0, got {kl_max!r}")
    return Constraints(groups, lower, upper, natural, kl_max, fx, max_epochs)


def _project_bounds(w: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Closest-in-spirit point of {lo <= w <= hi, sum w = 1}: clip, then spread the excess or
    deficit over the groups with room, proportionally to w (a few rounds)."""
    x = np.clip(w, lo, hi)
    for _ in range(50):
        gap = 1.0 - x.sum()
        if abs(gap) < 1e-12:
            break
        room = (hi - x) if gap > 0 else (x - lo)
        share = np.where(room > 1e-15, np.maximum(x, 1e-12), 0.0)
        if share.sum() <= 0:
            share = (room > 1e-15).astype(float)
            if share.sum() <= 0:
                break
        x = np.clip(x + gap * share / share.sum(), lo, hi)
    return x


def _toward_natural(w: np.ndarray, c: Constraints) -> np.ndarray:
    """Mix w with natural (itself projected) until the KL bound holds (bisection)."""
    if c.kl_max is None or kl(w, c.natural) <= c.kl_max:
        return w
    nat = _project_bounds(c.natural, c.lower, c.upper)
    if kl(nat, c.natural) > c.kl_max:
        return nat
    lo, hi = 0.0, 1.0  # fraction of w kept
    for _ in range(40):
        mid = (lo + hi) / 2
        if kl(mid * w + (1 - mid) * nat, c.natural) <= c.kl_max:
            lo = mid
        else:
            hi = mid
    return lo * w + (1 - lo) * nat


# ----------------------------------------------------------------------------- proposal


@dataclass
class Proposal:
    weights: dict[str, float]
    objective: str
    predicted: dict[str, float]
    predicted_mean: float
    constraints: dict[str, Any]
    n_candidates: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "objective": self.objective,
            "predicted": self.predicted,
            "predicted_mean": self.predicted_mean,
            "constraints": self.constraints,
            "n_candidates": self.n_candidates,
            "method": self.method,
        }


def propose(
    predict: Callable[[np.ndarray], np.ndarray],
    constraints: Constraints,
    *,
    extra_starts: np.ndarray | None = None,
    n_candidates: int = 20_000,
    n_polish: int = 3,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """The feasible mixture minimising ``predict`` (vectorised: (n, G) -> (n,)); returns
    (weights, number of feasible candidates scored)."""
    from scipy.optimize import minimize

    c = constraints
    g = len(c.groups)
    rng = np.random.default_rng(seed)
    uni = np.full(g, 1.0 / g)
    starts = [c.natural, uni]
    parts = []
    per = max(1, n_candidates // 6)
    for base in (c.natural, uni):
        for conc in (1.0, float(g), 10.0 * g):
            parts.append(rng.dirichlet(np.maximum(conc * base, 1e-3), size=per))
    cand = np.vstack(
        [*parts, np.array(starts)]
        + ([extra_starts] if extra_starts is not None and len(extra_starts) else [])
    )
    cand = np.array([_toward_natural(_project_bounds(w, c.lower, c.upper), c) for w in cand])
    ok = np.array([not c.violations(w, tol=1e-6) for w in cand])
    cand = cand[ok]
    if len(cand) == 0:
        raise InfeasibleMixtureError(
            "no mixture satisfies the constraints together (max epochs, fixed weights, KL "
            "bound); loosen one of them"
        )
    scores = np.asarray(predict(cand), dtype=np.float64)
    order = np.argsort(scores, kind="stable")
    best_w, best_f = cand[order[0]], float(scores[order[0]])

    def f(x: np.ndarray) -> float:
        return float(predict(x[None, :])[0])

    h = 1e-5

    def grad(x: np.ndarray) -> np.ndarray:  # forward differences in one batched prediction
        pts = np.vstack([x[None, :], x[None, :] + h * np.eye(g)])
        v = np.asarray(predict(pts), dtype=np.float64)
        return (v[1:] - v[0]) / h

    cons = [{"type": "eq", "fun": lambda x: float(np.sum(x) - 1.0)}]
    if c.kl_max is not None:
        cons.append(
            {"type": "ineq", "fun": lambda x: c.kl_max - kl(np.clip(x, 1e-15, 1), c.natural)}
        )
    bounds = list(zip(c.lower.tolist(), c.upper.tolist()))
    for k in order[:n_polish]:
        res = minimize(
            f,
            cand[k],
            jac=grad,
            method="SLSQP",
            bounds=bounds,
            constraints=cons,
            options={"maxiter": 200, "ftol": 1e-10},
        )
        x = np.clip(res.x, c.lower, c.upper)
        x = x / x.sum() if x.sum() > 0 else x
        if not c.violations(x, tol=1e-6):
            fx = f(x)
            if fx < best_f:
                best_w, best_f = x, fx
    return best_w, int(len(cand))


def chosen_regressors(regs: Mapping[str, FittedRegressor], use: str = "auto") -> list[str]:
    """Which regressors the proposal minimises (their mean): ``auto`` = those whose held-out
    R^2 is positive (they predict better than the mean of the runs), else the one with the
    best held-out Spearman; ``mean`` = all; or one name."""
    if use == "mean":
        return list(regs)
    if use == "auto":
        good = [n for n, r in regs.items() if np.isfinite(r.r2) and r.r2 > 0]
        if good:
            return good
        ranked = sorted(
            regs, key=lambda n: -(regs[n].spearman if np.isfinite(regs[n].spearman) else -np.inf)
        )
        return ranked[:1]
    if use not in regs:
        raise StrategyInputError(f"regressor: {use!r} is not one of auto, mean, {', '.join(regs)}")
    return [use]


def objective_predictor(
    regs: Mapping[str, FittedRegressor], use: str = "auto"
) -> Callable[[np.ndarray], np.ndarray]:
    """The mean prediction of :func:`chosen_regressors`."""
    fns = [regs[n].predict for n in chosen_regressors(regs, use)]
    return lambda x: np.mean([fn(x) for fn in fns], axis=0)

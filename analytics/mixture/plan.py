"""Budget accounting: target tokens, epochs and effective data per group, and caps.

Definitions (per group g, phase budget B tokens):

* target tokens T_g = B * w_g, rounded to integers by the largest-remainder method so that
  sum_g T_g = B exactly (:func:`allocate_tokens`);
* epochs E_g = T_g / n_g (n_g = available tokens); R_g = max(E_g - 1, 0) repetitions;
* effective tokens under the data-constrained scaling law (Muennighoff et al. 2023):
  D'_g = T_g if E_g <= 1, else U + U R* (1 - exp(-R_g / R*)) with U = n_g, R* = 15.4;
* a warning when E_g > ``warn_epochs`` (default 4: beyond ~4 epochs repeated data is worth
  visibly less than fresh data);
* caps: ``max_epochs`` (E_g <= cap) and ``max_fraction`` (w_g <= cap), each a number for all
  groups or a mapping per group; :func:`apply_caps` enforces them by water-filling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import numpy as np
import pandas as pd

from .errors import InfeasibleMixtureError, StrategyInputError
from .weights import MixtureWeights, check_positive, check_tokens, check_weights

R_STAR = 15.4
WARN_EPOCHS = 4.0


def effective_tokens(unique_tokens: float, epochs: float, *, r_star: float = R_STAR) -> float:
    """D' for ``epochs`` passes over ``unique_tokens`` (U): U*E if E <= 1 else U + U R*(1 -
    exp(-(E-1)/R*)).
    """
    if epochs <= 1:
        return unique_tokens * epochs
    r = epochs - 1.0
    return unique_tokens + unique_tokens * r_star * (1.0 - math.exp(-r / r_star))


def allocate_tokens(weights: Mapping[str, float], budget: int) -> dict[str, int]:
    """Integer token targets floor(B w_g) plus one for the largest remainders, summing to B exactly.

    Exact decimal arithmetic; ties broken by group order.
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise StrategyInputError(
            f"budget: expected an integer number of tokens >= 0, got {budget!r}"
        )
    budget = int(budget)
    w = {g: Decimal(repr(float(v))) for g, v in weights.items()}
    total = sum(w.values())
    if total <= 0:
        raise StrategyInputError("weights: the total must be > 0")
    exact = {g: Decimal(budget) * v / total for g, v in w.items()}
    base = {g: int(x.to_integral_value(rounding=ROUND_FLOOR)) for g, x in exact.items()}
    short = budget - sum(base.values())
    order = sorted(exact, key=lambda g: (-(exact[g] - base[g]), list(exact).index(g)))
    for g in order[:short]:
        base[g] += 1
    return base


def _per_group(
    value: float | Mapping[str, float] | None, groups: list[str], *, name: str
) -> dict[str, float | None]:
    if value is None:
        return {g: None for g in groups}
    if isinstance(value, Mapping):
        unknown = [str(k) for k in value if str(k) not in groups]
        if unknown:
            raise StrategyInputError(f"{name}: unknown group(s) {unknown}; known: {groups}")
        out = {g: (None if value.get(g) is None else float(value[g])) for g in groups}
    else:
        out = {g: float(value) for g in groups}
    for g, v in out.items():
        if v is not None and (not math.isfinite(v) or v <= 0):
            raise StrategyInputError(f"{name}[{g!r}]: expected a finite number > 0, got {v!r}")
    return out


def plan_table(
    tokens: Mapping[str, float],
    docs: Mapping[str, float],
    weights: Mapping[str, float],
    budget: int,
    *,
    max_epochs: float | Mapping[str, float] | None = None,
    max_fraction: float | Mapping[str, float] | None = None,
    warn_epochs: float = WARN_EPOCHS,
    r_star: float = R_STAR,
) -> pd.DataFrame:
    """One row per group: the budget accounting of the module docstring.

    Columns: ``group, weight, target_tokens, available_tokens, available_docs, epochs,
    repetitions, unique_tokens, effective_tokens, effective_fraction, max_epochs,
    max_fraction, over_epoch_cap, over_fraction_cap, warning``.
    ``effective_fraction`` = effective / target tokens (1 for fresh data). Groups present in
    ``tokens`` but not in ``weights`` get weight 0; a weighted group missing from ``tokens``
    is an error. A group with weight > 0 and no tokens gets ``epochs = inf`` and a warning.
    """
    n, d, w, b = _check_plan_inputs(tokens, docs, weights, budget)
    groups = list(n)
    caps_e = _per_group(max_epochs, groups, name="max_epochs")
    caps_f = _per_group(max_fraction, groups, name="max_fraction")
    target = allocate_tokens(w, b)
    rows = [
        _plan_row(
            g,
            n[g],
            target[g],
            w[g],
            float(d[g]),
            caps_e[g],
            caps_f[g],
            warn_epochs=warn_epochs,
            r_star=r_star,
        )  # fmt: skip
        for g in groups
    ]
    return pd.DataFrame(rows)


def _check_plan_inputs(
    tokens: Mapping[str, float],
    docs: Mapping[str, float],
    weights: Mapping[str, float],
    budget: int,
) -> tuple[dict[str, float], dict[str, Any], dict[str, float], int]:
    """(tokens, docs, weights of every group (0 where unweighted), budget), checked."""
    n = check_tokens(tokens, name="tokens")
    d = {str(k): v for k, v in docs.items()}
    for g in n:
        if g not in d:
            raise StrategyInputError(f"docs: no document count for group {g!r}")
        x = float(d[g])
        if not math.isfinite(x) or x < 0:
            raise StrategyInputError(f"docs[{g!r}]: expected a finite count >= 0, got {d[g]!r}")
    w_in = check_weights(weights)
    unknown = [g for g in w_in if g not in n]
    if unknown:
        raise StrategyInputError(f"weights: group(s) {unknown} have no entry in tokens")
    w = {g: w_in.get(g, 0.0) for g in n}
    b = int(check_positive(budget, name="budget"))
    if b != budget:
        raise StrategyInputError(f"budget: expected an integer number of tokens, got {budget!r}")
    return n, d, w, b


def _plan_row(
    g: str,
    avail: float,
    t: int,
    weight: float,
    n_docs: float,
    cap_e: float | None,
    cap_f: float | None,
    *,
    warn_epochs: float,
    r_star: float,
) -> dict[str, Any]:
    """One group's row of :func:`plan_table`."""
    if avail > 0:
        epochs = t / avail
    else:
        epochs = math.inf if t > 0 else 0.0
    reps = max(epochs - 1.0, 0.0)
    unique = min(float(t), avail)
    eff = (
        effective_tokens(avail, epochs, r_star=r_star)
        if math.isfinite(epochs) and avail > 0
        else 0.0
    )
    msgs = []
    over_e = cap_e is not None and epochs > cap_e * (1 + 1e-9)
    over_f = cap_f is not None and weight > cap_f + 1e-12
    if avail <= 0 and t > 0:
        msgs.append("no tokens available for a group with weight > 0")
    elif epochs > warn_epochs:
        msgs.append(
            f"repeated {epochs:.2f} epochs (> {warn_epochs:g}): effective data {eff / t:.0%} "
            "of the target tokens"
        )
    if over_e:
        msgs.append(f"epochs {epochs:.3g} exceed the max_epochs cap {cap_e:g}")
    if over_f:
        msgs.append(f"weight {weight:.4g} exceeds the max_fraction cap {cap_f:g}")
    return {
        "group": g,
        "weight": weight,
        "target_tokens": t,
        "available_tokens": avail,
        "available_docs": n_docs,
        "epochs": epochs,
        "repetitions": reps,
        "unique_tokens": unique,
        "effective_tokens": eff,
        "effective_fraction": (eff / t) if t > 0 else 1.0,
        "max_epochs": cap_e,
        "max_fraction": cap_f,
        "over_epoch_cap": bool(over_e),
        "over_fraction_cap": bool(over_f),
        "warning": "; ".join(msgs),
    }


def apply_caps(
    weights: Mapping[str, float],
    tokens: Mapping[str, float],
    budget: float,
    *,
    max_epochs: float | Mapping[str, float] | None = None,
    max_fraction: float | Mapping[str, float] | None = None,
) -> MixtureWeights:
    """Clip weights to the caps and hand the excess to the uncapped groups (water-filling).

    Upper bound u_g = min(max_fraction_g, max_epochs_g * n_g / budget). Repeatedly: clip every
    w_g > u_g to u_g and redistribute the removed mass over the groups still below their bound,
    proportionally to their current weights. Raises :class:`InfeasibleMixtureError` when the
    bounds (or the groups with weight > 0) cannot absorb the whole mass.
    """
    n = check_tokens(tokens, name="tokens")
    w_in = check_weights(weights)
    unknown = [g for g in w_in if g not in n]
    if unknown:
        raise StrategyInputError(f"weights: group(s) {unknown} have no entry in tokens")
    b = check_positive(budget, name="budget")
    groups = list(n)
    caps_e = _per_group(max_epochs, groups, name="max_epochs")
    caps_f = _per_group(max_fraction, groups, name="max_fraction")
    upper = {}
    for g in groups:
        u = 1.0
        if caps_f[g] is not None:
            u = min(u, caps_f[g])
        if caps_e[g] is not None:
            u = min(u, caps_e[g] * n[g] / b)
        upper[g] = u
    w = {g: w_in.get(g, 0.0) for g in groups}
    fixed: set[str] = set()
    for _ in range(len(groups) + 1):
        over = [g for g in groups if g not in fixed and w[g] > upper[g] * (1 + 1e-12)]
        if not over:
            break
        for g in over:
            w[g] = upper[g]
            fixed.add(g)
        free = [g for g in groups if g not in fixed and w[g] > 0]
        excess = 1.0 - sum(w.values())
        free_mass = sum(w[g] for g in free)
        if excess > 1e-12 and free_mass <= 0:
            raise InfeasibleMixtureError(
                f"caps: after capping {sorted(fixed)} a share of {excess:.4g} is left and no "
                "other group "
                "with weight > 0 can take it; raise the caps or the weights of other groups"
            )
        for g in free:
            w[g] += excess * w[g] / free_mass
    if abs(sum(w.values()) - 1.0) > 1e-9 or any(w[g] > upper[g] * (1 + 1e-9) for g in groups):
        raise InfeasibleMixtureError("caps: the caps cannot be met with weights summing to 1")
    return MixtureWeights(
        w,
        method=getattr(weights, "method", "manual"),
        params={
            **getattr(weights, "params", {}),
            "caps": {"max_epochs": max_epochs, "max_fraction": max_fraction},
        },
        diagnostics={**getattr(weights, "diagnostics", {}), "capped_groups": sorted(fixed)},
    )


def weight_diversity(weights: Mapping[str, float]) -> dict[str, float]:
    """Diversity of a mixture: Shannon entropy (nats), effective number of groups exp(H),
    Gini-Simpson index 1 - sum w^2, and the largest weight."""
    w = np.array(list(check_weights(weights).values()))
    pos = w[w > 0]
    h = float(-np.sum(pos * np.log(pos)))
    return {
        "entropy": h,
        "effective_groups": math.exp(h),
        "gini_simpson": float(1 - np.sum(w**2)),
        "max_weight": float(w.max()),
    }

"""Temperature sampling: p_g proportional to n_g^(1/T)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from analytics.mixture.weights import MixtureWeights, check_positive, check_tokens

from ._registry import StrategyInputs, check_params, register_strategy, strategy_spec


@register_strategy("temperature")
def temperature_weights(
    tokens: Mapping[str, float],
    temperature: float,
    *,
    cap: float | None = None,
) -> MixtureWeights:
    """p_g = m_g^(1/T) / sum_h m_h^(1/T) with m_g = n_g, or m_g = min(n_g, cap) (seqio variant).

    T = 1 gives the natural mixture, T -> infinity the uniform one over non-empty groups
    (``temperature=math.inf`` is accepted), T < 1 sharpens towards the largest group.
    ``cap`` (tokens, > 0) is seqio's ``maximum`` applied to the sizes *before* the temperature.
    Computed in log space, so very small T does not overflow. Empty groups get weight 0.
    """
    n = check_tokens(tokens)
    t = check_positive(temperature, name="temperature", allow_inf=True)
    c = None if cap is None else check_positive(cap, name="cap")
    groups = list(n)
    m = np.array([n[g] if c is None else min(n[g], c) for g in groups], dtype=np.float64)
    pos = m > 0
    logits = np.full(m.shape, -np.inf)
    logits[pos] = 0.0 if math.isinf(t) else np.log(m[pos]) / t
    logits -= logits[pos].max()
    p = np.where(pos, np.exp(logits), 0.0)
    p /= p.sum()
    params = {
        "temperature": ("inf" if math.isinf(t) else t),
        "cap": c,
        "variant": "seqio-capped" if c else "plain",
    }
    return MixtureWeights(dict(zip(groups, p.tolist())), method="temperature", params=params)


@strategy_spec(
    "temperature",
    needs=(),
    summary="p_g proportional to n_g^(1/T) (T=1 natural, large T uniform)",
    params={"temperature": "T (default 2; inf allowed)", "cap": "size cap per group (tokens)"},
)
def _temperature(inputs: StrategyInputs, params: dict) -> MixtureWeights:
    check_params("temperature", params, ("temperature", "cap"))
    return temperature_weights(inputs.tokens, params.get("temperature", 2.0), cap=params.get("cap"))

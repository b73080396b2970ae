"""Manual weights: relative numbers per group, normalised to sum to 1."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from analytics.mixture.errors import StrategyInputError
from analytics.mixture.weights import MixtureWeights, normalise

from ._registry import StrategyInputs, register_strategy, strategy_spec


@register_strategy("manual")
def manual_weights(tokens: Mapping[str, float], entered: Mapping[str, Any]) -> MixtureWeights:
    """One entry per group (relative weights >= 0, normalised to sum to 1; missing groups
    get 0; a group that is not in ``tokens`` is an error)."""
    unknown = sorted(str(g) for g in entered if str(g) not in tokens)
    if unknown:
        raise StrategyInputError(
            f"params: unknown group(s) {unknown}; groups are {sorted(map(str, tokens))}"
        )
    raw = {}
    for g in tokens:
        v = entered.get(g, 0.0)
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise StrategyInputError(f"params[{g!r}]: expected a number, got {v!r}") from None
        if not math.isfinite(x) or x < 0:
            raise StrategyInputError(f"params[{g!r}]: expected a number >= 0, got {v!r}")
        raw[str(g)] = x
    return MixtureWeights(
        normalise(raw, name="manual weights"),
        method="manual",
        params={"entered": raw, "normalised": True},
    )


@strategy_spec(
    "manual",
    needs=(),
    summary="relative weights per group, normalised",
    params={"GROUP": "relative weight of that group (missing groups get 0)"},
)
def _manual(inputs: StrategyInputs, params: dict) -> MixtureWeights:
    return manual_weights(inputs.tokens, params)

"""Natural weights: proportional to available tokens."""

from __future__ import annotations

from collections.abc import Mapping

from analytics.mixture.weights import MixtureWeights, check_tokens, normalise

from ._registry import StrategyInputs, check_params, register_strategy, strategy_spec


@register_strategy("natural")
def natural_weights(tokens: Mapping[str, float]) -> MixtureWeights:
    """w_g = n_g / sum_h n_h, where n_g is the number of available tokens of group g."""
    n = check_tokens(tokens)
    return MixtureWeights(normalise(n), method="natural", params={})


@strategy_spec("natural", needs=(), summary="proportional to available tokens")
def _natural(inputs: StrategyInputs, params: dict) -> MixtureWeights:
    check_params("natural", params)
    return natural_weights(inputs.tokens)

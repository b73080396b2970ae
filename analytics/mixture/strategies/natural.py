"""Natural weights: proportional to available tokens."""

from __future__ import annotations

from collections.abc import Mapping

from analytics.mixture.weights import MixtureWeights, check_tokens, normalise

from ._registry import register_strategy


@register_strategy("natural")
def natural_weights(tokens: Mapping[str, float]) -> MixtureWeights:
    """w_g = n_g / sum_h n_h, where n_g is the number of available tokens of group g."""
    n = check_tokens(tokens)
    return MixtureWeights(normalise(n), method="natural", params={})

"""Uniform weights over the non-empty groups."""

from __future__ import annotations

from collections.abc import Mapping

from analytics.mixture.weights import MixtureWeights, check_tokens

from ._registry import StrategyInputs, check_params, register_strategy, strategy_spec


@register_strategy("uniform")
def uniform_weights(tokens: Mapping[str, float]) -> MixtureWeights:
    """w_g = 1 / G+ for every group with n_g > 0 (G+ = number of such groups); 0 for empty groups.

    Empty groups get 0 because no weight can be realised from a group without tokens; this is
    also the T -> infinity limit of :func:`temperature_weights`.
    """
    n = check_tokens(tokens)
    nonempty = [g for g, v in n.items() if v > 0]
    w = {g: (1.0 / len(nonempty) if v > 0 else 0.0) for g, v in n.items()}
    return MixtureWeights(w, method="uniform", params={})


@strategy_spec("uniform", needs=(), summary="equal weight for every non-empty group")
def _uniform(inputs: StrategyInputs, params: dict) -> MixtureWeights:
    check_params("uniform", params)
    return uniform_weights(inputs.tokens)

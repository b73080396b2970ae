"""Weighting strategies, one module each, registered by name in :data:`STRATEGIES`.

Every strategy returns a :class:`~analytics.mixture.weights.MixtureWeights` (a dict group ->
weight summing to 1, on a **token** basis, with ``method``/``params``/``diagnostics``).
"""

from __future__ import annotations

from ._registry import (
    INPUTS,
    SPECS,
    STRATEGIES,
    StrategyInputs,
    StrategySpec,
    register_strategy,
    strategy_spec,
)
from .dsir import dsir_select, gumbel_top_k_budget
from .manual import manual_weights
from .mixing_law import fit_mixing_law
from .natural import natural_weights
from .quality_diversity import quality_diversity_sampling, quality_diversity_weights
from .regmix import fit_regmix
from .target_matching import (
    dsir_log_importance,
    hashed_ngram_features,
    kl_divergence,
    target_matching_weights,
)
from .temperature import temperature_weights
from .uniform import uniform_weights
from .unimax import unimax_weights

__all__ = [
    "INPUTS",
    "SPECS",
    "STRATEGIES",
    "StrategyInputs",
    "StrategySpec",
    "register_strategy",
    "strategy_spec",
    "manual_weights",
    "natural_weights",
    "uniform_weights",
    "temperature_weights",
    "unimax_weights",
    "hashed_ngram_features",
    "dsir_log_importance",
    "dsir_select",
    "gumbel_top_k_budget",
    "kl_divergence",
    "target_matching_weights",
    "quality_diversity_sampling",
    "quality_diversity_weights",
    "fit_regmix",
    "fit_mixing_law",
]

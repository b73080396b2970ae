"""The strategy registry: name -> function returning :class:`MixtureWeights`."""

from __future__ import annotations

from collections.abc import Callable

from analytics.mixture.registry import Registry
from analytics.mixture.weights import MixtureWeights

STRATEGIES: Registry[Callable[..., MixtureWeights]] = Registry("strategy")
register_strategy = STRATEGIES.register

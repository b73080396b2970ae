"""The strategy registries.

* :data:`STRATEGIES`: name -> the strategy's own function (its natural signature).
* :data:`SPECS`: name -> :class:`StrategySpec`, a strategy as the resolver sees it: the
  inputs it declares (``needs``), its parameters, and a ``weights(inputs, params)``
  adapter. Adding a strategy is one module that registers both;
  :func:`analytics.mixture.resolve.strategy_weights` gathers what it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from analytics.mixture.errors import MixtureError, StrategyInputError
from analytics.mixture.weights import MixtureWeights
from analytics.registry import Registry

STRATEGIES: Registry[Callable[..., MixtureWeights]] = Registry("strategy", MixtureError)
register_strategy = STRATEGIES.register

#: what a strategy can declare it needs, and how the resolver gets it
INPUTS: dict[str, str] = {
    "tokens": "per-group token counts (always present)",
    "budget": "the phase's token budget",
    "target_texts": "target texts (param target=FILE: .txt split at blank lines, or .jsonl)",
    "group_features": "hashed n-gram features of a seeded sample of each group "
    "(params per_group, max_chars, buckets)",
    "proxy_runs": "a CSV of proxy runs: a column per group, loss columns (param runs=CSV)",
    "quality_docs": "documents with a quality score (param quality=COLUMN)",
}


@dataclass
class StrategyInputs:
    """What the resolver gathered for a strategy (only what it declared is filled in)."""

    tokens: dict[str, float]
    budget: int | None = None
    seed: int = 0
    target_texts: list[str] | None = None
    group_features: Mapping[str, Any] | None = None
    group_sample: dict[str, Any] = field(default_factory=dict)
    buckets: int = 10_000
    proxy_runs: tuple[Any, Any] | None = None
    quality_docs: Any = None
    quality_column: str | None = None

    @property
    def groups(self) -> list[str]:
        return list(self.tokens)


@dataclass(frozen=True)
class StrategySpec:
    name: str
    needs: tuple[str, ...]
    summary: str
    params: Mapping[str, str]
    weights: Callable[[StrategyInputs, dict[str, Any]], MixtureWeights]


SPECS: Registry[StrategySpec] = Registry("strategy", MixtureError)


def strategy_spec(
    name: str, *, needs: tuple[str, ...], summary: str, params: Mapping[str, str] | None = None
) -> Callable:
    """Register ``fn(inputs, params) -> MixtureWeights`` as strategy ``name``."""
    unknown = sorted(set(needs) - set(INPUTS))
    if unknown:
        raise ValueError(f"strategy {name!r}: unknown inputs {unknown}; known: {sorted(INPUTS)}")

    def deco(fn: Callable[[StrategyInputs, dict[str, Any]], MixtureWeights]):
        SPECS.register(name)(
            StrategySpec(name, ("tokens", *needs), summary, dict(params or {}), fn)
        )
        return fn

    return deco


def check_params(name: str, params: Mapping[str, Any], allowed: tuple[str, ...] = ()) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) if allowed else "no parameters"
        raise StrategyInputError(f"params: {name} takes {takes}; got {unknown}")

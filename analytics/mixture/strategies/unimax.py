"""UniMax (Chung et al., ICLR 2023): uniform budget with an epoch cap per group."""

from __future__ import annotations

from collections.abc import Mapping

from analytics.mixture.errors import InfeasibleMixtureError, StrategyInputError
from analytics.mixture.weights import MixtureWeights, check_positive, check_tokens

from ._registry import StrategyInputs, check_params, register_strategy, strategy_spec


@register_strategy("unimax")
def unimax_weights(
    tokens: Mapping[str, float],
    budget: float,
    max_epochs: float,
    *,
    strict: bool = True,
) -> MixtureWeights:
    """UniMax allocation, exactly as in REFERENCES.md / the paper's Algorithm 1.

    Sort groups by size ascending (ties by name); with B = budget remaining and k groups left,
    give group g ``alloc_g = min(B / k, max_epochs * n_g)``, subtract it from B and move on.
    Weights are ``alloc_g / budget``.

    If ``budget > max_epochs * sum(n)`` every cap binds and the allocations fall short of the
    budget: with ``strict=True`` (default) this raises :class:`InfeasibleMixtureError`
    (the budget cannot be met without exceeding ``max_epochs``); with ``strict=False`` the
    allocations are normalised to sum to 1 (the paper's final ``normalize``), which then
    repeats every group by more than ``max_epochs``.
    """
    n = check_tokens(tokens)
    b = check_positive(budget, name="budget")
    e = check_positive(max_epochs, name="max_epochs")
    order = sorted(n, key=lambda g: (n[g], g))
    remaining = b
    alloc: dict[str, float] = {}
    for i, g in enumerate(order):
        share = remaining / (len(order) - i)
        alloc[g] = min(share, e * n[g])
        remaining -= alloc[g]
    allocated = sum(alloc.values())
    capped = [g for g in order if alloc[g] >= e * n[g] - 1e-9 * max(1.0, e * n[g])]
    if allocated < b * (1 - 1e-12):
        if strict:
            raise InfeasibleMixtureError(
                f"budget: {b:.6g} tokens exceeds max_epochs ({e:g}) x available tokens "
                f"({sum(n.values()):.6g}) = {e * sum(n.values()):.6g}; lower the budget or raise "
                "max_epochs"
            )
        denom = allocated
    else:
        denom = b
    w = {g: alloc[g] / denom for g in n}  # keep the caller's group order
    return MixtureWeights(
        w,
        method="unimax",
        params={"budget": b, "max_epochs": e, "strict": strict},
        diagnostics={"capped_groups": capped, "allocated_tokens": {g: alloc[g] for g in n}},
    )


@strategy_spec(
    "unimax",
    needs=("budget",),
    summary="as uniform as possible with at most max_epochs passes over any group",
    params={"max_epochs": "passes per group at most (default 4)", "strict": "default true"},
)
def _unimax(inputs: StrategyInputs, params: dict) -> MixtureWeights:
    check_params("unimax", params, ("max_epochs", "strict"))
    if inputs.budget is None:
        raise StrategyInputError("budget: unimax needs the token budget")
    return unimax_weights(
        inputs.tokens,
        inputs.budget,
        params.get("max_epochs", 4.0),
        strict=bool(params.get("strict", True)),
    )

"""One Dirichlet sampler for mixture weights, shared by the proxy swarm's draws
(:mod:`.swarm`), RegMix's candidate search (:mod:`.strategies.regmix`) and the Data Mixing
Law's search start (:mod:`.strategies.mixing_law`).

``alpha = concentration x prior``, the prior a distribution over the groups:

* ``natural``: the groups' token distribution. RegMix's authors (Liu et al. 2024) draw
  their mixtures from a Dirichlet with the token distribution as prior; with the default
  concentration 1, alpha is the token distribution itself and E[w] = the token distribution.
  The default of the swarm and of the RegMix strategy.
* ``uniform``: 1/G per group, default concentration G, i.e. alpha = 1 per group: flat on
  the simplex, E[w] = 1/G (mixscope's earlier RegMix default, ``--param prior=uniform``).
* a mapping of group -> weight (``custom``), normalised, default concentration 1.

E[w_g] = prior_g whatever the concentration; Var[w_g] = prior_g (1 - prior_g) / (c + 1).
Alphas are floored at :data:`ALPHA_MIN` (a group without tokens can still be drawn) and
draws that underflow to zero are treated as exact zeros (a row that underflows entirely
is replaced by the prior).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import StrategyInputError

PRIORS = ("natural", "uniform")
ALPHA_MIN = 1e-6


def default_concentration(prior: str, n_groups: int) -> float:
    """1 for the token distribution (RegMix's authors) and custom priors; G for uniform
    (alpha = 1 per group, flat on the simplex)."""
    return float(n_groups) if prior == "uniform" else 1.0


@dataclass(frozen=True)
class DirichletSampler:
    """Dirichlet(concentration x prior) over ``groups``; see the module docstring."""

    groups: tuple[str, ...]
    prior: str  # natural | uniform | custom
    base: tuple[float, ...]  # the prior distribution (sums to 1)
    concentration: float

    @classmethod
    def make(
        cls,
        groups: Sequence[str],
        *,
        prior: str | Mapping[str, float] | None = "natural",
        tokens: Mapping[str, float] | Sequence[float] | None = None,
        concentration: float | None = None,
    ) -> DirichletSampler:
        """``prior``: ``natural`` (needs ``tokens``: per group, a mapping or a vector in
        ``groups`` order), ``uniform``, or a mapping of group weights; ``concentration``:
        None for :func:`default_concentration`."""
        groups = tuple(str(g) for g in groups)
        if len(groups) < 1:
            raise StrategyInputError("groups: a Dirichlet needs at least one group")
        if prior is None:
            prior = "natural"
        if isinstance(prior, str):
            if prior not in PRIORS:
                raise StrategyInputError(
                    f"prior: expected natural (the token distribution) or uniform, got {prior!r}"
                )
            name = prior
            if prior == "uniform":
                base = np.full(len(groups), 1.0 / len(groups))
            else:
                if tokens is None:
                    raise StrategyInputError(
                        "prior=natural (the token distribution, RegMix's default) needs the "
                        "groups' token counts; give them, or use prior=uniform"
                    )
                base = _vector(tokens, groups, what="tokens")
        else:
            name = "custom"
            base = _vector(prior, groups, what="prior")
        c = default_concentration(name, len(groups)) if concentration is None else concentration
        try:
            c = float(c)
        except (TypeError, ValueError):
            raise StrategyInputError(f"concentration: expected a number > 0, got {c!r}") from None
        if not (math.isfinite(c) and c > 0):
            raise StrategyInputError(f"concentration: expected a number > 0, got {c!r}")
        return cls(groups, name, tuple(float(x) for x in base), c)

    @property
    def prior_vector(self) -> np.ndarray:
        return np.asarray(self.base, dtype=np.float64)

    @property
    def alpha(self) -> np.ndarray:
        if self.prior == "uniform":  # c / G exactly: alpha = 1.0 at the default c = G
            a = np.full(len(self.groups), self.concentration / len(self.groups))
        else:
            a = self.concentration * self.prior_vector
        return np.maximum(a, ALPHA_MIN)

    def draw(self, n: int, rng: np.random.Generator | int) -> np.ndarray:
        """``n`` mixtures (rows sum to 1), columns in ``groups`` order; ``rng``: a numpy
        Generator or a seed."""
        if not (isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1):
            raise StrategyInputError(f"number of draws: expected an integer >= 1, got {n!r}")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        w = gen.dirichlet(self.alpha, size=int(n))
        tiny = w < 1e-9  # float underflow of tiny Dirichlet draws
        if tiny.any():  # only those rows are touched: the others are numpy's draws as is
            rows = tiny.any(axis=1)
            w[tiny] = 0.0
            w[w.sum(axis=1) <= 0] = self.prior_vector
            w[rows] /= w[rows].sum(axis=1, keepdims=True)
        return w

    def describe(self) -> str:
        """What the UI and the CLI say about the draws."""
        where = {"natural": "token distribution", "uniform": "uniform", "custom": "given"}
        txt = f"Dirichlet({self.concentration:g} x {where[self.prior]} prior)"
        if self.prior == "natural" and self.concentration == 1.0:
            txt += ", as RegMix's authors (alpha = the token distribution)"
        if self.prior == "uniform" and self.concentration == float(len(self.groups)):
            txt += ", alpha = 1 per group (flat; mixscope's earlier default)"
        return txt

    def record(self) -> dict[str, Any]:
        """What a manifest or a swarm record stores about the draws."""
        return {
            "sampler": "dirichlet",
            "prior": self.prior,
            "concentration": self.concentration,
            "prior_weights": dict(zip(self.groups, self.base)),
            "description": self.describe(),
        }


def _vector(
    values: Mapping[str, float] | Sequence[float], groups: tuple[str, ...], *, what: str
) -> np.ndarray:
    if isinstance(values, Mapping):
        unknown = [k for k in values if str(k) not in groups]
        if unknown:
            raise StrategyInputError(f"{what}: unknown group(s) {unknown}; groups are {groups}")
        vals = {str(k): v for k, v in values.items()}
        raw = [vals.get(g, 0.0) for g in groups]
    else:
        raw = list(values)
        if len(raw) != len(groups):
            raise StrategyInputError(f"{what}: expected {len(groups)} values, got {len(raw)}")
    try:
        v = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise StrategyInputError(f"{what}: expected numbers, got {raw!r}") from None
    if not np.all(np.isfinite(v)) or np.any(v < 0) or v.sum() <= 0:
        raise StrategyInputError(f"{what}: expected finite weights >= 0 with a positive total")
    return v / v.sum()

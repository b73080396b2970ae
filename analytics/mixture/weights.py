"""The value every strategy returns, and shared input checks.

:class:`MixtureWeights` is a plain ``dict`` (group -> weight, summing to 1) that also carries
the strategy's ``method`` name, its ``params`` and fit ``diagnostics`` so that a caller can
store them in a manifest's ``method`` block unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import StrategyInputError

#: weights must sum to 1 within this tolerance (the manifest uses the same value)
WEIGHT_TOLERANCE = 1e-6


class MixtureWeights(dict):
    """``dict`` group -> weight (sums to 1) plus ``method``, ``params``, ``diagnostics``.

    ``extras`` holds non-serialisable by-products (a fitted model, a per-document table);
    it is never written to a manifest.
    """

    def __init__(
        self,
        weights: Mapping[str, float],
        *,
        method: str,
        params: Mapping[str, Any] | None = None,
        diagnostics: Mapping[str, Any] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__({str(k): float(v) for k, v in weights.items()})
        self.method = method
        self.params = dict(params or {})
        self.diagnostics = dict(diagnostics or {})
        self.extras = dict(extras or {})

    def method_block(self) -> dict[str, Any]:
        """``{"name", "params", "diagnostics"}`` as stored in a manifest group."""
        return {
            "name": self.method,
            "params": _jsonable(self.params),
            "diagnostics": _jsonable(self.diagnostics),
        }

    def __repr__(self) -> str:
        body = ", ".join(f"{k!r}: {v:.6g}" for k, v in self.items())
        return f"MixtureWeights({self.method}: {{{body}}})"


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and tuples into JSON-friendly Python values."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def check_tokens(tokens: Mapping[str, Any], *, name: str = "tokens") -> dict[str, float]:
    """Validate a mapping group -> non-negative finite amount with a positive total.

    Returns a new ``dict[str, float]`` (group ids as strings, insertion order kept).
    """
    if not isinstance(tokens, Mapping):
        raise StrategyInputError(
            f"{name}: expected a mapping group -> tokens, got {type(tokens).__name__}"
        )
    if len(tokens) == 0:
        raise StrategyInputError(f"{name}: expected at least one group, got an empty mapping")
    out: dict[str, float] = {}
    for key, value in tokens.items():
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise StrategyInputError(f"{name}[{key!r}]: expected a number, got {value!r}") from None
        if not math.isfinite(x) or x < 0:
            raise StrategyInputError(
                f"{name}[{key!r}]: expected a finite number >= 0, got {value!r}"
            )
        out[str(key)] = x
    if sum(out.values()) <= 0:
        raise StrategyInputError(f"{name}: the total over all groups must be > 0")
    return out


def check_positive(value: Any, *, name: str, allow_inf: bool = False) -> float:
    """A finite (or +inf when allowed) number > 0, else :class:`StrategyInputError`."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise StrategyInputError(f"{name}: expected a number > 0, got {value!r}") from None
    if math.isnan(x) or x <= 0 or (math.isinf(x) and not allow_inf):
        raise StrategyInputError(
            f"{name}: expected a {'' if allow_inf else 'finite '}number > 0, got {value!r}"
        )
    return x


def normalise(values: Mapping[str, float], *, name: str = "weights") -> dict[str, float]:
    """Scale non-negative values to sum to 1 (error when all are zero)."""
    total = math.fsum(values.values())
    if not total > 0:
        raise StrategyInputError(f"{name}: cannot normalise, the total is {total}")
    return {k: v / total for k, v in values.items()}


def check_weights(
    weights: Mapping[str, Any], *, name: str = "weights", tol: float = WEIGHT_TOLERANCE
) -> dict[str, float]:
    """Validate weights: finite, >= 0, summing to 1 within ``tol``."""
    w = check_tokens(weights, name=name)
    total = math.fsum(w.values())
    if abs(total - 1.0) > tol:
        raise StrategyInputError(
            f"{name}: weights must sum to 1 within {tol:g}, they sum to {total:.12g}"
        )
    return w

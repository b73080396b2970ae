"""Quality-diversity sampling (QuaDMix-style, 2025): quality thresholds and weights per group.

Definitions (per group g, documents d with quality score s_d and n_d tokens):

* percentile u_d in (0, 1]: the average rank of s_d within g divided by the group's size
  (missing scores rank lowest);
* kept: with ``threshold_kind="quantile"`` (default) d is kept when u_d > q_g, i.e. the
  lowest q_g fraction of the group is dropped (q_g = 0 keeps everything); with
  ``threshold_kind="score"`` d is kept when s_d >= tau_g;
* intensity r_d = exp(sharpness * (u_d - 1)) for kept documents, 0 otherwise
  (sharpness = 0: every kept document equally likely; larger: favours the best documents);
* effective mass K_g = sum_{d in g} r_d n_d; group weight lambda_g (default 1, the
  *diversity* knob: 1 everywhere is the natural mixture of the kept data);
* **per-document sampling probability** pi_d = lambda_g r_d / sum_{d'} lambda_{g'} r_{d'}
  (the chance that one document draw picks d);
* token weight of group g: w_g = lambda_g K_g / sum_h lambda_h K_h (the share of tokens g
  receives when documents are drawn with pi);
* with a token ``budget`` B: expected repeats e_d = B * lambda_g r_d / sum_h lambda_h K_h, so
  that sum_d e_d n_d = B.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from analytics.mixture.errors import StrategyInputError
from analytics.mixture.weights import MixtureWeights

from ._registry import StrategyInputs, check_params, register_strategy, strategy_spec


def _per_group(
    value: float | Mapping[str, float] | None, groups: list[str], *, name: str, default: float
) -> dict[str, float]:
    if value is None:
        return {g: default for g in groups}
    if isinstance(value, Mapping):
        unknown = [str(k) for k in value if str(k) not in groups]
        if unknown:
            raise StrategyInputError(f"{name}: unknown group(s) {unknown}; known: {groups}")
        out = {g: float(value.get(g, default)) for g in groups}
    else:
        out = {g: float(value) for g in groups}
    for g, v in out.items():
        if not math.isfinite(v):
            raise StrategyInputError(f"{name}[{g!r}]: expected a finite number, got {v!r}")
    return out


def quality_diversity_sampling(
    docs: pd.DataFrame,
    *,
    thresholds: float | Mapping[str, float] | None = None,
    group_weights: float | Mapping[str, float] | None = None,
    sharpness: float = 0.0,
    threshold_kind: Literal["quantile", "score"] = "quantile",
    budget: float | None = None,
    group_col: str = "group",
    quality_col: str = "quality",
    tokens_col: str = "n_tokens",
) -> pd.DataFrame:
    """Per-document table: ``percentile``, ``kept``, ``intensity``, ``sampling_probability``,
    and ``expected_repeats`` when ``budget`` is given (see the module docstring).

    ``docs`` is not modified; the returned frame is a copy with those columns added.
    """
    for col in (group_col, quality_col, tokens_col):
        if col not in docs.columns:
            raise StrategyInputError(
                f"docs: missing column {col!r}; columns are {list(docs.columns)}"
            )
    if len(docs) == 0:
        raise StrategyInputError("docs: expected at least one document")
    if threshold_kind not in ("quantile", "score"):
        raise StrategyInputError(
            f"threshold_kind: expected 'quantile' or 'score', got {threshold_kind!r}"
        )
    if not math.isfinite(sharpness) or sharpness < 0:
        raise StrategyInputError(f"sharpness: expected a finite number >= 0, got {sharpness!r}")
    out = docs.copy()
    out["_g"] = out[group_col].astype(str)
    n_tok = pd.to_numeric(out[tokens_col], errors="coerce")
    if (
        n_tok.isna().any()
        or (n_tok < 0).any()
        or not np.isfinite(n_tok.to_numpy(dtype=float)).all()
    ):
        raise StrategyInputError(f"docs[{tokens_col!r}]: token counts must be finite numbers >= 0")
    groups = list(dict.fromkeys(out["_g"]))
    thr = _per_group(thresholds, groups, name="thresholds", default=0.0)
    lam = _per_group(group_weights, groups, name="group_weights", default=1.0)
    for g in groups:
        if lam[g] < 0:
            raise StrategyInputError(f"group_weights[{g!r}]: expected >= 0, got {lam[g]}")
        if threshold_kind == "quantile" and not 0.0 <= thr[g] < 1.0:
            raise StrategyInputError(
                f"thresholds[{g!r}]: a quantile threshold must be in [0, 1), got {thr[g]}"
            )
    score = pd.to_numeric(out[quality_col], errors="coerce").astype(float).fillna(-np.inf)
    out["percentile"] = score.groupby(out["_g"]).rank(method="average") / out.groupby("_g")[
        "_g"
    ].transform("size")
    g_thr = out["_g"].map(thr)
    out["kept"] = (out["percentile"] > g_thr) if threshold_kind == "quantile" else (score >= g_thr)
    out["intensity"] = np.where(out["kept"], np.exp(sharpness * (out["percentile"] - 1.0)), 0.0)
    raw = out["_g"].map(lam) * out["intensity"]
    if raw.sum() <= 0:
        raise StrategyInputError(
            "thresholds/group_weights: no document keeps a positive sampling weight"
        )
    out["sampling_probability"] = raw / raw.sum()
    mass = float((raw * n_tok).sum())
    if budget is not None:
        if not (isinstance(budget, (int, float)) and math.isfinite(budget) and budget > 0):
            raise StrategyInputError(f"budget: expected a finite number > 0, got {budget!r}")
        if mass <= 0:
            raise StrategyInputError("docs: the kept documents hold no tokens")
        out["expected_repeats"] = float(budget) * raw / mass
    return out.drop(columns="_g")


@register_strategy("quality_diversity")
def quality_diversity_weights(
    docs: pd.DataFrame,
    *,
    thresholds: float | Mapping[str, float] | None = None,
    group_weights: float | Mapping[str, float] | None = None,
    sharpness: float = 0.0,
    threshold_kind: Literal["quantile", "score"] = "quantile",
    budget: float | None = None,
    group_col: str = "group",
    quality_col: str = "quality",
    tokens_col: str = "n_tokens",
) -> MixtureWeights:
    """Token weights w_g = lambda_g K_g / sum_h lambda_h K_h (see the module docstring).

    ``docs`` has one row per document with the group, quality score and token count columns.
    The per-document table of :func:`quality_diversity_sampling` is in
    ``result.extras["documents"]``.
    Diagnostics per group: ``kept_documents``, ``kept_tokens``, ``effective_mass``.
    """
    table = quality_diversity_sampling(
        docs,
        thresholds=thresholds,
        group_weights=group_weights,
        sharpness=sharpness,
        threshold_kind=threshold_kind,
        budget=budget,
        group_col=group_col,
        quality_col=quality_col,
        tokens_col=tokens_col,
    )
    g = table[group_col].astype(str)
    n_tok = pd.to_numeric(table[tokens_col]).astype(float)
    lam = _per_group(group_weights, list(dict.fromkeys(g)), name="group_weights", default=1.0)
    mass = (table["intensity"] * n_tok).groupby(g, sort=False).sum()
    kept_docs = table["kept"].groupby(g, sort=False).sum()
    kept_tok = (table["kept"] * n_tok).groupby(g, sort=False).sum()
    weighted = {k: lam[k] * float(mass[k]) for k in mass.index}
    total = sum(weighted.values())
    if total <= 0:
        raise StrategyInputError("docs: the kept documents hold no tokens")
    weights = {k: v / total for k, v in weighted.items()}
    thr = _per_group(thresholds, list(weights), name="thresholds", default=0.0)
    return MixtureWeights(
        weights,
        method="quality_diversity",
        params={
            "thresholds": thr,
            "threshold_kind": threshold_kind,
            "group_weights": lam,
            "sharpness": float(sharpness),
            "quality_column": quality_col,
        },
        diagnostics={
            "kept_documents": {k: int(v) for k, v in kept_docs.items()},
            "kept_tokens": {k: float(v) for k, v in kept_tok.items()},
            "effective_mass": {k: float(v) for k, v in mass.items()},
        },
        extras={"documents": table},
    )


@strategy_spec(
    "quality_diversity",
    needs=("quality_docs",),
    summary="QuaDMix-style: tokens above a quality threshold per group, sharpened",
    params={"threshold": "quality threshold (number)", "sharpness": "default 0"},
)
def _quality_diversity(inputs: StrategyInputs, params: dict) -> MixtureWeights:
    from analytics.mixture.builder import quality_diversity_for

    check_params("quality_diversity", params, ("threshold", "sharpness"))
    return quality_diversity_for(
        inputs.quality_docs,
        inputs.groups,
        quality_column=str(inputs.quality_column),
        thresholds=params.get("threshold"),
        sharpness=float(params.get("sharpness", 0.0)),
    )

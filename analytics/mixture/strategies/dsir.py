"""DSIR: select documents like a target by importance resampling (Xie et al. 2023).

Unlike target matching (group weights), DSIR selects *documents*:

1. featurise every candidate document and every target text into hashed n-gram counts,
   exactly as the reference implementation (the ``data-selection`` package's
   ``HashedNgramDSIR``) does (:func:`~.target_matching.hashed_ngram_features`: lower-cased
   WordPunct tokens, unigrams + bigrams, SHA-256 mod ``buckets``);
2. fit the two bag-of-n-grams models: q_raw = the candidates' summed counts / total,
   p_target = the target's summed counts / total;
3. log importance weight of document x: sum_b count_b(x) [log(p_target(b) + 1e-8) -
   log(q_raw(b) + 1e-8)] (:func:`~.target_matching.dsir_log_importance`);
4. resample without replacement with probability proportional to exp(log w) by the Gumbel
   top-k trick: key_i = log w_i + G_i with G_i ~ Gumbel(0, 1) drawn from
   ``numpy.random.default_rng(seed)``; documents are taken in decreasing key order until
   their tokens reach the budget (the reference takes a fixed *number* of documents; a
   token budget is what a mixture needs). ``sampling="top_k"`` drops the noise (the
   reference's ``top_k=True``).

Documents are identified by their position in ``docs``; the caller orders them canonically
(the workspace reader sorts by ``doc_id``) so that a seed always draws the same selection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from analytics.mixture.errors import StrategyInputError
from analytics.mixture.weights import MixtureWeights

from ._registry import register_strategy
from .target_matching import (
    DEFAULT_BUCKETS,
    DEFAULT_NGRAMS,
    DSIR_EPS,
    dsir_log_importance,
    hashed_ngram_features,
)

Sampling = Literal["gumbel", "top_k"]
#: the reference's ``min_example_length``: shorter documents are never selected (a log
#: importance weight is a sum over n-grams, so without it very short documents, whose
#: weights are close to 0, would win against long on-target ones)
DEFAULT_MIN_WORDS = 100


def word_counts(features: Any, ngrams: int = DEFAULT_NGRAMS) -> np.ndarray:
    """Words per document from its n-gram counts, as the reference's per-example length:
    (sum of counts + n(n-1)/2) // n (exact for documents of at least n - 1 words)."""
    total = np.asarray(features.sum(axis=1)).ravel()
    return (total + ngrams * (ngrams - 1) // 2) // ngrams


def gumbel_top_k_budget(
    log_weights: np.ndarray,
    n_tokens: np.ndarray,
    budget: int,
    *,
    seed: int = 0,
    sampling: Sampling = "gumbel",
    eligible: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices selected by Gumbel top-k until their tokens reach ``budget``, and the keys.

    Keys: log w + Gumbel(0, 1) noise from ``default_rng(seed)`` (one draw per document, in
    input order, so a document's key does not depend on the budget), or log w alone with
    ``sampling="top_k"``. Ineligible documents get key -inf and are never taken. Documents
    are taken in decreasing key order (ties: lower index first) until the running token sum
    is >= ``budget``; the selection's tokens exceed the budget by less than one document.
    """
    lw = np.asarray(log_weights, dtype=np.float64)
    tok = np.asarray(n_tokens, dtype=np.int64)
    if lw.shape != tok.shape or lw.ndim != 1:
        raise StrategyInputError("log_weights and n_tokens: expected 1-D arrays of equal length")
    if sampling not in ("gumbel", "top_k"):
        raise StrategyInputError(f"sampling: expected 'gumbel' or 'top_k', got {sampling!r}")
    if isinstance(budget, bool) or int(budget) != budget or budget <= 0:
        raise StrategyInputError(f"budget: expected a positive number of tokens, got {budget!r}")
    keys = lw.copy()
    if sampling == "gumbel":
        keys += np.random.default_rng(int(seed)).gumbel(size=lw.shape[0])
    if eligible is not None:
        keys[~np.asarray(eligible, dtype=bool)] = -np.inf
        pool = int(tok[np.asarray(eligible, dtype=bool)].sum())
    else:
        pool = int(tok.sum())
    if budget > pool:
        what = "the candidate documents" if eligible is None else "the long-enough candidates"
        raise StrategyInputError(
            f"budget: {int(budget):,} tokens is more than the {pool:,} tokens of {what}; "
            "lower --budget, widen the filter"
            + ("" if eligible is None else " or lower --min-words")
        )
    order = np.argsort(-keys, kind="stable")
    cum = np.cumsum(tok[order])
    k = int(np.searchsorted(cum, budget, side="left")) + 1
    return np.sort(order[:k]), keys


def _dsir_features(
    docs: pd.DataFrame,
    target_texts: Sequence[str],
    *,
    buckets: int,
    ngrams: int,
    raw_features: np.ndarray | None,
    doc_features: Any,
) -> tuple[list[str], np.ndarray, Any, np.ndarray]:
    """The inputs checked and hashed: (target texts, target n-gram counts, per-document
    n-gram counts, the candidates' summed counts)."""
    for col in ("doc_id", "n_tokens"):
        if col not in docs.columns:
            raise StrategyInputError(f"docs: expected a column {col!r}")
    if len(docs) == 0:
        raise StrategyInputError("docs: no candidate documents; nothing to select from")
    texts = [t for t in target_texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise StrategyInputError("target texts: expected at least one non-empty text")
    target = hashed_ngram_features(texts, buckets=buckets, ngrams=ngrams)
    if target.sum() <= 0:
        raise StrategyInputError("target texts: no words found in the target texts")
    if doc_features is None:
        if "text" not in docs.columns:
            raise StrategyInputError("docs: expected a column 'text'")
        doc_features = hashed_ngram_features(
            docs["text"].fillna("").tolist(), buckets=buckets, ngrams=ngrams, per_document=True
        )
    if raw_features is None:
        raw_features = np.asarray(doc_features.sum(axis=0)).ravel()
    if np.asarray(raw_features).sum() <= 0:
        raise StrategyInputError("docs: the candidate documents hold no words")
    return texts, target, doc_features, raw_features


@register_strategy("dsir")
def dsir_select(
    docs: pd.DataFrame,
    target_texts: Sequence[str],
    *,
    budget: int,
    buckets: int = DEFAULT_BUCKETS,
    ngrams: int = DEFAULT_NGRAMS,
    seed: int = 0,
    sampling: Sampling = "gumbel",
    min_words: int = DEFAULT_MIN_WORDS,
    group: str = "dsir",
    raw_features: np.ndarray | None = None,
    doc_features: Any = None,
) -> MixtureWeights:
    """DSIR selection of ``docs`` (columns ``doc_id``, ``n_tokens``, ``text``) like the target.

    Returns weights ``{group: 1.0}`` (the selection is one group) with the selection in
    ``extras["selection"]`` (the selected rows of ``docs`` without text, plus
    ``log_weight`` and ``key``, in input order) and every candidate's ``log_weight`` in
    ``extras["log_weights"]``. ``min_words``: documents with fewer words are never selected
    (the reference's ``min_example_length``, default 100 as there; 0 keeps every document).
    ``doc_features`` / ``raw_features`` may be passed precomputed (a streaming reader does).
    """
    texts, target, doc_features, raw_features = _dsir_features(
        docs, target_texts, buckets=buckets, ngrams=ngrams,
        raw_features=raw_features, doc_features=doc_features,
    )  # fmt: skip
    lw = dsir_log_importance(doc_features, target, raw_features)
    if int(min_words) < 0:
        raise StrategyInputError(f"min_words: expected an integer >= 0, got {min_words!r}")
    eligible = word_counts(doc_features, ngrams) >= int(min_words) if min_words else None
    tokens = docs["n_tokens"].to_numpy()
    if pd.isna(tokens).any():
        raise StrategyInputError("docs.n_tokens: some candidate documents have no token count")
    idx, keys = gumbel_top_k_budget(
        lw, tokens.astype(np.int64), budget, seed=seed, sampling=sampling, eligible=eligible
    )
    sel = docs.drop(columns=[c for c in ("text",) if c in docs.columns]).iloc[idx].copy()
    sel["log_weight"] = lw[idx]
    sel["key"] = keys[idx]
    n_eligible = len(docs) if eligible is None else int(eligible.sum())
    return MixtureWeights(
        {group: 1.0},
        method="dsir",
        params={
            "features": "hashed n-gram counts (data-selection HashedNgramDSIR)",
            "tokenizer": "nltk WordPunctTokenizer, lower-cased",
            "hash": "int(sha256(ngram).hexdigest(), 16) % buckets",
            "buckets": int(buckets),
            "ngrams": int(ngrams),
            "eps": DSIR_EPS,
            "sampling": sampling,
            "resampling": "Gumbel top-k without replacement, to a token budget"
            if sampling == "gumbel"
            else "top-k by log weight (no noise), to a token budget",
            "seed": int(seed),
            "requested_budget": int(budget),
            "min_words": int(min_words),
        },
        diagnostics={
            "candidates": int(len(docs)),
            "eligible": n_eligible,
            "candidate_tokens": int(tokens.sum()),
            "selected_documents": int(len(idx)),
            "selected_tokens": int(tokens[idx].sum()),
            "target_texts": len(texts),
            "target_ngrams": int(target.sum()),
            "mean_log_weight_all": float(lw.mean()),
            "mean_log_weight_selected": float(lw[idx].mean()),
        },
        extras={"selection": sel, "log_weights": lw},
    )


__all__ = ["DEFAULT_MIN_WORDS", "dsir_select", "gumbel_top_k_budget", "word_counts"]

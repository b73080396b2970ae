"""Target matching on hashed n-gram distributions (DSIR-style, Xie et al. 2023).

Features: lower-cased word unigrams and bigrams hashed into ``buckets`` (default 10,000)
with scikit-learn's ``HashingVectorizer`` (signed 32-bit MurmurHash3, ``abs(h) % buckets``,
no alternate sign), so counts are stable across processes and machines.

Group-level matching: with q_g the (smoothed) bucket distribution of group g and p the
target's bucket distribution, find w on the simplex minimising
KL(p || sum_g w_g q_g) = sum_b p_b log(p_b / m_b). The problem is convex in w; it is the
maximum-likelihood estimate of mixture proportions with fixed components, solved here by the
EM / multiplicative update w_g <- w_g * sum_b q_gb p_b / m_b, which never increases the KL
and keeps w on the simplex.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from analytics.mixture.errors import StrategyInputError
from analytics.mixture.weights import MixtureWeights, check_tokens, normalise

from ._registry import register_strategy

DEFAULT_BUCKETS = 10_000
TOKEN_PATTERN = r"(?u)\b\w+\b"


def _vectorizer(buckets: int):
    try:
        from sklearn.feature_extraction.text import HashingVectorizer
    except ImportError as exc:  # pragma: no cover - sklearn is a core dependency
        raise ImportError(
            "hashed_ngram_features needs scikit-learn: pip install scikit-learn"
        ) from exc
    return HashingVectorizer(
        n_features=buckets,
        ngram_range=(1, 2),
        lowercase=True,
        token_pattern=TOKEN_PATTERN,
        alternate_sign=False,
        norm=None,
        dtype=np.float64,
    )


def hashed_ngram_features(
    texts: Iterable[str],
    *,
    buckets: int = DEFAULT_BUCKETS,
    per_document: bool = False,
) -> Any:
    """Hashed unigram+bigram counts of ``texts``.

    Tokens are runs of word characters (regex ``\\b\\w+\\b``) of the lower-cased text; every
    unigram and every adjacent-pair bigram is hashed into ``buckets`` bins.

    Returns a 1-D ``int64`` array of length ``buckets`` summed over all texts, or with
    ``per_document=True`` a ``scipy.sparse.csr_matrix`` (n_texts x buckets) of counts.
    """
    if not isinstance(buckets, (int, np.integer)) or buckets < 2:
        raise StrategyInputError(f"buckets: expected an integer >= 2, got {buckets!r}")
    if isinstance(texts, str):
        raise StrategyInputError("texts: expected an iterable of strings, got a single string")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise StrategyInputError(f"texts[{i}]: expected a string, got {type(t).__name__}")
    mat = _vectorizer(int(buckets)).transform(texts).astype(np.int64)
    if per_document:
        return mat.tocsr()
    return np.asarray(mat.sum(axis=0)).ravel().astype(np.int64)


def _as_counts(x: Any, *, name: str, length: int | None = None) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise StrategyInputError(
            f"{name}: expected a 1-D array of bucket counts, got shape {arr.shape}"
        )
    if length is not None and arr.shape[0] != length:
        raise StrategyInputError(f"{name}: expected {length} buckets, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise StrategyInputError(f"{name}: counts must be finite and >= 0")
    if arr.sum() <= 0:
        raise StrategyInputError(f"{name}: all counts are zero")
    return arr


def kl_divergence(p: Any, q: Any) -> float:
    """KL(p || q) = sum_b p_b log(p_b / q_b) in nats, after normalising both to sum to 1.

    Terms with p_b = 0 contribute 0; a bucket with p_b > 0 and q_b = 0 gives +inf.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p = p / p.sum()
    q = q / q.sum()
    m = p > 0
    if np.any(q[m] == 0):
        return float("inf")
    return float(np.sum(p[m] * (np.log(p[m]) - np.log(q[m]))))


def dsir_log_importance(
    doc_features: Any,
    target_features: Any,
    raw_features: Any,
    *,
    smoothing: float = 1.0,
) -> np.ndarray:
    """DSIR log importance weight of each document.

    log w(x) = sum_b count_b(x) [log p_target(b) - log q_raw(b)], with p_target and q_raw the
    bucket distributions of the target and raw (candidate pool) features after additive
    ``smoothing`` (default 1, so no bucket has probability 0). ``doc_features``: the
    (n_docs x buckets) counts of :func:`hashed_ngram_features` with ``per_document=True``
    (sparse or dense). Returns a float64 array of length n_docs; sampling documents with
    probability proportional to exp(log w) (e.g. Gumbel top-k) is DSIR's resampling step.
    """
    target = _as_counts(target_features, name="target_features")
    raw = _as_counts(raw_features, name="raw_features", length=target.shape[0])
    if not np.isfinite(smoothing) or smoothing <= 0:
        raise StrategyInputError(f"smoothing: expected a finite number > 0, got {smoothing!r}")
    p = (target + smoothing) / (target + smoothing).sum()
    q = (raw + smoothing) / (raw + smoothing).sum()
    diff = np.log(p) - np.log(q)
    if getattr(doc_features, "shape", (0, 0))[-1] != target.shape[0]:
        raise StrategyInputError(
            f"doc_features: expected {target.shape[0]} buckets per document, "
            f"got shape {getattr(doc_features, 'shape', None)}"
        )
    return np.asarray(doc_features @ diff, dtype=np.float64).ravel()


@register_strategy("target_matching")
def target_matching_weights(
    group_features: Mapping[str, Any],
    target_features: Any,
    *,
    tokens: Mapping[str, float] | None = None,
    smoothing: float = 0.01,
    max_iter: int = 5000,
    tol: float = 1e-10,
) -> MixtureWeights:
    """Group weights minimising KL(target || sum_g w_g q_g) over the simplex.

    ``group_features``: group -> bucket counts (e.g. :func:`hashed_ngram_features` of a sample
    of the group's texts); ``target_features``: bucket counts of the target texts.
    q_g = (counts_g + smoothing) / sum(counts_g + smoothing) (additive smoothing keeps the KL
    finite where a group lacks a bucket); the target is not smoothed.

    Diagnostics: ``kl_before`` = KL(target || natural mixture) where the natural mixture weighs
    groups by ``tokens`` when given, else by their feature mass (sum of counts);
    ``kl_after`` at the returned weights; ``kl_reduction`` = before - after (nats);
    ``iterations``, ``converged``.
    """
    if not isinstance(group_features, Mapping) or not group_features:
        raise StrategyInputError(
            "group_features: expected a non-empty mapping group -> bucket counts"
        )
    groups = [str(g) for g in group_features]
    target = _as_counts(target_features, name="target_features")
    b = target.shape[0]
    counts = np.stack(
        [
            _as_counts(group_features[g], name=f"group_features[{g!r}]", length=b)
            for g in group_features
        ]
    )
    if not np.isfinite(smoothing) or smoothing < 0:
        raise StrategyInputError(f"smoothing: expected a finite number >= 0, got {smoothing!r}")
    q = counts + smoothing
    q /= q.sum(axis=1, keepdims=True)
    p = target / target.sum()
    support = p > 0
    p_s, q_s = p[support], q[:, support]

    def kl_at(w: np.ndarray) -> float:
        m = w @ q_s
        return float(np.inf) if np.any(m <= 0) else float(np.sum(p_s * (np.log(p_s) - np.log(m))))

    if tokens is not None:
        tok = check_tokens(tokens, name="tokens")
        missing = [g for g in groups if g not in tok]
        if missing:
            raise StrategyInputError(f"tokens: no entry for group(s) {missing}")
        natural = np.array([tok[g] for g in groups], dtype=np.float64)
    else:
        natural = counts.sum(axis=1)
    natural = natural / natural.sum()

    w = np.full(len(groups), 1.0 / len(groups))
    prev = kl_at(w)
    converged = False
    it = 0
    for step in range(1, max_iter + 1):
        it = step
        m = w @ q_s
        w = w * (q_s @ (p_s / m))
        w /= w.sum()
        cur = kl_at(w)
        if prev - cur <= tol * max(1.0, abs(cur)):
            converged = True
            break
        prev = cur
    kl_before = kl_at(natural)
    kl_after = kl_at(w)
    weights = normalise(dict(zip(groups, np.clip(w, 0.0, None).tolist())))
    return MixtureWeights(
        weights,
        method="target_matching",
        params={
            "features": "hashed word unigram+bigram counts",
            "buckets": int(b),
            "smoothing": float(smoothing),
            "natural_basis": "tokens" if tokens is not None else "feature mass",
            "solver": "EM multiplicative update",
        },
        diagnostics={
            "kl_before": kl_before,
            "kl_after": kl_after,
            "kl_reduction": kl_before - kl_after,
            "iterations": it,
            "converged": converged,
        },
    )

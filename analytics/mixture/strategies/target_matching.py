"""Target matching on hashed n-gram distributions (DSIR-style, Xie et al. 2023).

Features (:func:`hashed_ngram_features`) are exactly those of the reference implementation,
the ``data-selection`` package's ``HashedNgramDSIR`` (``get_ngram_counts``): the text is
lower-cased and split by NLTK's ``WordPunctTokenizer`` (regex ``\\w+|[^\\w\\s]+``); every
word and every run of 2..``ngrams`` adjacent words joined by one space is hashed with
``int(sha256(utf-8).hexdigest(), 16) % buckets`` (default 10,000 buckets). SHA-256 makes the
counts stable across processes, machines and Python versions; mixscope hashes each distinct
n-gram once (a bounded memo) and builds a sparse matrix instead of hashing every occurrence.

Group-level matching: with q_g the (smoothed) bucket distribution of group g and p the
target's bucket distribution, find w on the simplex minimising
KL(p || sum_g w_g q_g) = sum_b p_b log(p_b / m_b). The problem is convex in w; it is the
maximum-likelihood estimate of mixture proportions with fixed components, solved here by the
EM / multiplicative update w_g <- w_g * sum_b q_gb p_b / m_b, which never increases the KL
and keeps w on the simplex.

Document-level selection (true DSIR: per-document importance weights and Gumbel top-k
resampling) is :mod:`analytics.mixture.strategies.dsir`, built on
:func:`dsir_log_importance` below.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import regex

from analytics.mixture.errors import StrategyInputError
from analytics.mixture.weights import MixtureWeights, check_tokens, normalise

from ._registry import StrategyInputs, check_params, register_strategy, strategy_spec

DEFAULT_BUCKETS = 10_000
DEFAULT_NGRAMS = 2
#: NLTK's WordPunctTokenizer pattern (RegexpTokenizer flags UNICODE | MULTILINE | DOTALL),
#: compiled like NLTK (>= 3.9) compiles it: with the ``regex`` engine, whose ``\w`` is
#: Unicode's word class (stdlib ``re`` also counts e.g. "²" as a word character, so
#: tokens would differ on such text)
TOKEN_PATTERN = r"\w+|[^\w\s]+"
_TOKEN_RE = regex.compile(TOKEN_PATTERN, regex.UNICODE | regex.MULTILINE | regex.DOTALL)
#: the reference's log-ratio epsilon: log(p_target + 1e-8) - log(q_raw + 1e-8)
DSIR_EPS = 1e-8
_MEMO_MAX = 2_000_000


class _BucketMemo(dict):
    """n-gram -> bucket, computing ``int(sha256(ngram).hexdigest(), 16) % buckets`` once."""

    def __init__(self, buckets: int) -> None:
        super().__init__()
        self.buckets = buckets

    def __missing__(self, key: str) -> int:
        b = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest(), "big") % self.buckets
        self[key] = b
        return b


_MEMOS: dict[int, _BucketMemo] = {}


def _memo(buckets: int) -> _BucketMemo:
    m = _MEMOS.get(buckets)
    if m is None or len(m) > _MEMO_MAX:
        m = _MEMOS[buckets] = _BucketMemo(buckets)
    return m


def ngram_bucket(ngram: str, buckets: int = DEFAULT_BUCKETS) -> int:
    """The bucket of one n-gram (words joined by one space), as the reference hashes it."""
    return int(hashlib.sha256(ngram.encode("utf-8")).hexdigest(), 16) % int(buckets)


def wordpunct_tokens(text: str) -> list[str]:
    """The reference's tokens of ``text``: WordPunctTokenizer of the lower-cased text."""
    return _TOKEN_RE.findall(text.lower())


def _ngrams(words: list[str], n: int) -> list[str]:
    out = list(words)
    for i in range(2, n + 1):
        out += [" ".join(words[j : j + i]) for j in range(len(words) - i + 1)]
    return out


def hashed_ngram_features(
    texts: Iterable[str],
    *,
    buckets: int = DEFAULT_BUCKETS,
    per_document: bool = False,
    ngrams: int = DEFAULT_NGRAMS,
) -> Any:
    """Hashed n-gram counts of ``texts``, featurised exactly as ``data-selection`` does.

    Tokens: ``WordPunctTokenizer`` (``\\w+|[^\\w\\s]+``) of the lower-cased text; every
    unigram and every 2..``ngrams``-gram (words joined by one space) is hashed with SHA-256
    into ``buckets`` bins (see the module docstring).

    Returns a 1-D ``int64`` array of length ``buckets`` summed over all texts, or with
    ``per_document=True`` a ``scipy.sparse.csr_matrix`` (n_texts x buckets) of counts.
    """
    import scipy.sparse as sp

    if isinstance(buckets, bool) or not isinstance(buckets, (int, np.integer)) or buckets < 2:
        raise StrategyInputError(f"buckets: expected an integer >= 2, got {buckets!r}")
    if isinstance(ngrams, bool) or not isinstance(ngrams, (int, np.integer)) or ngrams < 1:
        raise StrategyInputError(f"ngrams: expected an integer >= 1, got {ngrams!r}")
    if isinstance(texts, str):
        raise StrategyInputError("texts: expected an iterable of strings, got a single string")
    memo = _memo(int(buckets))
    get = memo.__getitem__
    indptr = [0]
    indices: list[int] = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise StrategyInputError(f"texts[{i}]: expected a string, got {type(t).__name__}")
        words = _TOKEN_RE.findall(t.lower())
        grams = (
            words + [a + " " + b for a, b in zip(words, words[1:])]
            if ngrams == 2
            else (_ngrams(words, int(ngrams)))
        )
        indices.extend(map(get, grams))
        indptr.append(len(indices))
    idx = np.asarray(indices, dtype=np.int64)
    if not per_document:
        return np.bincount(idx, minlength=int(buckets)).astype(np.int64)
    mat = sp.csr_matrix(
        (np.ones(len(idx), dtype=np.int64), idx, np.asarray(indptr, dtype=np.int64)),
        shape=(len(indptr) - 1, int(buckets)),
    )
    mat.sum_duplicates()
    return mat


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
    eps: float = DSIR_EPS,
) -> np.ndarray:
    """DSIR log importance weight of each document, as ``HashedNgramDSIR`` computes it.

    log w(x) = sum_b count_b(x) [log(p_target(b) + eps) - log(q_raw(b) + eps)], with p_target
    and q_raw the bucket counts of the target and of the raw (candidate pool) texts divided
    by their totals, and ``eps`` = 1e-8 as in the reference (``fit_importance_estimator``).
    ``doc_features``: the (n_docs x buckets) counts of :func:`hashed_ngram_features` with
    ``per_document=True`` (sparse or dense). Returns a float64 array of length n_docs;
    sampling documents with probability proportional to exp(log w) (Gumbel top-k) is
    DSIR's resampling step.
    """
    target = _as_counts(target_features, name="target_features")
    raw = _as_counts(raw_features, name="raw_features", length=target.shape[0])
    if not np.isfinite(eps) or eps <= 0:
        raise StrategyInputError(f"eps: expected a finite number > 0, got {eps!r}")
    diff = np.log(target / target.sum() + eps) - np.log(raw / raw.sum() + eps)
    if getattr(doc_features, "shape", (0, 0))[-1] != target.shape[0]:
        raise StrategyInputError(
            f"doc_features: expected {target.shape[0]} buckets per document, "
            f"got shape {getattr(doc_features, 'shape', None)}"
        )
    return np.asarray(doc_features @ diff, dtype=np.float64).ravel()


def _kl(w: np.ndarray, p_s: np.ndarray, q_s: np.ndarray) -> float:
    """KL(p || w @ q) over the target's support."""
    m = w @ q_s
    return float(np.inf) if np.any(m <= 0) else float(np.sum(p_s * (np.log(p_s) - np.log(m))))


def _natural_mixture(
    groups: list[str], counts: np.ndarray, tokens: Mapping[str, float] | None
) -> np.ndarray:
    """The groups weighed by ``tokens`` when given, else by their feature mass."""
    if tokens is not None:
        tok = check_tokens(tokens, name="tokens")
        missing = [g for g in groups if g not in tok]
        if missing:
            raise StrategyInputError(f"tokens: no entry for group(s) {missing}")
        natural = np.array([tok[g] for g in groups], dtype=np.float64)
    else:
        natural = counts.sum(axis=1)
    return natural / natural.sum()


def _em_weights(
    p_s: np.ndarray, q_s: np.ndarray, *, max_iter: int, tol: float
) -> tuple[np.ndarray, int, bool]:
    """EM multiplicative updates from uniform weights: (weights, iterations, converged)."""
    w = np.full(q_s.shape[0], 1.0 / q_s.shape[0])
    prev = _kl(w, p_s, q_s)
    converged = False
    it = 0
    for step in range(1, max_iter + 1):
        it = step
        m = w @ q_s
        w = w * (q_s @ (p_s / m))
        w /= w.sum()
        cur = _kl(w, p_s, q_s)
        if prev - cur <= tol * max(1.0, abs(cur)):
            converged = True
            break
        prev = cur
    return w, it, converged


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
        return _kl(w, p_s, q_s)

    natural = _natural_mixture(groups, counts, tokens)
    w, it, converged = _em_weights(p_s, q_s, max_iter=max_iter, tol=tol)
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


@strategy_spec(
    "target_matching",
    needs=("target_texts", "group_features"),
    summary="group weights minimising KL(target || mixture) of hashed word n-grams",
)
def _target_matching(inputs: StrategyInputs, params: dict) -> MixtureWeights:
    from analytics.mixture.builder import target_matching_from_texts

    check_params("target_matching", params)
    return target_matching_from_texts(
        inputs.group_features or {},
        inputs.target_texts or [],
        tokens=inputs.tokens,
        buckets=inputs.buckets,
        sample=inputs.group_sample,
    )

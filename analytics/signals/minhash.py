"""Vectorised MinHash + LSH + union-find, compatible with datasketch.

* Shingles: word k-grams of the normalised tokens (`_text.tokenize`); a document with
  0 < words < k has one shingle (all its words); a document without words has none (its
  signature stays at the empty value and it is never a near-duplicate).
* Signatures: datasketch's default "affine32" scheme (datasketch >= 2.0): with a shingle's
  32-bit input hash h, permutation k gives `a_k * fmix32(h) + b_k mod 2^32`, a_k odd, with
  (a, b) drawn exactly as datasketch draws them from `np.random.RandomState(seed)`; the
  signature is the column-wise minimum. Given the same 32-bit input hashes, the signature
  equals `datasketch.MinHash(num_perm, seed, hashfunc=...)`'s hashvalues bit for bit (tested).
  The input hash here is the low 32 bits of our 64-bit shingle hash, where datasketch used
  directly hashes shingle bytes with SHA-1; both are uniform hashes, so Jaccard estimates
  have the same distribution.
* LSH: b bands of r rows chosen by datasketch's rule (minimise the weighted false-positive
  and false-negative areas around the threshold); a band's key is a 64-bit hash of its r
  values. Two documents are candidates when they share a key in any band; no all-pairs
  comparison. Candidates are optionally verified by the signatures' estimated Jaccard.
* Clusters: connected components of the candidate graph (scipy's union-find equivalent);
  the representative is the smallest doc_id of each cluster.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from analytics.signals._text import Tokens, fmix32, fmix64, ngram_hashes, ngram_hashes_of_words

EMPTY = np.uint32(0xFFFFFFFF)


def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """datasketch affine32 permutation parameters (a odd, b) as uint32 arrays."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def shingle_hashes(tokens: Tokens, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(32-bit shingle input hashes, document index), grouped by document in order."""
    h, doc, _ = ngram_hashes(tokens, k)
    counts = tokens.counts
    short = np.flatnonzero((counts > 0) & (counts < k))
    if len(short):
        offsets = np.concatenate([[0], np.cumsum(counts)])
        extra = np.array(
            [
                ngram_hashes_of_words(tokens.hashes[offsets[i] : offsets[i + 1]], counts[i])[0]
                for i in short
            ],
            dtype=np.uint64,
        )
        h = np.concatenate([h, extra])
        doc = np.concatenate([doc, short.astype(np.int64)])
        order = np.argsort(doc, kind="stable")
        h, doc = h[order], doc[order]
    return (h & np.uint64(0xFFFFFFFF)).astype(np.uint32), doc


def signatures(
    hv: np.ndarray,
    doc: np.ndarray,
    n_docs: int,
    a: np.ndarray,
    b: np.ndarray,
    *,
    chunk: int = 1 << 13,
) -> np.ndarray:
    """MinHash signatures (n_docs, num_perm) uint32 from per-shingle 32-bit input hashes.

    `doc` must be non-decreasing. Work is chunked (memory: chunk * num_perm * 4 bytes) and laid
    out permutation-major so the per-document minimum (`minimum.reduceat`) runs over
    contiguous memory (about 10x faster than shingle-major).
    """
    num_perm = len(a)
    out = np.full((num_perm, n_docs), EMPTY, dtype=np.uint32)
    if len(hv):
        mixed = fmix32(hv)
        a_col, b_col = a[:, None], b[:, None]
        for lo in range(0, len(mixed), chunk):
            hi = min(lo + chunk, len(mixed))
            phv = a_col * mixed[None, lo:hi] + b_col
            d = doc[lo:hi]
            starts = np.flatnonzero(np.concatenate([[True], d[1:] != d[:-1]]))
            seg = np.minimum.reduceat(phv, starts, axis=1)
            ids = d[starts]
            out[:, ids] = np.minimum(out[:, ids], seg)
    return np.ascontiguousarray(out.T)


def _fp_area(threshold: float, b: int, r: int) -> float:
    from scipy.integrate import quad

    return quad(lambda s: 1 - (1 - s ** float(r)) ** float(b), 0.0, threshold)[0]


def _fn_area(threshold: float, b: int, r: int) -> float:
    from scipy.integrate import quad

    return quad(lambda s: 1 - (1 - (1 - s ** float(r)) ** float(b)), threshold, 1.0)[0]


def detection_probability(jaccard: float | np.ndarray, *, bands: int, rows: int):
    """Probability that LSH with ``bands`` bands of ``rows`` rows makes a pair of Jaccard
    similarity ``jaccard`` a candidate: 1 - (1 - J^r)^b (the S-curve)."""
    j = np.asarray(jaccard, dtype=np.float64)
    return 1.0 - (1.0 - j ** float(rows)) ** float(bands)


def jaccard_at_probability(p: float, *, bands: int, rows: int) -> float:
    """The Jaccard at which a pair is detected with probability ``p`` (``p=0.5``: the
    S-curve's midpoint): (1 - (1 - p)^(1/b))^(1/r)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"expected 0 < p < 1, got {p}")
    return float((1.0 - (1.0 - p) ** (1.0 / bands)) ** (1.0 / rows))


def mean_detection_probability(lo: float, hi: float, *, bands: int, rows: int) -> float:
    """Average detection probability of pairs whose Jaccard is uniform in [lo, hi]:
    (1 / (hi - lo)) * integral_lo^hi P(J) dJ (numerical quadrature)."""
    from scipy.integrate import quad

    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"expected 0 <= lo < hi <= 1, got {lo}, {hi}")
    area = quad(lambda s: 1 - (1 - s ** float(rows)) ** float(bands), lo, hi)[0]
    return float(area / (hi - lo))


@lru_cache(maxsize=64)
def optimal_param(
    threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows) minimising fp_weight * FP area + fn_weight * FN area (datasketch's rule)."""
    best, opt = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            err = fp_weight * _fp_area(threshold, b, r) + fn_weight * _fn_area(threshold, b, r)
            if err < best:
                best, opt = err, (b, r)
    return opt


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n_docs, bands) uint64 keys: a 64-bit hash of each band's `rows` values."""
    n = sig.shape[0]
    x = sig[:, : bands * rows].astype(np.uint64).reshape(n, bands, rows)
    acc = np.zeros((n, bands), dtype=np.uint64)
    poly = np.uint64(0x100000001B3)
    for j in range(rows):
        acc = acc * poly + x[:, :, j]
    # mix in the band index so equal values in different bands never share a key
    return fmix64(acc ^ (np.arange(bands, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)))


def candidate_edges(keys: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(m, 2) int64 edges (i, j) with i the smallest index sharing a band key with j."""
    n, nb = keys.shape
    idx = np.arange(n, dtype=np.int64)
    if valid is not None:
        idx = idx[valid]
        keys = keys[valid]
    edges = []
    for band in range(nb):
        k = keys[:, band]
        order = np.argsort(k, kind="stable")
        ks, ids = k[order], idx[order]
        new = np.concatenate([[True], ks[1:] != ks[:-1]])
        group = np.cumsum(new) - 1
        first = ids[np.flatnonzero(new)][group]  # smallest index: ids ascend within a group
        dup = ~new
        if dup.any():
            edges.append(np.stack([first[dup], ids[dup]], axis=1))
    if not edges:
        return np.empty((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(edges), axis=0)


def verify_edges(sig: np.ndarray, edges: np.ndarray, threshold: float) -> np.ndarray:
    """Keep edges whose signatures' estimated Jaccard (share of equal values) >= threshold."""
    if len(edges) == 0:
        return edges
    est = (sig[edges[:, 0]] == sig[edges[:, 1]]).mean(axis=1)
    return edges[est >= threshold]


def components(n: int, edges: np.ndarray) -> np.ndarray:
    """Connected-component label per node 0..n-1 (label = smallest node index in it)."""
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if len(edges) == 0:
        return np.arange(n, dtype=np.int64)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(len(edges), dtype=np.int8), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, lab = connected_components(g, directed=False)
    smallest = np.full(lab.max() + 1, n, dtype=np.int64)
    np.minimum.at(smallest, lab, np.arange(n, dtype=np.int64))
    return smallest[lab]


def minhash_clusters(
    texts: list[str],
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    shingle_words: int = 5,
    seed: int = 1,
    verify: bool = False,
) -> np.ndarray:
    """In-memory near-duplicate clustering: label per text = index of its cluster's first text.

    Give texts sorted by doc_id so that the label is the representative (smallest doc_id).
    """
    from analytics.signals._text import tokenize

    tok = tokenize(texts)
    hv, doc = shingle_hashes(tok, shingle_words)
    a, b = permutations(num_perm, seed)
    sig = signatures(hv, doc, tok.n_docs, a, b)
    bands, rows = optimal_param(threshold, num_perm)
    keys = band_keys(sig, bands, rows)
    edges = candidate_edges(keys, valid=tok.counts > 0)
    if verify:
        edges = verify_edges(sig, edges, threshold)
    return components(len(texts), edges)

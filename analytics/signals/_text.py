"""Vectorised word tokenisation and hashing shared by dedup and contamination.

Normalised word tokens: the text is lower-cased and split on every run of characters that
are not letters, digits or combining marks (`[^\\pL\\pN\\pM]+`), so punctuation and
whitespace only separate words. The Arrow path (pyarrow compute: RE2 in C++) handles a whole
batch at once; only the distinct words of a batch are hashed in Python (BLAKE2b, 8 bytes,
stable across runs and machines). An n-gram's hash is a polynomial over its word hashes
(mod 2^64) passed through the MurmurHash3 64-bit finaliser.

`word_spans` is the per-document Python equivalent that also returns character offsets
(used only on the few documents that need spans).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analytics.signals.base import lazy_import

SEP_PATTERN = r"[^\pL\pN\pM]+"
_POLY = np.uint64(0x100000001B3)


@dataclass(frozen=True)
class Tokens:
    """Tokens of a batch of texts, flattened: token i belongs to document `doc[i]`."""

    hashes: np.ndarray  # uint64 word hash per token
    doc: np.ndarray  # int64 document index per token (non-decreasing)
    n_docs: int

    @property
    def counts(self) -> np.ndarray:
        return np.bincount(self.doc, minlength=self.n_docs).astype(np.int64)


def hash_strings(values: list[str]) -> np.ndarray:
    """uint64 BLAKE2b-64 hash of each string's UTF-8 bytes."""
    if not values:
        return np.empty(0, dtype=np.uint64)
    blake = hashlib.blake2b
    digests = b"".join(
        blake(v.encode("utf-8", errors="surrogatepass"), digest_size=8).digest() for v in values
    )
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3 64-bit finaliser (a bijection on uint64), element-wise."""
    x = np.asarray(x, dtype=np.uint64)
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> np.uint64(33))


def fmix32(x: np.ndarray) -> np.ndarray:
    """MurmurHash3 32-bit finaliser, element-wise on uint32 (as datasketch's affine32)."""
    x = np.asarray(x, dtype=np.uint32)
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x85EBCA6B)
    x = x ^ (x >> np.uint32(13))
    x = x * np.uint32(0xC2B2AE35)
    return x ^ (x >> np.uint32(16))


def _as_array(texts: pa.Array | pa.ChunkedArray | list[str | None]) -> pa.Array:
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    elif not isinstance(texts, pa.Array):
        texts = pa.array(texts, type=pa.string())
    if pa.types.is_large_string(texts.type) or pa.types.is_string_view(texts.type):
        texts = texts.cast(pa.string())
    return pc.fill_null(texts, "")


def tokenize(texts: pa.Array | pa.ChunkedArray | list[str | None]) -> Tokens:
    """Normalised word tokens of every text, hashed (see module docstring)."""
    arr = _as_array(texts)
    n_docs = len(arr)
    if n_docs == 0:
        return Tokens(np.empty(0, np.uint64), np.empty(0, np.int64), 0)
    parts = pc.split_pattern_regex(pc.utf8_lower(arr), SEP_PATTERN)
    flat = pc.list_flatten(parts)
    parents = pc.list_parent_indices(parts)
    keep = pc.greater(pc.utf8_length(flat), 0)
    flat = pc.filter(flat, keep)
    parents = pc.filter(parents, keep)
    if len(flat) == 0:
        return Tokens(np.empty(0, np.uint64), np.empty(0, np.int64), n_docs)
    enc = pc.dictionary_encode(flat)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    uniq = hash_strings(enc.dictionary.to_pylist())
    idx = enc.indices.to_numpy(zero_copy_only=False)
    return Tokens(uniq[idx], parents.to_numpy(zero_copy_only=False).astype(np.int64), n_docs)


def ngram_hashes(tokens: Tokens, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hashes of every word n-gram inside one document.

    Returns (hash uint64, document index, index of the n-gram's first token in `tokens`).
    """
    h, doc = tokens.hashes, tokens.doc
    m = len(h) - n + 1
    if n < 1 or m <= 0:
        empty = np.empty(0, dtype=np.int64)
        return np.empty(0, dtype=np.uint64), empty, empty
    acc = np.zeros(m, dtype=np.uint64)
    for j in range(n):
        acc = acc * _POLY + h[j : j + m]
    starts = np.arange(m, dtype=np.int64)
    valid = doc[:m] == doc[n - 1 :]
    return fmix64(acc[valid]), doc[:m][valid], starts[valid]


def ngram_hashes_of_words(hashes: np.ndarray, n: int) -> np.ndarray:
    """Same n-gram hashes for one document's word hashes (pure numpy)."""
    m = len(hashes) - n + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    acc = np.zeros(m, dtype=np.uint64)
    for j in range(n):
        acc = acc * _POLY + hashes[j : j + m]
    return fmix64(acc)


@lru_cache(maxsize=1)
def _word_re():
    regex = lazy_import("regex", "regex", "word spans")
    return regex.compile(r"[\p{L}\p{N}\p{M}]+")


def word_spans(text: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(lower-cased words, start offsets, end offsets) of one text, in characters."""
    words, starts, ends = [], [], []
    for m in _word_re().finditer(text):
        words.append(m.group().lower())
        starts.append(m.start())
        ends.append(m.end())
    return words, np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)

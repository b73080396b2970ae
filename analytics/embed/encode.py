"""`embed_texts`: length-sorted batching, clipping, float32 L2-normalised output in input order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from analytics.embed.errors import EmbedError
from analytics.embed.models import Embedder

Progress = Callable[[str, int, int], None]

#: with length sorting, texts are handed to the model this many batches at a time
SORTED_CHUNK_BATCHES = 16


def l2_normalise(X: np.ndarray) -> np.ndarray:
    """Rows of `X` scaled to unit L2 norm in float32 (all-zero rows stay zero); new array."""
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return X / norms


def embed_texts(
    embedder: Embedder,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    sort_by_length: bool = True,
    max_chars: int | None | Literal["auto"] = "auto",
    progress: Progress | None = None,
) -> np.ndarray:
    """Embed `texts`; return a float32 (N, d) matrix of unit-norm rows in the input order.

    `sort_by_length=True` orders texts by (clipped) character length, longest first, so each
    batch pads to similar lengths; `False` batches them in the given order. `max_chars`
    clips each text before tokenisation ('auto': `embedder.max_chars`, i.e. 20 characters
    per token of the model's window; None: no clipping). `progress("embed", done, total)`.
    """
    if batch_size <= 0:
        raise EmbedError(f"batch_size must be positive, got {batch_size}.")
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise EmbedError(f"text #{bad} is {type(texts[bad]).__name__}, expected a string.")
    n = len(texts)
    out = np.empty((n, embedder.dim), dtype=np.float32)
    if n == 0:
        return out
    cap = embedder.max_chars if max_chars == "auto" else max_chars
    if cap:
        texts = [t if len(t) <= cap else t[:cap] for t in texts]
    if sort_by_length:
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
        order = np.argsort(-lengths, kind="stable")
        chunk = batch_size * SORTED_CHUNK_BATCHES
    else:
        order = np.arange(n)
        chunk = batch_size
    for start in range(0, n, chunk):
        idx = order[start : start + chunk]
        vecs = np.asarray(embedder.encode_batch([texts[i] for i in idx], batch_size=batch_size))
        if vecs.shape != (len(idx), embedder.dim):
            raise EmbedError(
                f"{embedder!r} returned vectors of shape {vecs.shape}, expected "
                f"({len(idx)}, {embedder.dim})."
            )
        out[idx] = vecs
        if progress is not None:
            progress("embed", min(start + chunk, n), n)
    return l2_normalise(out)

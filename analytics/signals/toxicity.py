"""Offensive-language score from alt-profanity-check (a scikit-learn model shipped inside
the package: TF-IDF over English word unigrams, English stop words removed, then a
calibrated linear SVM trained on labelled offensive / hateful short texts).

Limits, stated plainly:

* English only: other languages score near the base rate whatever they say.
* Word-level bag of words: no context, negation or sarcasm; it flags profanity (including
  friendly or reclaimed use, and medical/anatomical words) far better than it detects polite
  hate, threats or harassment without swear words. It measures "offensive language", not
  harm.
* Trained on short texts (tweets, comments): a long document's whole-text score is
  diluted by TF-IDF normalisation, so we also report the maximum over chunks of
  `chunk_words` whitespace-separated words.
* Scores are calibrated probabilities of the "offensive" class on its training
  distribution; use them to rank and compare sources, not as absolute rates.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from analytics.signals.base import Column, Signal, SignalError, lazy_import, texts_of
from analytics.signals.registry import register


@register
class Toxicity(Signal):
    name = "toxicity"
    description = "offensive-language probability (alt-profanity-check; English, word-level)"
    params_doc = {
        "chunk_words": (64, "chunk size in words for the per-chunk maximum"),
        "max_chars": (20_000, "score only the first this many characters"),
    }
    columns = (
        Column("toxicity_doc", "DOUBLE", "offensive-language probability of the whole text"),
        Column("toxicity_max", "DOUBLE", "maximum probability over chunks of chunk_words words"),
    )

    def validate(self) -> None:
        for key in ("chunk_words", "max_chars"):
            if int(self.params[key]) <= 0:
                raise SignalError(f"toxicity: parameter {key} must be positive")

    def compute(self, batch: pa.Table) -> pa.Table:
        pc_mod = lazy_import("profanity_check", "alt-profanity-check", "the toxicity signal")
        max_chars = int(self.params["max_chars"])
        size = int(self.params["chunk_words"])
        texts = [t[:max_chars] for t in texts_of(batch)]
        if not texts:
            return self._result(batch, {"toxicity_doc": [], "toxicity_max": []})
        doc_scores = np.asarray(pc_mod.predict_prob(texts), dtype=np.float64)
        chunks: list[str] = []
        starts = np.empty(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            starts[i] = len(chunks)
            words = text.split()
            chunks.extend(" ".join(words[j : j + size]) for j in range(0, len(words), size))
            if len(chunks) == starts[i]:
                chunks.append("")
        chunk_scores = np.asarray(pc_mod.predict_prob(chunks), dtype=np.float64)
        max_scores = np.maximum.reduceat(chunk_scores, starts)
        empty = np.array([not t.strip() for t in texts])
        doc_out = np.where(empty, np.nan, doc_scores)
        max_out = np.where(empty, np.nan, max_scores)
        return self._result(
            batch,
            {
                "toxicity_doc": pa.array(doc_out, from_pandas=True),
                "toxicity_max": pa.array(max_out, from_pandas=True),
            },
        )

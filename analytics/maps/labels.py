"""Cluster labels by class-based TF-IDF (c-TF-IDF, as in BERTopic's ClassTfidfTransformer).

The texts of each cluster are concatenated into one "class document" and counted with
sklearn's CountVectorizer (K x V counts). With tf_{t,c} the count of term t in cluster c
divided by the number of words of c (L1-normalised rows), f_t the count of t over all
clusters and A = int(average number of words per cluster) (BERTopic truncates to int):

    c-TF-IDF_{t,c} = tf_{t,c} * log(1 + A / f_t)

The label of a cluster is its top `label_terms` terms joined by ", ". Stop words are removed
before counting; the default, "multilingual", removes the stop words of every language in
`languages` (spaCy's per-language lists, plus scikit-learn's English list), so "und, die, der",
"que, el, lo" or "не, что, на" never become labels of German, Spanish or Russian clusters.
Text is read from the
workspace in Arrow batches only for labelling, for at most `max_docs_per_cluster` documents
per cluster (a seeded random subset) and their first `max_chars` characters.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Iterable, Mapping, Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from analytics.maps.errors import MapError

TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"  # words of 2+ letters (no digits/underscores)
NOISE_LABEL = "(unclustered)"
#: languages whose stop words "multilingual" removes when the corpus's are not given
DEFAULT_STOP_LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl", "ru")


@functools.lru_cache(maxsize=64)
def _spacy_stop_words(lang: str) -> frozenset[str]:
    code = str(lang).lower().split("-")[0].split("_")[0]
    if not re.fullmatch(r"[a-z]{2,3}", code):
        return frozenset()
    try:
        mod = importlib.import_module(f"spacy.lang.{code}.stop_words")
    except ImportError:  # a language spaCy has no list for (or spaCy missing): none removed
        return frozenset()
    return frozenset(w.lower() for w in getattr(mod, "STOP_WORDS", ()))


def stop_words_for(languages: Iterable[str]) -> list[str]:
    """The union of the stop-word lists of `languages` (spaCy's, by ISO code; scikit-learn's
    English list too), lower-cased and kept only as the words TOKEN_PATTERN can count."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words = set(ENGLISH_STOP_WORDS)
    for lang in dict.fromkeys(languages):
        if lang:
            words |= _spacy_stop_words(str(lang))
    token = re.compile(TOKEN_PATTERN)
    return sorted(w for w in words if token.fullmatch(w))


def ctfidf(counts) -> np.ndarray:
    """c-TF-IDF weights (dense K x V float64) of a K x V count matrix (dense or sparse)."""
    import scipy.sparse as sp

    C = sp.csr_matrix(counts, dtype=np.float64)
    f = np.asarray(C.sum(axis=0)).ravel()
    words = np.asarray(C.sum(axis=1)).ravel()
    A = int(words.mean()) if len(words) else 0
    idf = np.log(1.0 + A / np.where(f > 0, f, 1.0))
    tf = C.multiply(1.0 / np.where(words > 0, words, 1.0)[:, None]).toarray()
    return tf * idf[None, :]


def label_clusters(
    texts: Mapping[int, str | Sequence[str]],
    *,
    sizes: Mapping[int, int] | None = None,
    n_terms: int = 10,
    label_terms: int = 4,
    stop_words: str | list[str] | None = "multilingual",
    languages: Iterable[str] | None = None,
    ngram_range: tuple[int, int] = (1, 1),
) -> pd.DataFrame:
    """One row per cluster: cluster, label, terms (top `n_terms`), weights, size.

    `texts[c]` is the text of cluster c (a string or a list of documents, concatenated).
    Cluster -1 (noise) is weighted like the others but labelled "(unclustered)".
    `stop_words`: "multilingual" (the stop words of `languages`, default
    DEFAULT_STOP_LANGUAGES), "english", a list of words, or None.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    if stop_words == "multilingual":
        stop_words = stop_words_for(DEFAULT_STOP_LANGUAGES if languages is None else languages)

    clusters = sorted(texts)
    docs = [t if isinstance(t, str) else "\n".join(t) for t in (texts[c] for c in clusters)]
    sizes = dict(sizes or {})
    rows = []
    if clusters:
        vec = CountVectorizer(
            stop_words=stop_words, token_pattern=TOKEN_PATTERN, ngram_range=ngram_range
        )
        try:
            counts = vec.fit_transform(docs)
            vocab = vec.get_feature_names_out()
        except ValueError:  # empty vocabulary: only stop words / no letters
            counts, vocab = None, np.array([], dtype=object)
        W = ctfidf(counts) if counts is not None else np.zeros((len(clusters), 0))
        for i, c in enumerate(clusters):
            w = W[i]
            nz = np.flatnonzero(w > 0)
            top = sorted(nz.tolist(), key=lambda j: (-w[j], str(vocab[j])))[:n_terms]
            terms = [str(vocab[j]) for j in top]
            label = NOISE_LABEL if c == -1 else (", ".join(terms[:label_terms]) or f"cluster {c}")
            rows.append(
                {
                    "cluster": int(c),
                    "label": label,
                    "terms": terms,
                    "weights": [float(w[j]) for j in top],
                    "size": int(sizes.get(c, 0)),
                }
            )
    for c in sorted(set(sizes) - set(clusters)):
        rows.append(
            {
                "cluster": int(c),
                "label": NOISE_LABEL if c == -1 else f"cluster {c}",
                "terms": [],
                "weights": [],
                "size": int(sizes[c]),
            }
        )
    df = pd.DataFrame(rows, columns=["cluster", "label", "terms", "weights", "size"])
    return df.sort_values("cluster", kind="stable").reset_index(drop=True)


def choose_label_docs(
    doc_ids: np.ndarray, labels: np.ndarray, *, max_docs_per_cluster: int = 300, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random subset of at most `max_docs_per_cluster` doc ids per cluster."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) > max_docs_per_cluster:
            idx = np.sort(rng.choice(idx, size=max_docs_per_cluster, replace=False))
        keep.append(idx)
    sel = np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)
    return doc_ids[sel], labels[sel]


def read_cluster_texts(
    cursor: duckdb.DuckDBPyConnection,
    doc_ids: np.ndarray,
    labels: np.ndarray,
    *,
    max_chars: int = 2_000,
    batch_rows: int = 2_048,
) -> dict[int, list[str]]:
    """Texts (first `max_chars` characters) of `doc_ids` grouped by their label, read from
    `documents` in Arrow batches. Ids missing from `documents` are skipped."""
    if len(doc_ids) != len(labels):
        raise MapError(f"{len(doc_ids)} doc ids for {len(labels)} labels.")
    sel = pa.table(
        {
            "doc_id": pa.array([str(d) for d in doc_ids], pa.string()),
            "cluster": pa.array(np.asarray(labels, dtype=np.int32)),
        }
    )
    cursor.register("_mx_label_docs", sel)
    try:
        reader = cursor.sql(
            f"SELECT s.cluster, left(d.text, {int(max_chars)}) AS text "
            "FROM _mx_label_docs s JOIN document_text d ON d.doc_id = s.doc_id"
        ).to_arrow_reader(batch_rows)
        out: dict[int, list[str]] = {}
        for batch in reader:
            for c, t in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
                out.setdefault(int(c), []).append(t or "")
    finally:
        cursor.unregister("_mx_label_docs")
    return out

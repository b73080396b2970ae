"""True DSIR against its reference implementation, the `data-selection` package (PyPI),
run here on the same inputs: identical features, importance weights equal to float
tolerance, the same top-k selection; Gumbel top-k inclusion frequencies against the
closed form (softmax of the log weights)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analytics.mixture import STRATEGIES, StrategyInputError, dsir_select, hashed_ngram_features
from analytics.mixture.strategies import gumbel_top_k_budget
from tests.conftest import ROOT

DEMO = ROOT / "data" / "demo_corpus.parquet"


def _corpus(n_per_source: int = 25) -> tuple[pd.DataFrame, list[str]]:
    """A small mixed candidate pool (first docs of several sources, cut to 1,500 chars) and a
    python-doc target disjoint from it."""
    df = pd.read_parquet(DEMO, columns=["id", "text", "source"])
    parts = [
        df[df.source == s].head(n_per_source)
        for s in ("python-doc", "linux-doc", "fortunes-en", "jargon", "austen", "wordnet")
    ]
    pool = pd.concat(parts).reset_index(drop=True)
    pool = pool.assign(doc_id=pool["id"].astype(str), text=pool["text"].str.slice(0, 1500))
    pool["n_tokens"] = pool["text"].str.len() // 4 + 1
    target = df[df.source == "python-doc"].iloc[500:540]["text"].str.slice(0, 1500).tolist()
    return pool, target


def _reference(tmp_path, pool: pd.DataFrame, target: list[str], *, min_len: int = 0):
    from data_selection import HashedNgramDSIR

    raw = tmp_path / "raw.jsonl"
    tgt = tmp_path / "target.jsonl"
    raw.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in
                           zip(pool["doc_id"], pool["text"])))  # fmt: skip
    tgt.write_text("".join(json.dumps({"text": t}) + "\n" for t in target))
    dsir = HashedNgramDSIR(
        [str(raw)], [str(tgt)], cache_dir=str(tmp_path / "cache"), num_proc=1,
        min_example_length=min_len,
    )  # fmt: skip
    dsir.fit_importance_estimator(num_tokens_to_fit="all")
    dsir.compute_importance_weights()
    lw = np.load(tmp_path / "cache" / "log_importance_weights" / "0.npy")
    return dsir, lw


def test_features_equal_reference_get_ngram_counts():
    from data_selection.hashed_ngram_dsir import get_ngram_counts

    texts = [
        "The cat sat on the mat. The CAT sat!",
        "def f(x):\n    return x ** 2  # square",
        "Ünïcödé wörds, ça va? 日本語 テキスト",
        "a² + b² = c²; x₁ ½ Ⅳ ٣ ﬁ İstanbul ß",  # characters where regex and re differ
        "",
        "a",
    ]
    # and a slice of every demo source (18 scripts and styles), cut to 2,000 characters
    df = pd.read_parquet(DEMO, columns=["text", "source"])
    texts += df.groupby("source").head(12)["text"].str.slice(0, 2000).tolist()
    for buckets in (10_000, 97):
        for n in (1, 2, 3):
            ours = hashed_ngram_features(texts, buckets=buckets, ngrams=n, per_document=True)
            ref = np.stack([get_ngram_counts(t, n=n, num_buckets=buckets) for t in texts])
            np.testing.assert_array_equal(ours.toarray(), ref)


def test_importance_weights_match_reference(tmp_path):
    from scipy.stats import spearmanr

    pool, target = _corpus()
    dsir, ref = _reference(tmp_path, pool, target)
    res = STRATEGIES.get("dsir")(pool, target, budget=1000, seed=0)
    ours = res.extras["log_weights"]
    assert ours.shape == ref.shape == (len(pool),)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-6)
    assert spearmanr(ours, ref).statistic >= 0.999999
    # per n-gram, the target's source scores above every other source (log w grows with
    # length, so compare the weight per n-gram)
    per = ours / np.asarray(hashed_ngram_features(pool["text"], per_document=True).sum(1)).ravel()
    by_src = pd.Series(per).groupby(pool["source"]).mean()
    assert by_src.idxmax() == "python-doc"


def test_top_k_selection_equals_reference_resample(tmp_path):
    pool, target = _corpus()
    dsir, _ = _reference(tmp_path, pool, target, min_len=20)
    k = 30
    dsir.resample(out_dir=str(tmp_path / "out"), num_to_sample=k, top_k=True)
    chosen = {
        str(json.loads(line)["id"])
        for line in (tmp_path / "out" / "0.jsonl").read_text().splitlines()
    }
    ones = pool.assign(n_tokens=1)  # one token per document: the budget counts documents
    res = dsir_select(ones, target, budget=k, sampling="top_k", min_words=20)
    assert res.diagnostics["eligible"] < len(pool)  # the length filter did remove some
    assert set(res.extras["selection"]["doc_id"]) == chosen
    assert len(chosen) == k


def test_gumbel_top_k_inclusion_matches_softmax():
    # k = 1: P(i chosen) = w_i / sum w (the Gumbel-max trick), checked over 4,000 seeds
    lw = np.log(np.array([1.0, 2.0, 5.0, 0.5]))
    p = np.exp(lw) / np.exp(lw).sum()
    hits = np.zeros(4)
    n = 4000
    for seed in range(n):
        idx, _ = gumbel_top_k_budget(lw, np.ones(4, dtype=np.int64), 1, seed=seed)
        hits[idx] += 1
    sd = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(hits / n - p) < 5 * sd)


def test_budget_is_reached_with_less_than_one_document_over():
    pool, target = _corpus()
    res = dsir_select(pool, target, budget=5_000, seed=3)
    sel = res.extras["selection"]
    tok = int(sel["n_tokens"].sum())
    last = sel.loc[sel["key"].idxmin()]  # the document taken last crossed the budget
    assert tok >= 5_000 > tok - int(last["n_tokens"])
    # every document left out has a lower key than every document taken
    keys = pd.Series(np.asarray(res.extras["log_weights"]), index=pool["doc_id"])
    assert len(sel) < len(pool) and keys.notna().all()
    # same seed, same selection
    again = dsir_select(pool, target, budget=5_000, seed=3).extras["selection"]
    assert list(again["doc_id"]) == list(sel["doc_id"])
    # with the reference's length filter (100 words, the default) the selection leans to the
    # target's source far beyond its share of the pool
    share = (pool.set_index("doc_id").loc[sel["doc_id"], "source"] == "python-doc").mean()
    assert share > 2 * (pool["source"] == "python-doc").mean()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"target": ["   ", ""]}, "target texts"),
        ({"target": ["!!! ???"], "budget": 10}, None),  # punctuation is a WordPunct token
        ({"budget": 10**12}, "more than"),
        ({"budget": 10**12, "min_words": 0}, "candidate documents"),
        ({"budget": 0}, "budget"),
        ({"buckets": 1}, "buckets"),
    ],
)
def test_bad_input(kwargs, match):
    pool, target = _corpus(3)
    tgt = kwargs.pop("target", target)
    args = {"budget": 100, "min_words": 0, **kwargs}
    if match is None:
        assert dsir_select(pool, tgt, **args)["dsir"] == 1.0
        return
    with pytest.raises(StrategyInputError, match=match):
        dsir_select(pool, tgt, **args)

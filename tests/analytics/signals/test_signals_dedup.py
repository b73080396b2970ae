"""Exact and near-duplicate detection, checked against datasketch and closed forms."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from analytics.signals import get_signal
from analytics.signals import minhash as mh
from analytics.signals._text import ngram_hashes, tokenize
from analytics.signals.exact_dup import normalise
from tests.conftest import ROOT

datasketch = pytest.importorskip("datasketch")

VOCAB = (
    "river town market bridge castle garden museum school harbour train station church "
    "winter summer autumn spring morning evening music theatre library science history "
    "doctor farmer sailor baker painter writer student teacher walks reads builds sells "
    "carries finds opens closes quickly slowly quietly loudly under over near behind"
).split()


def text(seed: int, n: int = 200) -> str:
    rnd = random.Random(seed)
    return " ".join(rnd.choice(VOCAB) for _ in range(n)) + "."


def test_exact_hash_ignores_case_whitespace_and_punctuation():
    a = "Hello, World!  This is   a test."
    b = "hello world\nthis is a TEST"
    c = "hello world this is another test"
    out = get_signal("exact_dup").compute(
        pa.table({"doc_id": ["a", "b", "c"], "text": [a, b, c], "url": [None] * 3})
    )
    h = out.column("exact_hash").to_pylist()
    assert h[0] == h[1] != h[2]
    assert normalise([a]).to_pylist() == ["hello world this is a test"]


def test_signatures_equal_datasketch_bit_for_bit():
    texts = [text(1), "short text", "", text(2, 7)]
    tok = tokenize(texts)
    hv, doc = mh.shingle_hashes(tok, 5)
    a, b = mh.permutations(128, seed=7)
    sig = mh.signatures(hv, doc, tok.n_docs, a, b, chunk=50)  # chunking splits documents
    for i in range(len(texts)):
        m = datasketch.MinHash(num_perm=128, seed=7, hashfunc=lambda x: x)
        m.update_batch([int(v) for v in hv[doc == i]])
        assert np.array_equal(m.hashvalues, sig[i]), i
    assert (sig[2] == mh.EMPTY).all()  # no words: empty signature


@pytest.mark.parametrize("threshold,num_perm", [(0.8, 128), (0.5, 64), (0.9, 256)])
def test_lsh_parameters_match_datasketch(threshold, num_perm):
    expected = datasketch.lsh._optimal_param(threshold, num_perm, 0.5, 0.5)
    assert mh.optimal_param(threshold, num_perm) == expected
    lsh = datasketch.MinHashLSH(threshold=threshold, num_perm=num_perm)
    assert (lsh.b, lsh.r) == expected


def test_jaccard_estimate_tracks_true_jaccard():
    # two sets of word 1-grams with known overlap: |A & B| = 600, |A | B| = 1000 -> J = 0.6
    words = [f"w{i}" for i in range(1000)]
    t1, t2 = " ".join(words[:800]), " ".join(words[200:])
    tok = tokenize([t1, t2])
    h, doc, _ = ngram_hashes(tok, 1)
    hv = (h & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    a, b = mh.permutations(512, seed=3)
    sig = mh.signatures(hv, doc, 2, a, b)
    est = float((sig[0] == sig[1]).mean())
    assert est == pytest.approx(0.6, abs=0.07)  # std ~ sqrt(0.24 / 512) = 0.022


def test_changed_word_lands_in_same_cluster_and_unrelated_do_not():
    base = text(10)
    words = base.split()
    words[100] = "zeppelin"
    changed = " ".join(words)
    texts = [base, changed, text(11), text(12), base.upper()]
    labels = mh.minhash_clusters(texts, threshold=0.8)
    assert labels[0] == labels[1] == labels[4] == 0
    assert labels[2] == 2 and labels[3] == 3


def test_candidate_edges_and_components_closed_form():
    keys = np.array([[1, 5], [2, 5], [2, 7], [3, 8], [4, 9]], dtype=np.uint64)
    edges = mh.candidate_edges(keys)
    assert edges.tolist() == [[0, 1], [1, 2]]
    assert mh.components(5, edges).tolist() == [0, 0, 0, 3, 4]
    sig = np.array([[1, 2, 3, 4], [1, 2, 3, 9], [7, 7, 7, 7]], dtype=np.uint32)
    kept = mh.verify_edges(sig, np.array([[0, 1], [0, 2]]), 0.75)
    assert kept.tolist() == [[0, 1]]


def test_lsh_detection_probability_and_the_documented_figures():
    import re

    import numpy as np

    from analytics.signals import minhash as mh
    from analytics.signals.registry import get_signal

    b, r = 9, 13
    j = np.linspace(0, 1, 11)
    np.testing.assert_allclose(mh.detection_probability(j, bands=b, rows=r), 1 - (1 - j**r) ** b)
    j50 = mh.jaccard_at_probability(0.5, bands=b, rows=r)
    assert mh.detection_probability(j50, bands=b, rows=r) == pytest.approx(0.5)
    grid = np.linspace(0.8, 0.9, 100_001)
    mean = float(np.mean(1 - (1 - grid**r) ** b))  # independent of the quadrature
    assert mh.mean_detection_probability(0.8, 0.9, bands=b, rows=r) == pytest.approx(mean, 1e-6)
    # the default signal's LSH and what the README says about it, number by number
    lsh = get_signal("near_dup").lsh_summary()
    assert (lsh["bands"], lsh["rows"]) == get_signal("near_dup").bands_rows
    readme = (ROOT / "README.md").read_text()
    para = readme[readme.index("**Near-duplicate threshold") :].split("\n- ")[0]
    para = " ".join(para.split())
    assert f"{lsh['num_perm']} MinHash permutations" in para
    assert f"{lsh['bands']} bands x {lsh['rows']} rows" in para
    assert f"1 - (1 - J^{lsh['rows']})^{lsh['bands']}" in para
    assert f"passes 50% at J = {lsh['j50']:.2f}" in para
    assert f"J = 0.8 is found {lsh['p_threshold']:.0%}" in para
    assert f"at J = 0.9 {lsh['p_hi']:.0%}" in para
    assert re.search(rf"0\.8-0\.9 {lsh['p_mean']:.0%} of the time", para), para

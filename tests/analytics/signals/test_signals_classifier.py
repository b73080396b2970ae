"""Classifier signals: a tiny BERT trained here (regression and classification heads) and a
fastText model; the stored values equal the raw model's outputs on the same texts."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from analytics.filters import Condition, DocFilter
from analytics.signals import SignalError, run_signals, signals_view_sql
from analytics.signals.classifier import ClassifierError, define_classifier
from analytics.text import fetch_texts
from analytics.workspace import Workspace
from tests import tiny_classifiers as tc
from tests.conftest import DEMO, fingerprint

N_DOCS = 12


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "reg": tc.train_hf(root / "reg", regression=True),
        "cls": tc.train_hf(root / "cls", regression=False),
        "ft": tc.train_fasttext(root / "ft.bin"),
        "plain": tc.not_a_classifier(root / "plain"),
    }


@pytest.fixture(scope="module")
def base_ws(tmp_path_factory):
    from analytics.ingest import ingest

    root = tmp_path_factory.mktemp("clfws")
    corpus = root / "small.parquet"
    duckdb.sql(
        f"COPY (SELECT id, text, source FROM read_parquet('{DEMO}') ORDER BY hash(id) "
        f"LIMIT {N_DOCS}) TO '{corpus}' (FORMAT parquet)"
    )
    ingest(Workspace(root / "ws"), [str(corpus)], id_field="id")
    return root / "ws"


@pytest.fixture
def ws(base_ws, tmp_path):
    shutil.copytree(base_ws, tmp_path / "ws")
    return Workspace(tmp_path / "ws")


def classify(ws, name, model, **kw):
    with ws.write(job="define") as con:
        sig = define_classifier(con, name=name, model=str(model), **kw)
    with ws.write(job="classify") as con:
        res = run_signals(con, [sig], batch_size=5)
    return sig, res


def texts(ws):
    cur = ws.cursor()
    ids = [r[0] for r in cur.execute("SELECT doc_id FROM documents ORDER BY doc_id").fetchall()]
    return fetch_texts(cur, ids)


def stored(ws):
    cur = ws.cursor()
    return cur.execute(signals_view_sql(cur)).df().set_index("doc_id")


def raw_hf(model_dir, text, max_length):
    """The reference: the model called on one text alone (no padding, no batching)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    enc = tok(text, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        return model(**enc).logits[0]


def test_regression_head_scores_equal_raw_model(ws, models):
    sig, res = classify(ws, "edu", models["reg"], batch_size=4)
    assert int(res["computed"].iloc[0]) == N_DOCS
    assert [c.name for c in sig.columns] == ["edu_score"]
    df = stored(ws)
    ml = sig.params["max_length"]
    assert ml == 128  # the tiny model's position limit, below the tokenizer's 512
    values = []
    for doc_id, text in texts(ws).items():
        ref = float(raw_hf(models["reg"], text, ml)[0])
        assert df.loc[doc_id, "edu_score"] == pytest.approx(ref, abs=1e-5)
        values.append(ref)
    assert len(set(round(v, 6) for v in values)) > 1  # the texts really score differently

    # usable as an Explore condition, like a computed signal
    cut = sorted(values)[len(values) // 2]
    flt = DocFilter(conditions=(Condition("signal", "edu", "edu_score", "ge", cut),))
    where, params = flt.where()
    got = ws.cursor().execute(f"SELECT count(*) FROM documents WHERE {where}", params).fetchone()
    assert got[0] == sum(v >= cut for v in values)

    # and as a mixture grouping (buckets of the score), like a computed signal's column
    import math

    from analytics.mixture import builder as b

    width = (max(values) - min(values)) / 2.7 or 1.0  # no value on a bucket edge
    groups = b.group_table(ws.cursor(), None, group_by=f"bin(edu_score, {width!r})")
    assert int(groups["documents"].sum()) == N_DOCS
    assert len(groups) == len({math.floor(v / width) for v in values})


def test_classification_head_label_and_prob(ws, models):
    import torch

    sig, _ = classify(ws, "topic", models["cls"])
    df = stored(ws)
    from transformers import AutoConfig

    id2label = AutoConfig.from_pretrained(models["cls"]).id2label
    for doc_id, text in texts(ws).items():
        probs = torch.softmax(raw_hf(models["cls"], text, sig.params["max_length"]), -1)
        k = int(probs.argmax())
        assert df.loc[doc_id, "topic_label"] == id2label[k]
        assert df.loc[doc_id, "topic_prob"] == pytest.approx(float(probs[k]), abs=1e-5)


def test_fasttext_model(ws, models):
    import fasttext

    sig, _ = classify(ws, "ft", models["ft"])
    model = fasttext.load_model(str(models["ft"]))
    df = stored(ws)
    for doc_id, text in texts(ws).items():
        # fastText's predict() of one line (its NumPy-free core: predict() itself breaks on
        # NumPy 2 in fasttext-wheel); the text is one line ending in a newline, as predict makes it
        got = model.f.predict(text.replace("\n", " ").replace("\r", " ") + "\n", 1, 0.0, "strict")
        prob, label = got[0]
        assert df.loc[doc_id, "ft_label"] == label.removeprefix("__label__")
        assert df.loc[doc_id, "ft_prob"] == pytest.approx(prob, abs=1e-6)


def test_bad_models_and_names(ws, models, tmp_path):
    before = fingerprint(ws)
    for model, match in [
        (models["plain"], r"not a sequence classifier \(architectures: BertModel\)"),
        (tmp_path / "nowhere", "no such directory"),
        (tmp_path / "x.bin", "no such file"),
    ]:
        with pytest.raises(ClassifierError, match=match):
            with ws.write(job="define") as con:
                define_classifier(con, name="bad", model=str(model))
        assert fingerprint(ws) == before
    with pytest.raises(SignalError, match="built-in signal"):
        with ws.write(job="define") as con:
            define_classifier(con, name="language", model=str(models["reg"]))
    assert fingerprint(ws) == before

    # the same name and model again resumes (no clash); another model needs --replace
    classify(ws, "edu", models["reg"])
    sig, res = classify(ws, "edu", models["reg"])
    assert int(res["computed"].iloc[0]) == 0 and int(res["n_docs"].iloc[0]) == N_DOCS
    with pytest.raises(SignalError, match="clashes with the existing classifier signal"):
        with ws.write(job="define") as con:
            define_classifier(con, name="edu", model=str(models["cls"]))


def test_signal_pickles_into_a_fresh_process(ws, models):
    """A worker process (process-pool engine) rebuilds the dynamic class from the pickle and
    computes the same scores."""
    import multiprocessing
    import pickle

    import pyarrow as pa

    sig, _ = classify(ws, "edu", models["reg"], batch_size=3)
    batch = pa.table({"doc_id": ["a", "b"], "text": [tc.TRAIN[0][0], tc.TRAIN[4][0]]})
    here = sig.compute(batch).column("edu_score").to_pylist()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        there = pool.apply(_compute_pickled, (pickle.dumps(sig), pickle.dumps(batch)))
    assert there == pytest.approx(here, abs=1e-6)


def _compute_pickled(sig_bytes, batch_bytes):
    import pickle

    sig = pickle.loads(sig_bytes)
    assert type(sig).run_batch_size == 3
    return sig.compute(pickle.loads(batch_bytes)).column("edu_score").to_pylist()

"""Concept counts (whole-word, case-insensitive, per source) and the log-linear fit."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from analytics.migrations import MIGRATIONS
from analytics.signals.concepts import (
    ConceptError,
    concept_counts,
    default_rare_threshold,
    fit_concept_accuracy,
    rank_frequency,
    rare_concepts,
    read_accuracy_csv,
    read_concepts,
)
from tests.conftest import add_doc

DOCS = [
    ("d1", "pets", "The cat sat. Category theory is hard. CAT! The cat's toy; a bobcat."),
    ("d2", "pets", "No felines here, only a concatenation of dogs."),
    ("d3", "travel", "New York is big; new-york style pizza. NEW\nYORK again. Cat."),
    ("d4", "travel", "Ein Café in Köln, café au lait."),
]


@pytest.fixture()
def con():
    con = duckdb.connect(":memory:")
    for sql in MIGRATIONS[0][2]:
        con.execute(sql)
    for doc_id, source, text in DOCS:
        add_doc(con, doc_id=doc_id, source=source, text=text)
    return con


def test_whole_word_case_insensitive_counts(con):
    df = concept_counts(con, ["cat", "New York", "café", "dog", "a'); DROP TABLE documents; --"])
    got = {(r.concept, r.source): (r.count, r.n_docs) for r in df.itertuples()}
    # d1: cat, CAT, cat('s) -> 3 (not category, not bobcat); d2: concatenation -> 0
    assert got[("cat", "pets")] == (3, 1)
    assert got[("cat", "travel")] == (1, 1)
    assert got[("New York", "travel")] == (3, 1)  # "New York", "new-york", "NEW\nYORK"
    assert got[("New York", "pets")] == (0, 0)
    assert got[("café", "travel")] == (2, 1)
    assert got[("dog", "pets")] == (0, 0)  # "dogs" is another word
    assert got[("a'); DROP TABLE documents; --", "pets")][0] == 0
    assert con.execute("SELECT count(*) FROM documents").fetchall()[0][0] == 4
    assert set(df.columns) == {"concept", "source", "count", "n_docs", "source_docs"}


def test_rank_frequency_and_rare(con):
    df = concept_counts(con, ["cat", "new york", "zebra"])
    rf = rank_frequency(df)
    assert rf["concept"].tolist() == ["cat", "new york", "zebra"]
    assert rf["count"].tolist() == [4, 3, 0]
    assert rf["rank"].tolist() == [1, 2, 3]
    assert rf["share"].sum() == pytest.approx(1.0)
    assert rare_concepts(df) == ["zebra"]
    assert rare_concepts(df, max_count=3) == ["zebra", "new york"]


def test_fit_exact_line():
    counts = pd.DataFrame(
        {"concept": ["a", "b", "c", "d", "e"], "count": [10, 100, 1000, 10000, 0]}
    )
    acc = pd.DataFrame(
        {"concept": ["A", "b", "c", "d", "e", "zzz"], "accuracy": [0.3, 0.4, 0.5, 0.6, 0.1, 0.9]}
    )
    fit = fit_concept_accuracy(counts, acc, frequency="occurrences")
    assert fit.slope == pytest.approx(0.1)
    assert fit.intercept == pytest.approx(0.2)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.n == 4 and fit.excluded_zero == ["e"] and fit.unmatched == ["zzz"]


def test_fit_matches_numpy_on_noisy_data():
    rng = np.random.default_rng(0)
    freq = rng.integers(1, 10**6, size=50)
    acc = 0.05 * np.log10(freq) + 0.1 + rng.normal(0, 0.02, size=50)
    counts = pd.DataFrame({"concept": [f"c{i}" for i in range(50)], "count": freq})
    fit = fit_concept_accuracy(
        counts,
        pd.DataFrame({"concept": counts["concept"], "accuracy": acc}),
        frequency="occurrences",
    )
    slope, intercept = np.polyfit(np.log10(freq), acc, 1)
    r = np.corrcoef(np.log10(freq), acc)[0, 1]
    assert fit.slope == pytest.approx(slope)
    assert fit.intercept == pytest.approx(intercept)
    assert fit.r2 == pytest.approx(r**2)


def test_bad_inputs(tmp_path, con):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(ConceptError, match="empty.txt: no concepts"):
        read_concepts(empty)
    binary = tmp_path / "img.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ConceptError, match="img.png: not a text file"):
        read_concepts(binary)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("cat\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ConceptError, match="line 2: not UTF-8"):
        read_concepts(latin)
    good = tmp_path / "c.txt"
    good.write_text("cat\nCat\n\nnew york\n")
    assert read_concepts(good) == ["cat", "new york"]
    with pytest.raises(ConceptError, match="no concepts"):
        concept_counts(con, [])
    csv = tmp_path / "acc.csv"
    csv.write_text("concept,score\ncat,0.5\n")
    with pytest.raises(ConceptError, match="acc.csv: missing column.*accuracy"):
        read_accuracy_csv(csv)
    with pytest.raises(ConceptError, match="not a number"):
        fit_concept_accuracy(
            pd.DataFrame({"concept": ["a"], "count": [1]}),
            pd.DataFrame({"concept": ["a"], "accuracy": ["high"]}),
            frequency="occurrences",
        )
    with pytest.raises(ConceptError, match="frequency must be one of documents, occurrences"):
        fit_concept_accuracy(
            pd.DataFrame({"concept": ["a"], "count": [1]}),
            pd.DataFrame({"concept": ["a"], "accuracy": [0.5]}),
            frequency="tokens",
        )


def test_punctuation_belongs_to_the_concept():
    con = duckdb.connect(":memory:")
    for sql in MIGRATIONS[0][2]:
        con.execute(sql)
    texts = [
        ("p1", "code", "I write C++ and c++; also C, C# and plain c."),
        ("p2", "code", "Objective-C is not C++. The letter c."),
        ("p3", "code", "Node.js and node js; U.S. policy, us."),
    ]
    for doc_id, source, text in texts:
        add_doc(con, doc_id=doc_id, source=source, text=text)
    df = concept_counts(con, ["C++", "C#", "node.js", "U.S."]).set_index("concept")
    assert df.loc["C++", "count"] == 3 and df.loc["C++", "n_docs"] == 2  # not every "c"
    assert df.loc["C#", "count"] == 1
    assert df.loc["node.js", "count"] == 1  # not "node js"
    assert df.loc["U.S.", "count"] == 1  # not "us"


def test_fit_uses_documents_by_default_occurrences_as_option():
    # occurrences and documents rank the concepts differently, so the two fits differ
    counts = pd.DataFrame(
        {
            "concept": ["a", "b", "c", "d"],
            "count": [5000, 40, 900, 12],
            "n_docs": [10, 30, 700, 11],
        }
    )
    acc = pd.DataFrame({"concept": ["a", "b", "c", "d"], "accuracy": [0.3, 0.45, 0.8, 0.2]})
    fit = fit_concept_accuracy(counts, acc)
    assert fit.basis == "documents"
    slope, intercept = np.polyfit(np.log10(counts["n_docs"]), acc["accuracy"], 1)
    assert fit.slope == pytest.approx(slope) and fit.intercept == pytest.approx(intercept)
    assert fit.data["frequency"].tolist() == [10, 30, 700, 11]
    occ = fit_concept_accuracy(counts, acc, frequency="occurrences")
    slope2, _ = np.polyfit(np.log10(counts["count"]), acc["accuracy"], 1)
    assert occ.basis == "occurrences" and occ.slope == pytest.approx(slope2)
    assert abs(occ.slope - fit.slope) > 0.01


def test_default_rare_threshold_selects_the_long_tail(con):
    df = concept_counts(con, ["cat", "new york", "café", "dog"])  # counts 4, 3, 2, 0
    t = default_rare_threshold(df)
    rare = rare_concepts(df, max_count=t)
    assert rare and rare[0] == "dog"
    assert len(rare) <= len(df["concept"].unique()) // 2
    everywhere = concept_counts(con, ["cat", "new york", "café"])  # all occur: counts 4, 3, 2
    t = default_rare_threshold(everywhere)
    assert rare_concepts(everywhere, max_count=t) == ["café"]  # not empty by default
    assert default_rare_threshold(everywhere.iloc[0:0]) == 0

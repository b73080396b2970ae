"""13-gram contamination: found with the exact span; a 12-gram is not."""

from __future__ import annotations

import json

import duckdb
import pytest

from analytics.migrations import MIGRATIONS
from analytics.signals.contamination import (
    EvalFileError,
    build_eval_index,
    find_contamination,
    read_eval_texts,
)
from tests.conftest import add_doc

EVAL = [
    "Question: which planet in the solar system has the largest number of confirmed moons "
    "orbiting around it according to the latest survey? Answer: Saturn.",
    "Short eval item.",
]
WORDS = EVAL[0].split()
COPY13 = " ".join(WORDS[3:16])  # 13 consecutive words
COPY12 = " ".join(WORDS[3:15])


@pytest.fixture()
def con():
    con = duckdb.connect(":memory:")
    for sql in MIGRATIONS[0][2]:
        con.execute(sql)
    docs = [
        ("hit", "web", "Some unrelated intro text. " + COPY13.upper() + " and then more words."),
        ("miss12", "web", "Intro. " + COPY12 + " and then the text goes elsewhere entirely."),
        ("clean", "books", "A novel about gardens, bridges and the sea, with nothing copied."),
        ("hit2", "books", EVAL[0]),
    ]
    for doc_id, source, text in docs:
        add_doc(con, doc_id=doc_id, source=source, text=text)
    return con


def test_13gram_found_with_span_12gram_not(con):
    res = find_contamination(con, EVAL, n=13, batch_size=2)
    flagged = res.flagged.set_index("doc_id")
    assert set(flagged.index) == {"hit", "hit2"}
    text = "Some unrelated intro text. " + COPY13.upper() + " and then more words."
    start = text.index(COPY13.upper())
    # the copied 13 words end with "moons" (no trailing punctuation inside the span)
    assert flagged.loc["hit", "spans"] == [[start, start + len(COPY13)]]
    assert flagged.loc["hit", "n_matched_ngrams"] == 1
    assert flagged.loc["hit", "eval_ids"] == [0]
    # the whole eval text: every 13-gram matches, one merged span from first to last word
    words = len(EVAL[0].replace("?", " ").replace(":", " ").replace(".", " ").split())
    assert flagged.loc["hit2", "n_matched_ngrams"] == words - 13 + 1
    assert flagged.loc["hit2", "spans"] == [[0, len(EVAL[0]) - 1]]  # final "." excluded
    per = res.per_source.set_index("source")
    assert per.loc["web", "docs"] == 2 and per.loc["web", "flagged_docs"] == 1
    assert per.loc["books", "flagged_frac"] == pytest.approx(0.5)
    assert res.eval_too_short == 1 and res.eval_matched == [0]


def test_an_ngram_shared_by_several_eval_texts_counts_for_each(con):
    # 25 distinct items + a duplicate of item 0 (26 texts): the corpus copies every item's
    # 13 words, so all 26 evaluation texts are found, the duplicate included
    items = [f"item {k} " + " ".join(f"w{k}x{j}" for j in range(13)) for k in range(25)]
    evals = items + [items[0]]
    for k, text in enumerate(items):
        add_doc(con, doc_id=f"copy{k}", source="eval-copies", text="prefix words " + text)
    res = find_contamination(con, evals, n=13)
    assert len(res.eval_matched) == 26 and res.eval_matched == list(range(26))
    flagged = res.flagged.set_index("doc_id")
    assert flagged.loc["copy0", "eval_ids"] == [0, 25]
    assert flagged.loc["copy1", "eval_ids"] == [1]
    # an n-gram present in two different texts (a shared passage) names both
    shared = " ".join(WORDS[:14])
    idx = build_eval_index([shared + " one", "two " + shared], n=13)
    assert len(idx.hashes) == len(set(idx.hashes.tolist()))
    pos = [int(i) for i in range(len(idx.hashes)) if idx.owner_ptr[i + 1] - idx.owner_ptr[i] == 2]
    assert len(pos) == 2  # the two 13-grams of the shared 14 words
    assert idx.owners_of(pos) == [0, 1]


def test_n_is_configurable(con):
    res = find_contamination(con, EVAL, n=12)
    assert "miss12" in set(res.flagged["doc_id"])
    idx = build_eval_index(EVAL, n=50)
    assert len(idx.hashes) == 0 and idx.too_short == 2
    assert find_contamination(con, idx).flagged.empty


def test_eval_file_errors(tmp_path):
    jl = tmp_path / "eval.jsonl"
    jl.write_text(json.dumps({"text": "a b"}) + "\n" + json.dumps({"question": "c"}) + "\n")
    with pytest.raises(
        EvalFileError, match=r"eval.jsonl: line 2: no field 'text' \(has: question\)"
    ):
        read_eval_texts(jl)
    csv = tmp_path / "eval.csv"
    csv.write_text("question,answer\nwhat,that\n")
    with pytest.raises(EvalFileError, match="eval.csv: no column 'text'"):
        read_eval_texts(csv)
    assert read_eval_texts(csv, field="question") == ["what"]
    bad = tmp_path / "eval.jsonl.gz"
    bad.write_bytes(b"\x1f\x8b")
    with pytest.raises(EvalFileError, match="unsupported"):
        read_eval_texts(bad)
    with pytest.raises(EvalFileError, match="no such"):
        read_eval_texts(tmp_path / "missing.jsonl")


def contamination_ws(path):
    """A workspace of 60 documents, 3 of them copying an evaluation text."""
    from analytics.workspace import Workspace

    ws = Workspace.open(path, create=True)
    with ws.write(job="docs") as c:
        for i in range(60):
            text = f"document {i} about gardens and bridges " + "words " * (i % 7)
            if i in (5, 33, 58):
                text += " " + COPY13 + " tail"
            add_doc(c, doc_id=f"d{i:03d}", source=("web", "books", "code")[i % 3], text=text)
    return ws


def test_the_local_engine_finds_exactly_what_the_scan_finds(tmp_path):
    from analytics.signals.contamination import find_contamination_on_engine, result_to_dict

    ws = contamination_ws(tmp_path / "ws")
    ref = find_contamination(ws.cursor(), EVAL, n=13)
    lines = []
    got = find_contamination_on_engine(
        ws, EVAL, n=13, engine="local", workers=2, shard_size=7, on_line=lines.append
    )
    assert list(ref.flagged["doc_id"]) == ["d005", "d033", "d058"]
    assert result_to_dict(got) == result_to_dict(ref)
    assert lines[-1].startswith("contamination: shards 9/9, documents 60/60")

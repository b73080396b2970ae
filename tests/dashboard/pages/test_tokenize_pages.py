"""Budgets in a chosen tokenizer: Overview and Mixtures pages (by widget key) and
`mix create --tokenizer`, checked against counts computed here with plain Python."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import regex
from streamlit.testing.v1 import AppTest

from analytics.mixture import load_mixture
from analytics.tokenize import TokenizeError, documents_table, tokenize
from analytics.workspace import Workspace
from tests.conftest import mixscope
from tests.dashboard.conftest import APP

WORDS = regex.compile(r"[^\p{White_Space}]+")


def words_tokenizer(path: Path) -> Path:
    """A tokenizer whose count is the number of whitespace-separated words (WordLevel with an
    empty vocabulary: every word is one [UNK] token)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel(vocab={"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    path.mkdir(parents=True, exist_ok=True)
    tok.save(str(path / "tokenizer.json"))
    return path


@pytest.fixture
def words_ws(tmp_path, records, jsonl_file):
    ws_path = tmp_path / "ws"
    r = mixscope("ingest", str(jsonl_file), "--source", "web", ws=ws_path)
    assert r.returncode == 0, r.stderr
    ws = Workspace(ws_path)
    tokenize(ws, str(words_tokenizer(tmp_path / "words")), name="words", workers=1)
    expected = sum(len(WORDS.findall(r["text"])) for r in records)
    return ws, expected


def _page(ws, monkeypatch, page: str) -> AppTest:
    monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(ws.path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(f"app_pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _tokens_metric(at) -> str:
    return next(m for m in at.metric if m.label == "Tokens").help


def test_overview_counts_tokens_in_the_picked_tokenizer(words_ws, monkeypatch):
    ws, expected = words_ws
    ingest_total = int(ws.cursor().execute("SELECT sum(n_tokens) FROM documents").fetchone()[0])
    assert ingest_total != expected  # the two tokenizers really differ on this corpus
    at = _page(ws, monkeypatch, "overview")
    assert len(at.selectbox(key="ov_tok").options) == 2
    assert _tokens_metric(at) == f"{ingest_total:,} tokens"
    at.selectbox(key="ov_tok").set_value("words").run()
    assert not at.exception, [e.value for e in at.exception]
    assert _tokens_metric(at) == f"{expected:,} tokens"
    assert "words" in str(at.query_params["tok"])


def test_mixtures_page_budgets_in_the_picked_tokenizer(words_ws, monkeypatch):
    ws, expected = words_ws
    at = _page(ws, monkeypatch, "mixtures")
    at.selectbox(key="mx_tok").set_value("words").run()
    assert not at.exception, [e.value for e in at.exception]
    captions = " ".join(c.value for c in at.caption)
    assert f"{expected:,} tokens" in captions


def test_mix_create_with_a_tokenizer_records_it(words_ws, tmp_path):
    ws, expected = words_ws
    out = tmp_path / "m.json"
    r = mixscope("mix", "create", "w", "--group-by", "source", "--budget", "1000",
                 "--tokenizer", "words", "--out", str(out), ws=ws.path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    man = json.loads(out.read_text())
    tok = json.loads(mixscope("info", "--json", ws=ws.path).stdout)["tokenizers"][1]
    assert man["tokenizer"]["sha256"] == tok["sha256"] and man["tokenizer"]["name"].startswith(
        "words ("
    )
    saved = load_mixture(ws.cursor(), "w")
    group = saved.phases[0].groups[0]
    assert group.tokens == expected  # available tokens of the one source, in words
    assert "documents_tok_words" in group.selection.sql
    # reproduced and materialised with the same counts
    r = mixscope("mix", "reproduce", "w", ws=ws.path)
    assert r.returncode == 0, r.stderr
    r = mixscope("mix", "materialize", "w", "--out", str(tmp_path / "mat"), ws=ws.path)
    assert r.returncode == 0, r.stderr
    rows = [
        json.loads(line)
        for f in sorted((tmp_path / "mat").rglob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    assert rows and all(x["n_tokens"] == len(WORDS.findall(x["text"])) for x in rows)
    r = mixscope("mix", "create", "x", "--group-by", "source", "--budget", "1000",
                 "--tokenizer", "nope", ws=ws.path)  # fmt: skip
    assert r.returncode == 2 and "no such tokenizer" in r.stderr and "words" in r.stderr


def test_incomplete_counts_are_refused_for_budgets(words_ws):
    ws, _ = words_ws
    with ws.write(job="drop one") as con:
        con.execute(
            "DELETE FROM token_counts WHERE doc_id = (SELECT min(doc_id) FROM token_counts)"
        )
    with pytest.raises(TokenizeError, match="1 of 4 documents have no count"):
        documents_table(ws.cursor(), "words")


@pytest.mark.slow
def test_add_a_tokenizer_from_the_overview_page(words_ws, tmp_path, monkeypatch):
    import time

    from analytics.jobs import JobStore
    from analytics.tokenize import list_tokenizers

    ws, expected = words_ws
    at = _page(ws, monkeypatch, "overview")
    at.text_input(key="ov_add_tok_src").set_value(str(tmp_path / "words")).run()
    at.text_input(key="ov_add_tok_name").set_value("bad name").run()
    assert any("--name" in e.value for e in at.error)
    at.text_input(key="ov_add_tok_name").set_value("words2").run()
    want = f"mixscope tokenize --tokenizer {tmp_path / 'words'} --name words2"
    assert any(c.value == want for c in at.code)
    at.button(key="ov_add_tok_go").click().run()
    assert not at.exception and "Queued job" in at.success[0].value
    store = JobStore(ws.path)
    job_id = next(j.id for j in store.list() if j.kind == "tokenize" and "words2" in j.args)
    for _ in range(900):
        job = store.get(job_id)
        if job.status in ("done", "failed"):
            break
        time.sleep(0.2)
    assert job.status == "done", store.log(job.id)
    assert "shards 1/1, documents 4/4" in job.progress["stage"]
    toks = {t["name"]: t for t in list_tokenizers(ws.cursor())}
    assert toks["words2"]["tokens"] == expected


def test_explore_counts_tokens_in_the_picked_tokenizer(words_ws, monkeypatch):
    ws, expected = words_ws
    at = _page(ws, monkeypatch, "explore")
    at.selectbox(key="ex_tok").set_value("words").run()
    assert not at.exception, [e.value for e in at.exception]
    assert _tokens_metric(at) == f"{expected:,} tokens"
    assert any("100.0% of the corpus's tokens" in c.value for c in at.caption)


def test_signals_page_impact_in_the_picked_tokenizer(words_ws, monkeypatch):
    from analytics.signals.engine_run import run_signals_engine

    ws, expected = words_ws
    run_signals_engine(ws, ["gopher_quality"], workers=1)
    at = _page(ws, monkeypatch, "signals")
    filters = at.multiselect(key="sg_filters")
    if not filters.value:
        filters.set_value([filters.options[0]]).run()
    at.selectbox(key="sg_tok").set_value("words").run()
    assert not at.exception, [e.value for e in at.exception]
    impact = next(d.value for d in at.dataframe if "tokens_removed" in d.value.columns)
    total = impact[impact["source"] == "(all sources)"]
    assert set(total["tokens"]) == {expected}

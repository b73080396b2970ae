"""`mixscope tokenize` end to end, as a user runs it (subprocesses)."""

from __future__ import annotations

import json

from analytics.jobs import JobStore
from analytics.tokenizer import TokenCounter
from analytics.workspace import Workspace
from tests.conftest import _free_port, fingerprint, mixscope


def _ws(tmp_path, jsonl_file):
    ws = tmp_path / "ws"
    r = mixscope("ingest", str(jsonl_file), "--source", "web", ws=ws)
    assert r.returncode == 0, r.stderr
    return ws


def test_tokenize_a_gguf_tokenizer_and_list_it(tmp_path, jsonl_file, records, smollm2_gguf):
    ws = _ws(tmp_path, jsonl_file)
    r = mixscope("tokenize", "--tokenizer", str(smollm2_gguf), "--name", "smollm2",
                 "--workers", "2", "--shard-size", "3", ws=ws)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "smollm2: 4 documents counted in 2 shards" in r.stdout
    assert "shards 2/2, documents 4/4" in r.stderr and "docs/s, ETA" in r.stderr
    expected = TokenCounter(str(smollm2_gguf)).count_full([x["text"] for x in records])
    info = json.loads(mixscope("info", "--json", ws=ws).stdout)
    toks = {t["name"]: t for t in info["tokenizers"]}
    assert set(toks) == {"ingest", "smollm2"}
    assert toks["smollm2"]["tokens"] == int(expected.sum()) and toks["smollm2"]["documents"] == 4
    assert toks["smollm2"]["source"] == str(smollm2_gguf.resolve())
    assert len(toks["smollm2"]["sha256"]) == 64
    assert toks["ingest"]["tokens"] == int(info["totals"]["tokens"])
    # the terminal run is on the Jobs page with the engine's last progress line
    jobs = [j for j in JobStore(ws).list() if j.kind == "tokenize"]
    assert jobs and jobs[0].status == "done" and "shards 2/2" in jobs[0].progress["stage"]
    # a rerun resumes: nothing left to count
    r = mixscope("tokenize", "--tokenizer", str(smollm2_gguf), "--name", "smollm2", ws=ws)
    assert r.returncode == 0 and "0 documents counted in 0 shards (4 already counted)" in r.stdout


def test_bad_tokenizer_path_is_one_line_and_writes_nothing(tmp_path, jsonl_file):
    ws = _ws(tmp_path, jsonl_file)
    before = fingerprint(Workspace(ws))
    jobs_before = len(JobStore(ws).list())
    (tmp_path / "notatok").mkdir()
    (tmp_path / "bad.json").write_text("{ not json")
    for src in (tmp_path / "missing.gguf", tmp_path / "notatok", tmp_path / "bad.json"):
        r = mixscope("tokenize", "--tokenizer", str(src), ws=ws)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and str(src.name) in lines[0]
        assert "expected" in lines[0] or "not a readable" in lines[0]
    dead = f"127.0.0.1:{_free_port()}"
    r = mixscope("tokenize", "--tokenizer", "sentence-transformers/all-MiniLM-L6-v2",
                 "--engine", "ray", "--ray-address", dead, ws=ws)  # fmt: skip
    assert r.returncode == 2 and "no Ray cluster answers" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = mixscope("tokenize", "--tokenizer", "sentence-transformers/all-MiniLM-L6-v2",
                 "--name", "bad name!", ws=ws)  # fmt: skip
    assert r.returncode == 2 and "--name" in r.stderr
    assert fingerprint(Workspace(ws)) == before
    assert len(JobStore(ws).list()) == jobs_before  # refused commands leave no job record


def test_signals_run_on_the_engine(tmp_path, jsonl_file, records):
    ws = _ws(tmp_path, jsonl_file)
    r = mixscope("signals", "run", "--only", "compression", "--engine", "spark", ws=ws)
    assert r.returncode == 2 and "expected one of in-process, local, ray" in r.stderr
    r = mixscope("signals", "run", "--only", "compression", "--engine", "local",
                 "--workers", "2", "--shard-size", "2", ws=ws)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "scored 4 documents in 2 shards" in r.stderr.replace("\n", " ")
    rows = dict(
        Workspace(ws)
        .cursor()
        .execute("SELECT doc_id, raw_bytes FROM signal_compression")
        .fetchall()
    )
    assert rows == {x["id"]: len(x["text"].encode()) for x in records}

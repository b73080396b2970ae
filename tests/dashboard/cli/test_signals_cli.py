"""`mixscope signals run|list`, `contamination` and `concepts` as a user runs them."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import fingerprint
from tests.workspaces.signals import copy_of, small_unscored_path


@pytest.fixture
def unscored_ws_copy(tmp_path_factory, tmp_path):
    return copy_of(small_unscored_path(tmp_path_factory), tmp_path / "ws")


ROOT_ARGS = [sys.executable, "-m", "dashboard.cli"]
# Runs the real CLI, but SIGKILLs the process right after its first checkpoint is published.
KILL_AFTER_FIRST_CHECKPOINT = textwrap.dedent(
    """
    import os, signal, sys
    from analytics.workspace import Workspace
    original = Workspace.checkpoint
    def checkpoint_then_die(self, con):
        original(self, con)
        os.kill(os.getpid(), signal.SIGKILL)
    Workspace.checkpoint = checkpoint_then_die
    from dashboard.cli import main
    sys.argv = ["mixscope", *sys.argv[1:]]
    main()
    """
)


def mixscope(*args, ws=None):
    cmd = [*ROOT_ARGS, *map(str, args)]
    if ws is not None:
        cmd += ["--workspace", str(ws)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(ws, sql):
    return ws.cursor().execute(sql).fetchall()


@pytest.mark.slow
def test_run_is_resumable_after_sigkill(unscored_ws_copy):
    ws = unscored_ws_copy
    n = rows(ws, "SELECT count(*) FROM documents")[0][0]
    args = ["signals", "run", "--only", "compression", "--only", "exact_dup", "--batch-size",
            "20", "--checkpoint-every", "60", "--engine", "in-process",
            "--workspace", str(ws.path)]  # fmt: skip
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_FIRST_CHECKPOINT, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr
    # the first chunk was published before the kill; nothing after it
    assert rows(ws, "SELECT count(*) FROM signal_compression")[0][0] == 60
    assert rows(ws, "SELECT count(*) FROM signal_exact_dup_sketch")[0][0] == 60
    again = mixscope(*args)
    assert again.returncode == 0, again.stderr
    assert f"{n - 60:,} documents to score" in again.stderr
    for table in ("signal_compression", "signal_exact_dup_sketch", "signal_exact_dup"):
        total, distinct = rows(ws, f"SELECT count(*), count(DISTINCT doc_id) FROM {table}")[0]
        assert total == distinct == n, table
    # the global pass ran over every document: the synthetic a and c are one exact cluster
    reps = dict(
        rows(ws, "SELECT doc_id, exact_dup_rep FROM signal_exact_dup WHERE doc_id LIKE 'syn/%'")
    )
    assert reps == {"syn/a": "syn/a", "syn/b": "syn/b", "syn/c": "syn/a"}
    nothing = mixscope(*args)
    assert nothing.returncode == 0 and "0 documents to score" in nothing.stderr
    listed = json.loads(mixscope("signals", "list", "--json", ws=ws.path).stdout)
    by_name = {r["name"]: r for r in listed if r["is_default"]}
    assert by_name["compression"]["n_docs"] == n and by_name["compression"]["coverage"] == 1.0
    assert by_name["toxicity"]["n_docs"] == 0


@pytest.mark.slow
def test_params_make_a_new_version(unscored_ws_copy):
    ws = unscored_ws_copy
    r = mixscope(
        "signals", "run", "--only", "compression", "--param", "compression.level=1", ws=ws.path
    )
    assert r.returncode == 0, r.stderr
    r = mixscope("signals", "run", "--only", "compression", ws=ws.path)
    assert r.returncode == 0, r.stderr
    versions = rows(ws, "SELECT DISTINCT version FROM signal_compression")
    assert len(versions) == 2
    out = mixscope("signals", "list", ws=ws.path).stdout
    assert "(custom)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["signals", "run", "--only", "nope"], "unknown signal name(s) 'nope'"),
        (["signals", "run", "--param", "compression.level"], "expected NAME.KEY=VALUE"),
        (["signals", "run", "--param", "compression.speed=3"], "unknown parameter(s) speed"),
        (["signals", "run", "--param", "nope.x=1"], "unknown signal name(s) 'nope'"),
    ],
)
def test_bad_signal_arguments_write_nothing(unscored_ws_copy, args, message):
    ws = unscored_ws_copy
    before = fingerprint(ws)
    r = mixscope(*args, ws=ws.path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], r.stderr
    assert fingerprint(ws) == before


def test_contamination_finds_a_copied_13_gram(signals_ws, tmp_path):
    doc_id, text = rows(
        signals_ws,
        "SELECT doc_id, text FROM documents "
        "JOIN document_text USING (doc_id) WHERE source = 'python-doc' "
        "AND len(string_split(text, ' ')) > 60 ORDER BY doc_id LIMIT 1",
    )[0]
    words = text.split()
    copied = " ".join(words[20:36])  # 16 words: contains 13-grams
    evals = tmp_path / "eval.jsonl"
    evals.write_text(
        json.dumps({"question": "unrelated words that appear nowhere at all"}) + "\n"
        + json.dumps({"question": f"Q: {copied}?"}) + "\n"
    )  # fmt: skip
    out, report = tmp_path / "flagged.txt", tmp_path / "report.json"
    r = mixscope("contamination", evals, "--text-field", "question", "--out", out,
                 "--report", report, ws=signals_ws.path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    ids = out.read_text().split()
    assert doc_id in ids
    rep = json.loads(report.read_text())
    assert rep["eval_texts"] == 2 and rep["eval_matched"] == [1] and rep["n"] == 13
    hit = next(f for f in rep["flagged"] if f["doc_id"] == doc_id)
    norm = lambda s: re.sub(r"\W+", " ", s).strip().lower()  # noqa: E731
    spans = [norm(text[s:e]) for s, e in hit["spans"]]
    assert any(norm(copied) in s or s in norm(copied) for s in spans)
    per = {p["source"]: p["flagged_docs"] for p in rep["per_source"]}
    assert per["python-doc"] >= 1 and sum(per.values()) == len(ids)


def test_contamination_job_reports_shards_documents_rate_and_eta(signals_ws_copy, tmp_path):
    """A contamination scan on the engine is a job whose progress record (the Jobs page's
    row) has shards and documents done/total, docs/s and an ETA, like every engine job."""
    from analytics.engine import progress_columns
    from analytics.jobs import JobStore

    ws = signals_ws_copy
    n = rows(ws, "SELECT count(*) FROM documents")[0][0]
    evals = tmp_path / "eval.jsonl"
    evals.write_text(json.dumps({"text": " ".join(f"zq{i}x" for i in range(20))}) + "\n")
    r = mixscope("contamination", evals, "--shard-size", "40", "--workers", "2", ws=ws.path)
    assert r.returncode == 0, r.stderr
    shards = -(-n // 40)
    assert f"contamination: shards {shards}/{shards}, documents {n:,}/{n:,}" in r.stderr
    (job,) = [j for j in JobStore(ws.path).list() if j.kind == "contamination"]
    rec = job.progress
    assert job.status == "done" and shards > 1
    assert (rec["shards_done"], rec["shards_total"]) == (shards, shards)
    assert (rec["done"], rec["total"], rec["unit"]) == (n, n, "documents")
    assert rec["docs_per_s"] > 0 and rec["eta_s"] == 0
    assert rec["stage"].startswith(f"contamination: shards {shards}/{shards}, documents")
    assert progress_columns(rec)["shards"] == f"{shards}/{shards}"
    assert progress_columns(rec)["ETA"] == "0s"
    assert progress_columns({"stage": "insert", "done": 1, "total": 2})["shards"] is None


def test_contamination_bad_eval_file(signals_ws, tmp_path):
    evals = tmp_path / "eval.jsonl"
    evals.write_text(json.dumps({"question": "x"}) + "\n")
    out = tmp_path / "flagged.txt"
    r = mixscope("contamination", evals, "--out", out, ws=signals_ws.path)
    assert r.returncode == 2
    assert r.stderr.startswith("error:") and "line 1: no field 'text'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_concepts_counts_and_fit(signals_ws, tmp_path):
    concepts = tmp_path / "concepts.txt"
    concepts.write_text("Python\nfunction\nthe\nzzqxv\n\n")
    acc = tmp_path / "acc.csv"
    acc.write_text("concept,accuracy\npython,0.5\nfunction,0.6\nthe,0.9\nzzqxv,0.1\n")
    out = tmp_path / "counts.csv"
    r = mixscope("concepts", concepts, "--accuracy", acc, "--out", out, ws=signals_ws.path)
    assert r.returncode == 0, r.stderr
    import numpy as np
    import pandas as pd

    counts = pd.read_csv(out)
    docs = rows(signals_ws, "SELECT source, text FROM documents JOIN document_text USING (doc_id)")
    expect: dict[str, int] = {}
    for _src, text in docs:  # independent whole-word, case-insensitive count
        expect["Python"] = expect.get("Python", 0) + len(
            re.findall(r"(?<![^\W_])python(?![^\W_])", text, re.I)
        )
    assert counts[counts["concept"] == "Python"]["count"].sum() == expect["Python"]
    totals = counts.groupby("concept")["count"].sum()
    assert totals["zzqxv"] == 0
    text_out = " ".join(r.stdout.split() + r.stderr.split())
    assert "1 of 4 concepts never occur" in text_out
    # the fit's frequency is documents containing the concept, by default
    ndocs = counts.groupby("concept")["n_docs"].sum()
    x = np.log10([ndocs["Python"], ndocs["function"], ndocs["the"]])
    slope, _ = np.polyfit(x, [0.5, 0.6, 0.9], 1)
    assert f"{slope:.4f}" in text_out and "frequency = documents" in text_out
    r = mixscope(
        "concepts", concepts, "--accuracy", acc, "--frequency", "occurrences", ws=signals_ws.path
    )
    x = np.log10([totals["Python"], totals["function"], totals["the"]])
    slope, _ = np.polyfit(x, [0.5, 0.6, 0.9], 1)
    assert f"{slope:.4f}" in " ".join(r.stdout.split()) and "frequency = occurrences" in r.stdout
    r = mixscope("concepts", concepts, "--frequency", "tokens", ws=signals_ws.path)
    assert r.returncode == 2 and "frequency must be one of documents, occurrences" in r.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no concepts"),
        (b"\x00\x01binary\x00", "not a text file"),
        (b"\xff\xfe\xfa", "not UTF-8"),
    ],
)
def test_concepts_bad_file(signals_ws, tmp_path, content, message):
    f = tmp_path / "concepts.txt"
    f.write_bytes(content)
    r = mixscope("concepts", f, ws=signals_ws.path)
    assert r.returncode == 2 and r.stderr.startswith("error:") and message in r.stderr
    assert "Traceback" not in r.stderr

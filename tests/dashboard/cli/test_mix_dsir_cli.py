"""`mixscope mix create NAME --strategy dsir --target FILE --budget TOKENS` end to end:
the manifest records the target's hash, seed and buckets; reproduce re-runs DSIR from the
target and materialize writes exactly the recorded documents; bad input is one line, exit 2,
nothing saved."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from tests.conftest import mixscope

SOURCES = "python-doc,fortunes-en,austen"


def _target(tmp_path, ws):
    rows = (
        ws.cursor()
        .execute(
            "SELECT text FROM documents JOIN document_text USING (doc_id) "
            "WHERE source = 'python-doc' ORDER BY doc_id LIMIT 25"
        )
        .fetchall()
    )
    path = tmp_path / "target.jsonl"
    path.write_text("".join(json.dumps({"text": r[0]}) + "\n" for r in rows))
    return path


def _one_line_error(r):
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    return r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:")


def test_dsir_create_reproduce_materialize(demo_workspace_copy, tmp_path):
    ws = demo_workspace_copy
    target = _target(tmp_path, ws)
    r = mixscope(
        "mix", "create", "py-like", "--strategy", "dsir", "--target", str(target),
        "--budget", "60000", "--seed", "11", "--where-from-url", f"src={SOURCES}", ws=ws.path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "saved mixture py-like@1" in r.stderr.replace("\n", " ")
    m = json.loads(mixscope("mix", "show", "py-like@1", "--format", "json", ws=ws.path).stdout)
    (phase,) = m["phases"]
    (g,) = phase["groups"]
    p = g["method"]["params"]
    assert g["method"]["name"] == "dsir" and m["seed"] == 11 and p["seed"] == 11
    assert p["target"]["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert p["buckets"] == 10_000 and p["ngrams"] == 2 and p["min_words"] == 100
    ids = g["selection"]["params"][0]
    assert len(ids) == g["documents"] and g["epochs"] == 1.0

    # independent checks with plain SQL: the budget is met with less than one document over,
    # every selected document is from the filter and has >= 100 WordPunct words
    sel = (
        ws.cursor()
        .execute(
            "SELECT doc_id, source, n_tokens, text FROM documents JOIN document_text "
            "USING (doc_id) WHERE doc_id IN (SELECT unnest(?::VARCHAR[]))",
            [ids],
        )
        .df()
    )
    assert len(sel) == len(ids) and set(sel["source"]) <= set(SOURCES.split(","))
    assert sel["n_tokens"].sum() == g["tokens"] == phase["budget_tokens"] >= 60_000
    assert sel["n_tokens"].sum() - sel["n_tokens"].max() < 60_000
    words = sel["text"].map(lambda t: len(re.findall(r"\w+|[^\w\s]+", t.lower())))
    assert (words >= 100).all()
    # DSIR leans to the target's source: more python-doc than its share of the pool
    pool = (
        ws.cursor()
        .execute(
            "SELECT source, sum(n_tokens) FROM documents WHERE source IN "
            "('python-doc','fortunes-en','austen') GROUP BY 1"
        )
        .fetchall()
    )
    pool = dict(pool)
    share = sel.loc[sel.source == "python-doc", "n_tokens"].sum() / sel["n_tokens"].sum()
    assert share > pool["python-doc"] / sum(pool.values())

    r = mixscope("mix", "reproduce", "py-like@1", ws=ws.path)
    assert r.returncode == 0, r.stderr
    assert f"the same {len(ids):,} documents" in r.stderr.replace("\n", " ")

    out = tmp_path / "mat"
    r = mixscope("mix", "materialize", "py-like@1", "--out", str(out), ws=ws.path)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for f in sorted(out.rglob("*.jsonl")) for x in f.read_text().splitlines()]
    assert sorted(x["doc_id"] for x in rows) == sorted(ids)  # each exactly once

    # the target file changes: reproduce says so (exit 2); an override path is accepted
    moved = tmp_path / "moved.jsonl"
    moved.write_bytes(target.read_bytes())
    target.write_text(json.dumps({"text": "something else entirely"}) + "\n")
    r = mixscope("mix", "reproduce", "py-like@1", ws=ws.path)
    assert r.returncode == 2 and "target file" in r.stderr and "changed" in r.stderr
    r = mixscope("mix", "reproduce", "py-like@1", "--target", str(moved), ws=ws.path)
    assert r.returncode == 0, r.stderr

    # appended as a phase after another mixture's phases
    r = mixscope(
        "mix", "create", "base", "--group-by", "source", "--budget", "50000",
        "--where-from-url", f"src={SOURCES}", ws=ws.path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = mixscope(
        "mix", "create", "two-phase", "--strategy", "dsir", "--target", str(moved),
        "--budget", "20000", "--append-to", "base@1", "--phase-name", "anneal",
        "--where-from-url", f"src={SOURCES}", ws=ws.path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    m2 = json.loads(mixscope("mix", "show", "two-phase", "--format", "json", ws=ws.path).stdout)
    assert [p["name"] for p in m2["phases"]] == ["main", "anneal"]
    assert m2["phases"][1]["groups"][0]["method"]["name"] == "dsir"
    assert mixscope("mix", "reproduce", "two-phase", ws=ws.path).returncode == 0

    # ... or as one more group of base's phase, taking 25% of its budget
    r = mixscope(
        "mix", "create", "in-group", "--strategy", "dsir", "--target", str(moved),
        "--budget", "20000", "--append-to", "base@1", "--into-phase", "main",
        "--dsir-weight", "0.25", "--where-from-url", f"src={SOURCES}", ws=ws.path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    base = json.loads(mixscope("mix", "show", "base@1", "--format", "json", ws=ws.path).stdout)
    m3 = json.loads(mixscope("mix", "show", "in-group", "--format", "json", ws=ws.path).stdout)
    (ph3,) = m3["phases"]
    got = {g["id"]: g for g in ph3["groups"]}
    dsir_id = next(k for k, g in got.items() if g["method"]["name"] == "dsir")
    assert got[dsir_id]["weight"] == pytest.approx(0.25)
    for g in base["phases"][0]["groups"]:
        assert got[g["id"]]["weight"] == pytest.approx(0.75 * g["weight"])
    assert sum(g["target_tokens"] for g in got.values()) == ph3["budget_tokens"] == 50_000
    r = mixscope("mix", "reproduce", "in-group", ws=ws.path)
    assert r.returncode == 0 and "re-selected" in r.stderr, r.stderr


def test_dsir_bad_input_is_one_line_exit_2(demo_workspace_copy, tmp_path):
    ws = demo_workspace_copy
    target = _target(tmp_path, ws)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n")
    cases = [
        (["--target", str(empty), "--budget", "1000"], "empty"),
        (["--target", str(tmp_path / "nope.txt"), "--budget", "1000"], "no such target"),
        (["--budget", "1000"], "--target"),
        (["--target", str(target), "--budget", str(10**13)], "more than"),
        (["--target", str(target), "--budget", "1000", "--group-by", "source"], "--group-by"),
        (["--target", str(target), "--budget", "1000", "--append-to", "nope@3"], "nope"),
        (["--target", str(target), "--budget", "1000", "--min-words", "-1"], "min_words"),
    ]
    for extra, msg in cases:
        r = mixscope("mix", "create", "bad", "--strategy", "dsir", *extra, ws=ws.path)
        assert _one_line_error(r), (extra, r.returncode, r.stderr)
        assert msg in r.stderr, (extra, r.stderr)
    listed = json.loads(mixscope("mix", "list", "--json", ws=ws.path).stdout)
    assert not [x for x in listed if x["name"] == "bad"]


def test_dsir_from_the_mixtures_page_runs_as_a_job(demo_workspace_copy, tmp_path, monkeypatch):
    import time

    from analytics.jobs import JobStore
    from analytics.mixture import load_mixture
    from tests.dashboard.conftest import open_mixtures as open_page

    ws = demo_workspace_copy
    target = _target(tmp_path, ws)
    at = open_page(ws.path, monkeypatch, src=SOURCES)
    at.text_input(key="mx_dsir_path").input(str(target)).run()
    at.text_input(key="mx_dsir_name").input("page-dsir").run()
    at.number_input(key="mx_dsir_budget").set_value(30_000).run()
    at.number_input(key="mx_dsir_seed").set_value(5).run()
    at.button(key="mx_dsir_go").click().run()
    assert not at.exception and "Queued job" in at.success[-1].value
    store = JobStore(ws.path)
    for _ in range(900):
        job = store.list()[0]
        if job.status in ("done", "failed"):
            break
        time.sleep(0.2)
    assert job.status == "done", store.log(job.id)
    assert job.args[:5] == ["mix", "create", "page-dsir", "--strategy", "dsir"]
    m = load_mixture(ws.cursor(), "page-dsir", 1)
    p = m.phases[0].groups[0].method.params
    assert p["seed"] == 5 and p["requested_budget"] == 30_000
    assert p["filter"] == {"src": SOURCES}
    assert p["target"]["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()

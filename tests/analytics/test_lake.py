"""The lakehouse contract: metadata only in the workspace, text read where the corpus lives,
changed files detected, rollups exact, manifests pinned to a snapshot."""

from __future__ import annotations

import json
import os

import duckdb
import pandas as pd
import pytest

from analytics import overview
from analytics.errors import IngestError
from analytics.filters import DocFilter
from analytics.ingest import ingest
from analytics.text import TextSourceChanged, fetch_texts, text_sql
from analytics.workspace import Workspace

DOCS = [
    {"id": f"d{i}", "text": f"document number {i} " + "word " * i, "source_hint": i % 3}
    for i in range(30)
]


def write(tmp_path, fmt: str):
    df = pd.DataFrame(DOCS)
    path = tmp_path / f"docs.{fmt}"
    con = duckdb.connect()
    con.register("df", df)
    opts = {"jsonl": "FORMAT json", "csv": "FORMAT csv, HEADER", "parquet": "FORMAT parquet"}
    con.execute(f"COPY df TO '{path}' ({opts[fmt]})")
    return path


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
@pytest.mark.parametrize("copy", [False, True])
def test_text_is_read_back_where_it_lives(tmp_path, fmt, copy):
    path = write(tmp_path, fmt)
    ws = Workspace(tmp_path / "ws")
    rep = ingest(ws, [str(path)], source="s", copy_text=copy)
    assert rep.n_added == 30
    cur = ws.cursor()
    stored = cur.execute("SELECT count(*) FROM texts").fetchone()[0]
    assert stored == (30 if copy else 0)  # without --copy-text no text is in the workspace
    got = fetch_texts(cur, ["d3", "d17", "nope"])
    assert got == {"d3": DOCS[3]["text"], "d17": DOCS[17]["text"]}
    every = dict(cur.execute(f"SELECT doc_id, text FROM {text_sql(cur)}").fetchall())
    assert every == {d["id"]: d["text"] for d in DOCS}
    # the view that jobs read sees the same
    assert cur.execute("SELECT count(*) FROM document_text").fetchone()[0] == 30


def test_content_hash_ids_find_their_text_in_jsonl(tmp_path):
    path = tmp_path / "noid.jsonl"
    path.write_text("".join(json.dumps({"text": d["text"]}) + "\n" for d in DOCS[:5]))
    ws = Workspace(tmp_path / "ws")
    ingest(ws, [str(path)], source="s")
    cur = ws.cursor()
    ids = [r[0] for r in cur.execute("SELECT doc_id FROM documents ORDER BY doc_id").fetchall()]
    assert all(i.startswith("sha256:") for i in ids)
    assert sorted(fetch_texts(cur, ids).values()) == sorted(d["text"] for d in DOCS[:5])


def test_a_changed_file_is_reported_not_misread(tmp_path):
    path = write(tmp_path, "parquet")
    ws = Workspace(tmp_path / "ws")
    ingest(ws, [str(path)], source="s")
    df = pd.DataFrame(DOCS[::-1])  # same rows, other order: row locators would now lie
    df["text"] = df["text"] + "!"
    df.to_parquet(path)
    with pytest.raises(TextSourceChanged, match="changed since it was registered"):
        fetch_texts(ws.cursor(), ["d3"])


def test_metadata_only_workspace_is_small(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghij klmnopqrstuvwxyz"))
    texts = ["".join(rng.choice(letters, 4000)) for _ in range(2000)]
    big = pd.DataFrame({"id": [f"b{i}" for i in range(2000)], "text": texts})
    path = tmp_path / "big.parquet"
    big.to_parquet(path, compression="none")
    ws = Workspace(tmp_path / "ws")
    ingest(ws, [str(path)], source="s")
    size = sum(f.stat().st_size for f in (tmp_path / "ws").rglob("*") if f.is_file())
    assert size < 0.1 * path.stat().st_size


def test_rollups_equal_the_documents_scan(demo_workspace):
    cur = demo_workspace.cursor()
    for flt in (DocFilter(), DocFilter(source=("austen", "foldoc")), DocFilter(lang=("de",))):
        assert overview.facet_only(flt)
        fast = overview.composition(cur, flt, by=("source", "lang"))
        where, params = flt.where()
        slow = cur.execute(
            f"""SELECT COALESCE(source, '(none)') AS source, COALESCE(lang, '(none)') AS lang,
                       count(*) AS documents, sum(n_tokens) AS tokens, sum(n_bytes) AS bytes
                FROM documents WHERE {where} GROUP BY ALL ORDER BY tokens DESC, source, lang""",
            params,
        ).df()
        pd.testing.assert_frame_equal(
            fast.reset_index(drop=True), slow.reset_index(drop=True), check_dtype=False
        )
        t = overview.totals(cur, flt)
        assert int(t["documents"]) == int(slow["documents"].sum())
        assert int(t["tokens"]) == int(slow["tokens"].sum())


def test_missing_and_bad_inputs_name_the_uri(tmp_path):
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(IngestError, match="no such file"):
        ingest(ws, [str(tmp_path / "absent.parquet")], source="s")
    with pytest.raises(IngestError, match="matches no file"):
        ingest(ws, [str(tmp_path / "*.parquet")], source="s")


def test_workspace_is_relocatable(tmp_path):
    path = write(tmp_path, "parquet")
    ws = Workspace(tmp_path / "a")
    ingest(ws, [str(path)], source="s", copy_text=True)
    os.rename(tmp_path / "a", tmp_path / "b")
    moved = Workspace.open(tmp_path / "b")
    assert fetch_texts(moved.cursor(), ["d1"]) == {"d1": DOCS[1]["text"]}


def test_table_exists_sees_lake_tables_not_temp_ones_and_keeps_the_transaction(tmp_path):
    from analytics.db import table_exists

    ws = Workspace.open(tmp_path / "ws", create=True)
    with ws.write(job="t") as con:
        assert table_exists(con, "documents")
        assert not table_exists(con, "no_such_table")
        assert not table_exists(con, 'odd"name')
        con.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS x")
        assert not table_exists(con, "scratch")  # temporary tables do not count
        con.execute("CREATE TABLE kept AS SELECT 1 AS x")  # the failed probes did not abort
    cur = ws.cursor()
    assert table_exists(cur, "kept") and not table_exists(cur, "scratch")


@pytest.mark.parametrize("other", ["ingest", "manual"])
def test_ids_committed_while_an_ingest_prepares_are_not_added_twice(tmp_path, monkeypatch, other):
    """Ingest prepares its rows before taking the lock; ids that another writer commits in
    between (another ingest, or rows of no ingest) are left out, rollups stay exact."""
    import contextlib

    from tests.conftest import add_doc

    def jsonl(name, ids):
        p = tmp_path / name
        p.write_text("".join(json.dumps({"id": f"d{i}", "text": f"text {i}"}) + "\n" for i in ids))
        return str(p)

    a, b = jsonl("a.jsonl", range(10)), jsonl("b.jsonl", range(5, 15))
    ws = Workspace(tmp_path / "ws")
    ws.initialise()
    orig = Workspace.write
    raced = []

    @contextlib.contextmanager
    def racing(self, **kw):
        if kw.get("job") == "ingest" and not raced:
            raced.append(True)
            if other == "ingest":
                ingest(Workspace(self.path), [b], source="s")  # commits d5..d14 first
            else:
                with orig(Workspace(self.path), job="other") as con:
                    add_doc(con, doc_id="d0", source="manual")  # a row of no ingest
        with orig(self, **kw) as con:
            yield con

    monkeypatch.setattr(Workspace, "write", racing)
    rep = ingest(ws, [a], source="s")
    assert raced
    assert rep.n_added == (5 if other == "ingest" else 9)
    cur = Workspace(ws.path).cursor()
    n = 15 if other == "ingest" else 10
    assert cur.execute("SELECT count(*), count(DISTINCT doc_id) FROM documents").fetchone() == (
        n,
        n,
    )
    per_ingest = dict(
        cur.execute(
            "SELECT ingest_id, count(*) FROM documents WHERE ingest_id IS NOT NULL GROUP BY 1"
        ).fetchall()
    )
    rollup = dict(
        cur.execute("SELECT ingest_id, sum(n_docs) FROM doc_rollup GROUP BY 1").fetchall()
    )
    assert per_ingest == rollup == ({1: 10, 2: 5} if other == "ingest" else {1: 9})
    files = dict(cur.execute("SELECT file_id, uri FROM ingest_files").fetchall())
    mine = max(per_ingest)
    got = cur.execute(f"SELECT DISTINCT file_id FROM documents WHERE ingest_id = {mine}").fetchall()
    assert [files[r[0]] for r in got] == [a]

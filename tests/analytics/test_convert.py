"""Converting a single-file (0.1) workspace into a lakehouse workspace."""

from __future__ import annotations

import duckdb
import pytest

from analytics.convert import convert_single_file
from analytics.errors import WorkspaceError
from analytics.text import fetch_texts
from analytics.workspace import Workspace


def make_legacy(path, n=50):
    path.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path / "mixscope.duckdb"))
    con.execute("CREATE TABLE meta(key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '5'), ('tokenizer', 'tok'), ('x', 'y')")
    con.execute(
        """CREATE TABLE documents(doc_id VARCHAR PRIMARY KEY, source VARCHAR NOT NULL,
           domain VARCHAR, lang VARCHAR, date DATE, url VARCHAR, title VARCHAR,
           text VARCHAR NOT NULL, n_bytes BIGINT, n_chars BIGINT, n_tokens BIGINT,
           metadata JSON, ingest_id BIGINT)"""
    )
    con.execute(
        f"""INSERT INTO documents SELECT 'd' || i, CASE WHEN i % 2 = 0 THEN 'web' ELSE 'books'
            END, NULL, 'en', DATE '2020-01-01', NULL, NULL, 'text number ' || i,
            11 + length(CAST(i AS VARCHAR)), 11 + length(CAST(i AS VARCHAR)), 3, NULL, 1
            FROM range({n}) t(i)"""
    )
    con.execute(
        """CREATE TABLE mixtures(name VARCHAR NOT NULL, version INTEGER NOT NULL,
           created_at TIMESTAMPTZ NOT NULL, note VARCHAR, manifest JSON NOT NULL,
           PRIMARY KEY (name, version))"""
    )
    con.execute("INSERT INTO mixtures VALUES ('m', 1, now(), 'n', '{}')")
    con.execute("CREATE TABLE old_extra(a INTEGER)")
    con.execute("INSERT INTO old_extra VALUES (1), (2)")
    con.close()


def test_convert_keeps_every_row_and_text(tmp_path):
    make_legacy(tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="mixscope migrate"):
        Workspace.open(tmp_path / "ws")
    rep = convert_single_file(tmp_path / "ws")
    assert rep.documents == 50 and rep.tokens == 150
    assert rep.tables == {"documents": 50, "mixtures": 1, "old_extra": 2}
    ws = Workspace.open(tmp_path / "ws")
    cur = ws.cursor()
    assert cur.execute("SELECT count(*) FROM documents WHERE source = 'web'").fetchone()[0] == 25
    assert fetch_texts(cur, ["d7"]) == {"d7": "text number 7"}
    assert ws.meta()["x"] == "y" and ws.meta()["tokenizer"] == "tok"
    rollup = cur.execute("SELECT sum(n_docs), sum(n_tokens) FROM doc_rollup").fetchone()
    assert rollup == (50, 150)
    assert not (tmp_path / "ws" / "mixscope.duckdb").exists()
    assert len(list((tmp_path / "ws" / "backups").glob("mixscope-v5-single-file-*"))) == 1


def test_convert_failure_leaves_the_old_file(tmp_path, monkeypatch):
    import analytics.convert as conv

    make_legacy(tmp_path / "ws")
    before = (tmp_path / "ws" / "mixscope.duckdb").read_bytes()

    def broken(con, table):
        raise RuntimeError("disk full")

    monkeypatch.setattr(conv, "_copy_table", broken)
    with pytest.raises(RuntimeError):
        convert_single_file(tmp_path / "ws")
    assert (tmp_path / "ws" / "mixscope.duckdb").read_bytes() == before
    assert not (tmp_path / "ws" / "workspace.json").exists()
    assert not (tmp_path / "ws" / "catalog.sqlite").exists()

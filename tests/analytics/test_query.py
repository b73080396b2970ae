"""The guarded query path: refusals, row caps, time bounds, bound parameters."""

from __future__ import annotations

import pytest

from analytics.errors import QueryRefused, QueryTimeout
from analytics.ingest import ingest
from analytics.query import check_user_sql, run_query
from analytics.workspace import Workspace
from tests.conftest import fingerprint


@pytest.fixture
def ws(tmp_path, jsonl_file):
    w = Workspace(tmp_path / "ws")
    ingest(w, [str(jsonl_file)], source="web")
    return w


@pytest.mark.parametrize(
    "sql, message",
    [
        ("DELETE FROM documents", "type DELETE"),
        ("INSERT INTO meta VALUES ('a', 'b')", "type INSERT"),
        ("CREATE TABLE x AS SELECT 1", "type CREATE"),
        ("DROP TABLE documents", "type DROP"),
        ("UPDATE documents SET text = ''", "type UPDATE"),
        ("ATTACH '/tmp/other.duckdb' AS o", "type ATTACH"),
        ("INSTALL httpfs", "type"),
        ("LOAD httpfs", "type"),
        ("SET threads = 1", "type SET"),
        ("PRAGMA enable_profiling", "type"),
        ("COPY documents TO '/tmp/x.csv'", "type COPY"),
        ("SELECT 1; DROP TABLE documents", "one statement"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("", "empty"),
        ("SELEC 1", "does not parse"),
    ],
)
def test_refuses_non_select(ws, sql, message):
    with pytest.raises(QueryRefused, match=message):
        run_query(ws.user_cursor(), sql, user=True)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM glob('/*')",
        "SELECT * FROM read_parquet('/tmp/*.parquet')",
        "SELECT * FROM 'https://example.com/x.csv'",
    ],
)
def test_refuses_file_and_network_access(ws, sql):
    before = fingerprint(ws)
    with pytest.raises(QueryRefused, match="(?i)refused"):
        run_query(ws.user_cursor(), sql, user=True)
    assert fingerprint(ws) == before


def test_caps_rows_and_reports_truncation(ws):
    df, truncated = run_query(
        ws.user_cursor(), "SELECT * FROM range(100) t(i)", max_rows=7, user=True
    )
    assert len(df) == 7 and truncated
    df, truncated = run_query(
        ws.user_cursor(), "SELECT * FROM range(7) t(i)", max_rows=7, user=True
    )
    assert len(df) == 7 and not truncated


def test_stops_a_query_that_runs_forever(ws):
    with pytest.raises(QueryTimeout, match="time limit"):
        run_query(
            ws.user_cursor(),
            "SELECT count(*) FROM range(100000000000) a, range(1000000) b",
            timeout_s=1,
            user=True,
        )
    # the snapshot still answers afterwards
    assert run_query(ws.cursor(), "SELECT count(*) AS n FROM documents").table["n"][0] == 4


def test_parameters_are_bound_not_pasted(ws):
    evil = "x' OR '1'='1"
    df, _ = run_query(ws.cursor(), "SELECT count(*) AS n FROM documents WHERE source = ?", [evil])
    assert df["n"][0] == 0
    df, _ = run_query(ws.cursor(), "SELECT count(*) AS n FROM documents WHERE source = ?", ["web"])
    assert df["n"][0] == 4


def test_check_user_sql_strips_trailing_semicolon():
    assert check_user_sql("  SELECT 1;  ") == "SELECT 1"

"""Hostile SQL: memory bombs, result-size bombs, server-path leaks and typos."""

from __future__ import annotations

import resource

import pytest

from analytics.errors import QueryError, QueryRefused, QueryTimeout, QueryTooLarge
from analytics.query import check_user_sql, run_query, run_user_query

BOMBS = [
    "SELECT i, repeat('x', 10000000) AS s FROM range(150) t(i)",  # 150 rows x 10 MB
    "SELECT list(repeat('y', 1000)) FROM range(3000000)",  # one huge list
    "SELECT string_agg(repeat(doc_id, 200), '') FROM documents, range(40)",
]


def _files(path):
    return sorted(
        (str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in path.rglob("*")
        if p.is_file() and ".tmp" not in p.parts and not p.name.startswith("catalog.sqlite-")
    )


def test_ten_megabyte_rows_are_bounded_and_reported(demo_workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be spilled into the working directory
    before = _files(demo_workspace.path)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises((QueryTooLarge,)) as info:
        df, truncated = run_user_query(demo_workspace.path, BOMBS[0], max_rows=1000, timeout_s=60)
    assert "memory" in str(info.value) and "stopped" in str(info.value)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    assert grown_mb < 300, f"this process grew by {grown_mb:.0f} MB"
    # the server's process still answers, the workspace is unchanged, nothing spilled here
    df, truncated = run_user_query(demo_workspace.path, "SELECT count(*) AS n FROM documents")
    assert int(df["n"][0]) > 10_000 and not truncated
    assert _files(demo_workspace.path) == before
    assert list(tmp_path.iterdir()) == []
    assert not list((demo_workspace.path / ".tmp").glob("sql-*"))


def test_wide_rows_under_the_memory_limit_are_cut_at_the_byte_cap(demo_workspace):
    df, truncated = run_user_query(
        demo_workspace.path,
        "SELECT i, repeat('x', 1000000) AS s FROM range(150) t(i)",  # 150 MB in all
        max_rows=1000,
        max_bytes=20 * 1024**2,
    )
    assert truncated and df.attrs["truncated"] == "bytes"
    assert 5 <= len(df) <= 20 and df["s"].str.len().sum() <= 20 * 1024**2
    assert list(df["i"]) == list(range(len(df)))


def test_in_process_byte_cap(demo_workspace):
    df, truncated = run_query(
        demo_workspace.user_cursor(),
        "SELECT i, repeat('x', 100000) AS s FROM range(500) t(i)",
        max_bytes=2 * 1024**2,
        user=True,
    )
    assert truncated and df.attrs["truncated"] == "bytes" and 10 <= len(df) <= 21
    df, truncated = run_query(demo_workspace.user_cursor(), "SELECT * FROM range(50)", max_rows=10)
    assert truncated and df.attrs["truncated"] == "rows" and len(df) == 10


@pytest.mark.parametrize("sql", BOMBS[1:])
def test_other_memory_bombs_are_reported(demo_workspace, sql):
    with pytest.raises(QueryTooLarge, match="memory"):
        run_user_query(demo_workspace.path, sql, timeout_s=60, memory_bytes=512 * 1024**2)


def test_time_limit_in_the_child(demo_workspace):
    with pytest.raises(QueryTimeout, match="time limit"):
        run_user_query(
            demo_workspace.path,
            "SELECT count(*) FROM range(100000000000) a WHERE hash(a.range) = 7",
            timeout_s=1,
        )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM duckdb_settings()",
        "SELECT path FROM duckdb_databases()",
        "SELECT path FROM duckdb_databases",
        "SELECT * FROM duckdb_extensions()",
        "SELECT * FROM duckdb_temporary_files()",
        "SELECT * FROM pragma_database_list",
        "SELECT current_setting('temp_directory')",
        "SELECT * FROM pg_catalog.pg_settings",
        "SELECT * FROM query('SELECT path FROM duckdb_' || 'databases()')",
        'SELECT * FROM "DUCKDB_SETTINGS"()',
    ],
)
def test_server_settings_and_paths_are_refused(demo_workspace, sql):
    with pytest.raises(QueryRefused, match="Refused"):
        check_user_sql(sql)
    with pytest.raises(QueryRefused):
        run_query(demo_workspace.user_cursor(), sql, user=True)


def test_catalog_of_tables_is_still_allowed(demo_workspace):
    df, _ = run_query(
        demo_workspace.user_cursor(),
        "SELECT table_name FROM duckdb_tables() WHERE table_name = 'documents'",
        user=True,
    )
    assert list(df["table_name"]) == ["documents"]


@pytest.mark.parametrize(
    "sql, wanted",
    [
        ("SELECT nope FROM documents", "nope"),
        ("SELECT * FROM nowhere", "nowhere"),
        ("SELECT CAST('x' AS INTEGER)", "Conversion"),
    ],
)
def test_duckdb_errors_in_user_sql_are_one_line_query_errors(demo_workspace, sql, wanted):
    for call in (
        lambda: run_query(demo_workspace.user_cursor(), sql, user=True),
        lambda: run_user_query(demo_workspace.path, sql),
    ):
        with pytest.raises(QueryError, match=wanted) as info:
            call()
        assert "\n" not in str(info.value)


def test_sql_page_reports_the_limit_and_keeps_serving(app):
    at = app("sql")
    at.text_area(key="sql_text").set_value(BOMBS[0]).run()
    at.button(key="sql_run").click().run()
    assert not at.exception
    assert any("memory" in e.value for e in at.error), [e.value for e in at.error]
    at.text_area(key="sql_text").set_value("SELECT count(*) AS n FROM documents").run()
    at.button(key="sql_run").click().run()
    assert not at.error and int(at.dataframe[0].value["n"][0]) > 10_000

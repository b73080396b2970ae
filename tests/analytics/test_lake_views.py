"""Fast reader views (analytics.lake_views) answer exactly what the DuckLake path answers:
after inserts (in files and inlined in the catalog), deletes, updates, schema changes, new
snapshots and at a pinned snapshot; tables that need DuckLake fall back to it."""

from __future__ import annotations

import json

import pytest

from analytics import lake_views
from analytics.ingest import ingest
from analytics.signals.store import query_arrow
from analytics.workspace import Workspace

COLS = """(k BIGINT, name VARCHAR, d DATE, score DOUBLE, flag BOOLEAN, ts TIMESTAMP, meta JSON,
           tz TIMESTAMPTZ, small INTEGER)"""


def rows(lo: int, hi: int) -> str:
    return f"""SELECT i AS k, 'n' || i AS name, DATE '2000-01-01' + CAST(i % 900 AS INTEGER),
                  i / 7.0, i % 3 = 0, TIMESTAMP '2020-01-01' + INTERVAL (i) SECOND,
                  json_object('i', i), TIMESTAMPTZ '2021-06-01 12:00:00+00' + INTERVAL (i) MINUTE,
                  CAST(i % 100 AS INTEGER)
               FROM range({lo}, {hi}) t(i)"""


def dump(cur) -> dict:
    """Every lake table and view, sorted, plus a few aggregate queries (float sums rounded:
    their last bit depends on the order rows arrive in, on either path)."""
    names = [
        r[0]
        for r in cur.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'ws' "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE database_name = 'ws' "
            "AND NOT internal"
        ).fetchall()
    ]
    out = {}
    for n in sorted(names):
        try:
            out[n] = query_arrow(cur, f'SELECT * FROM "{n}" ORDER BY ALL')  # (no pytz here)
        except Exception as exc:  # noqa: BLE001 - the same error must come on both paths
            out[n] = type(exc).__name__
    out["agg"] = cur.execute(
        "SELECT count(*), sum(k), min(d), max(ts), round(sum(score), 6), count(*) FILTER (flag), "
        "sum(CAST(meta->>'i' AS BIGINT)) FROM plain"
    ).fetchall()
    out["join"] = cur.execute(
        "SELECT count(*) FROM plain p JOIN deleted d USING (k) WHERE d.flag"
    ).fetchall()
    out["snapshot"] = cur.execute(
        "SELECT id FROM ducklake_current_snapshot(current_database())"
    ).fetchall()
    return out


def lake_path(ws: Workspace, monkeypatch, at: int | None = None) -> dict:
    """The same workspace read through DuckLake only (a fresh Workspace, views off)."""
    with monkeypatch.context() as m:
        m.setenv(lake_views.ENV, "0")
        ref = Workspace(ws.path)
        cur = ref.user_cursor(at=at) if at is not None else ref.cursor()
        assert cur.execute("SELECT current_database()").fetchone()[0] == "ws"
        return dump(cur)


def fast_path(ws: Workspace, at: int | None = None) -> tuple[dict, lake_views.Plan]:
    fresh = Workspace(ws.path)
    cur = fresh.user_cursor(at=at) if at is not None else fresh.cursor()
    db = cur.execute("SELECT current_database()").fetchone()[0]
    assert db.startswith("lake_s"), db  # the fast views are in use
    snap = fresh.snapshot(locked=at is not None, at=at)
    return dump(cur), snap.views.plan(int(db.removeprefix("lake_s")))


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.delenv(lake_views.ENV, raising=False)
    path = tmp_path / "docs.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"d{i}", "text": f"document {i} " + "word " * (i % 13)}) + "\n"
            for i in range(200)
        )
    )
    ws = Workspace(tmp_path / "ws")
    ingest(ws, [str(path)], source="web", copy_text=True)
    with ws.write(job="tables") as con:
        for t in ("plain", "deleted", "altered", "updated", "small"):
            con.execute(f"CREATE TABLE {t} {COLS}")
        for t in ("plain", "deleted", "altered", "updated"):
            con.execute(f"INSERT INTO {t} {rows(0, 3000)}")
        con.execute(f"INSERT INTO small {rows(0, 3)}")  # inlined in the catalog
        con.execute("CREATE TABLE nested AS SELECT k, [name, 'x'] AS tags FROM small")
        con.execute("CREATE VIEW plain_big AS SELECT k, name FROM plain WHERE k >= 2500")
    return ws


def kinds(plan: lake_views.Plan) -> dict[str, str]:
    return {t.name: t.kind for t in plan.tables}


def test_views_match_the_lake_through_changes_and_time_travel(workspace, monkeypatch):
    ws = workspace
    monkeypatch.setattr(lake_views, "SMALL_ROWS", 100)  # the 3000-row tables are "large"
    first = ws.snapshot_id()
    got, plan = fast_path(ws)
    assert got == lake_path(ws, monkeypatch)
    k = kinds(plan)
    assert k["plain"] == k["deleted"] == k["updated"] == "files"
    assert k["documents"] == "files"
    assert k["small"] == "files" and k["nested"] == "copy"  # inlined rows of a list column

    with ws.write(job="changes") as con:
        con.execute(f"INSERT INTO plain {rows(3000, 3004)}")  # a few rows: inlined
        con.execute("DELETE FROM deleted WHERE k % 10 = 1")
        con.execute("ALTER TABLE altered ADD COLUMN extra INTEGER DEFAULT 7")
        con.execute("UPDATE updated SET name = 'changed' WHERE k < 50")
        con.execute("DELETE FROM documents WHERE doc_id IN ('d3', 'd4')")
        con.execute("DELETE FROM small WHERE k = 1")
        con.execute("UPDATE nested SET tags = ['y'] WHERE k = 2")
    second = ws.snapshot_id()
    assert second > first

    got, plan = fast_path(ws)
    assert got == lake_path(ws, monkeypatch)
    assert got["snapshot"] == [(second,)]
    by_name = {t.name: t for t in plan.tables}
    assert by_name["plain"].kind == "files" and by_name["plain"].inlined  # files + inlined
    # where the files no longer say it all, DuckLake answers (pinned to the same snapshot)
    for name in ("deleted", "altered", "updated", "documents"):
        assert by_name[name].kind == "lake", (name, by_name[name].reason)
    assert "deleted" in by_name["deleted"].reason
    assert "columns changed" in by_name["altered"].reason

    # time travel: pinned to the first snapshot, the views show it exactly
    old, old_plan = fast_path(ws, at=first)
    assert old == lake_path(ws, monkeypatch, at=first)
    assert old["snapshot"] == [(first,)]
    assert kinds(old_plan)["deleted"] == "files"
    assert old["agg"] != got["agg"] and len(old["deleted"]) == 3000 > len(got["deleted"])


def test_a_cursor_stays_on_its_snapshot_and_a_new_one_moves(workspace, monkeypatch):
    ws = workspace
    cur = ws.cursor()
    before = cur.execute("SELECT count(*) FROM plain").fetchone()[0]
    with ws.write(job="more") as con:
        con.execute(f"INSERT INTO plain {rows(5000, 5500)}")
    assert cur.execute("SELECT count(*) FROM plain").fetchone()[0] == before
    assert ws.cursor().execute("SELECT count(*) FROM plain").fetchone()[0] == before + 500
    assert dump(ws.cursor()) == lake_path(ws, monkeypatch)


def test_switched_off_and_copies_reused(workspace, monkeypatch):
    ws = workspace
    monkeypatch.setenv(lake_views.ENV, "0")
    off = Workspace(ws.path)
    assert off.cursor().execute("SELECT current_database()").fetchone()[0] == "ws"
    assert off.snapshot().views is None
    monkeypatch.delenv(lake_views.ENV)
    on = Workspace(ws.path)
    on.cursor()
    views = on.snapshot().views
    copies = dict(views._cache)
    assert copies  # small tables were copied into memory
    with ws.write(job="one table") as con:
        con.execute("INSERT INTO small VALUES (9, 'x', NULL, NULL, NULL, NULL, NULL, NULL, NULL)")
    assert on.cursor().execute("SELECT count(*) FROM small").fetchone()[0] == 4
    # unchanged tables keep their copy; the changed one got a new one
    small_id = next(t.table_id for t in views.plan(ws.snapshot_id()).tables if t.name == "small")
    kept = {k: v for k, v in copies.items() if k[1] != small_id}
    assert kept and all(views._cache.get(k) == v for k, v in kept.items())
    assert {k for k in views._cache if k[1] == small_id} != {k for k in copies if k[1] == small_id}


def test_an_idle_reader_survives_its_snapshot_evicted(workspace, monkeypatch):
    """A cursor idle while 5 newer snapshots were built loses its fast database (KEEP=4,
    KEEP_S patched to 0): its next query re-opens it on the newest snapshot and answers."""
    ws = workspace
    monkeypatch.setattr(lake_views, "KEEP_S", 0.0)
    old = ws.cursor()
    db = old.execute("SELECT current_database()").fetchone()[0]
    assert db.startswith("lake_s")
    before = old.execute("SELECT count(*) FROM plain").fetchone()[0]
    for k in range(5):
        with ws.write(job=f"more {k}") as con:
            lo = 10_000 + 100 * k
            con.execute(f"INSERT INTO plain {rows(lo, lo + 100)}")
        ws.cursor()  # a newer reader builds its snapshot's database; older ones are evicted
    attached = ws.cursor().execute("SELECT database_name FROM duckdb_databases()").fetchall()
    assert (db,) not in attached  # the old cursor's database is gone
    assert old.execute("SELECT count(*) FROM plain").fetchone()[0] == before + 500
    assert old.execute("SELECT current_database()").fetchone()[0] != db
    assert old.sql("SELECT count(*) FROM plain").fetchone()[0] == before + 500
    with pytest.raises(Exception, match="nosuch"):  # other errors are not retried away
        old.execute("SELECT * FROM nosuch")

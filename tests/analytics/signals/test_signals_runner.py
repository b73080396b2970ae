"""run_signals / list_signals / signals_view on an in-memory workspace-shaped database."""

from __future__ import annotations

import random

import duckdb
import pytest

from analytics.migrations import MIGRATIONS
from analytics.signals import (
    SignalError,
    get_signal,
    list_signals,
    run_signals,
    signals_view,
    signals_view_sql,
)
from analytics.signals.schema import SCHEMA
from tests.conftest import add_doc

WORDS = "alpha beta gamma delta river stone cloud light music paper garden window".split()


def make_text(seed: int, n: int = 120) -> str:
    rnd = random.Random(seed)
    return " ".join(rnd.choice(WORDS) for _ in range(n))


def new_db(texts: dict[str, tuple[str, str]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    for sql in MIGRATIONS[0][2]:
        con.execute(sql)
    add_docs(con, texts)
    return con


def add_docs(con, texts: dict[str, tuple[str, str]]) -> None:
    for doc_id, (source, text) in texts.items():
        add_doc(
            con,
            doc_id=doc_id,
            source=source,
            url=f"https://{source}.example.com/{doc_id}",
            text=text,
            n_tokens=len(text.split()),
        )


def corpus(n: int = 40) -> dict[str, tuple[str, str]]:
    return {f"d{i:03d}": ("web" if i % 2 else "books", make_text(i)) for i in range(n)}


def test_resumable_each_doc_scored_once():
    con = new_db(corpus(40))
    seen = []

    def stop_after_two_batches(stage, done, total):
        seen.append(done)
        if stage == "scan" and done >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_signals(
            con, ["compression", "url_domain"], batch_size=10, progress=stop_after_two_batches
        )
    # the two finished batches were committed
    assert con.execute("SELECT count(*) FROM signal_compression").fetchall()[0][0] == 20
    res = run_signals(con, ["compression", "url_domain"], batch_size=10)
    assert res.set_index("name").loc["compression", "computed"] == 20
    for table in ("signal_compression", "signal_url_domain"):
        n, distinct = con.execute(
            f"SELECT count(*), count(DISTINCT doc_id) FROM {table}"
        ).fetchall()[0]
        assert n == distinct == 40
    again = run_signals(con, ["compression"])
    assert again["computed"].tolist() == [0]


def test_max_docs_then_continue():
    con = new_db(corpus(30))
    first = run_signals(con, "compression", batch_size=8, max_docs=10)
    assert first["computed"].tolist() == [10]
    second = run_signals(con, "compression", batch_size=8)
    assert second["computed"].tolist() == [20]


def test_version_bump_when_params_change_keeps_old_rows():
    con = new_db(corpus(6))
    run_signals(con, ["compression"])
    v1 = get_signal("compression").version
    res = run_signals(con, ["compression"], params={"compression": {"level": 1}})
    v2 = res["version"].iloc[0]
    assert v2 != v1 and res["computed"].iloc[0] == 6
    versions = dict(
        con.execute("SELECT version, count(*) FROM signal_compression GROUP BY 1").fetchall()
    )
    assert versions == {v1: 6, v2: 6}
    listed = list_signals(con)
    comp = listed[listed["name"] == "compression"]
    assert set(comp["version"]) == {v1, v2}
    assert comp.set_index("version").loc[v2, "coverage"] == 1.0
    assert not comp.set_index("version").loc[v2, "is_default"]
    # the view follows the most recently computed version
    assert f"'{v2}'" in signals_view_sql(con)
    assert f"'{v1}'" in signals_view_sql(con, versions={"compression": v1})


def test_unknown_signal_name_writes_nothing():
    con = new_db(corpus(3))
    with pytest.raises(ValueError, match="valid names: .*compression"):
        run_signals(con, ["compression", "qualty"])
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert not any(t.startswith("signal") for t in tables)
    with pytest.raises(SignalError, match="unknown signal"):
        run_signals(con, params={"nope": {}})


def test_duplicate_clusters_global_pass_and_incremental_update():
    base = make_text(100, 200)
    words = base.split()
    words[50] = "zeppelin"
    docs = {
        "b": ("web", base),
        "c": ("web", " ".join(words)),  # near duplicate of b
        "d": ("books", base.upper() + " !!"),  # exact duplicate of b after normalisation
        "e": ("books", make_text(101, 200)),
    }
    con = new_db(docs)
    run_signals(con, ["exact_dup", "near_dup"], batch_size=2)
    ex = dict(con.execute("SELECT doc_id, exact_dup_rep FROM signal_exact_dup").fetchall())
    assert ex == {"b": "b", "c": "c", "d": "b", "e": "e"}
    near = dict(con.execute("SELECT doc_id, near_dup_cluster FROM signal_near_dup").fetchall())
    assert near == {"b": "b", "c": "b", "d": "b", "e": "e"}
    # a new document, an exact copy that sorts first, becomes the representative of both
    add_docs(con, {"a": ("news", base)})
    res = run_signals(con, ["exact_dup", "near_dup"]).set_index("name")
    assert res.loc["near_dup", "computed"] == 1 and res.loc["near_dup", "n_docs"] == 5
    near = dict(con.execute("SELECT doc_id, near_dup_rep FROM signal_near_dup").fetchall())
    assert near == {"a": "a", "b": "a", "c": "a", "d": "a", "e": "e"}
    sizes = dict(con.execute("SELECT doc_id, exact_dup_size FROM signal_exact_dup").fetchall())
    assert sizes == {"a": 3, "b": 3, "c": 1, "d": 3, "e": 1}


def test_near_dup_verify_mode_agrees_on_obvious_cases():
    base = make_text(7, 200)
    docs = {"x1": ("s", base), "x2": ("s", base + " extra"), "y": ("s", make_text(8, 200))}
    con = new_db(docs)
    run_signals(con, ["near_dup"], params={"near_dup": {"verify": True}})
    got = dict(con.execute("SELECT doc_id, near_dup_cluster FROM signal_near_dup").fetchall())
    assert got == {"x1": "x1", "x2": "x1", "y": "y"}


def test_view_and_schema():
    con = new_db(corpus(4))
    run_signals(con, ["compression", "language"])
    name = signals_view(con)
    df = con.execute(f"SELECT doc_id, source, compression_ratio, detected_lang FROM {name}").df()
    assert len(df) == 4 and df["compression_ratio"].notna().all()
    # SCHEMA creates every table on an empty database
    fresh = duckdb.connect(":memory:")
    for sql in SCHEMA:
        fresh.execute(sql)
    tables = {r[0] for r in fresh.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {
        "signals_catalog",
        "signal_near_dup",
        "signal_near_dup_sketch",
        "signal_gopher_quality",
    } <= tables


def test_list_signals_before_anything_ran():
    con = new_db(corpus(2))
    listed = list_signals(con)
    assert set(listed["name"]) >= {"gopher_quality", "near_dup", "url_domain"}
    assert (listed["n_docs"] == 0).all() and (listed["coverage"] == 0).all()


@pytest.mark.slow
def test_parallel_workers_give_the_same_rows():
    docs = corpus(40)
    one, two = new_db(docs), new_db(docs)
    run_signals(one, ["compression", "exact_dup"], batch_size=16)
    res = run_signals(two, ["compression", "exact_dup"], batch_size=16, n_jobs=2)
    assert res["computed"].tolist() == [40, 40]
    q = "SELECT doc_id, compression_ratio FROM signal_compression ORDER BY doc_id"
    assert one.execute(q).fetchall() == two.execute(q).fetchall()
    q = "SELECT doc_id, exact_dup_cluster FROM signal_exact_dup ORDER BY doc_id"
    assert one.execute(q).fetchall() == two.execute(q).fetchall()
    with pytest.raises(SignalError, match="n_jobs"):
        run_signals(one, ["compression"], n_jobs=0)


def test_registry_columns_unique_and_documented():
    from analytics.signals import SIGNALS, signal_info
    from analytics.signals.store import DOC_COLUMNS

    names = [c.name for cls in SIGNALS.values() for c in cls.columns]
    assert len(names) == len(set(names))
    assert not set(names) & {*DOC_COLUMNS, "text", "title", "metadata", "ingest_id"}
    for info in signal_info():
        assert info["description"] and info["columns"]
        assert all(p["description"] for p in info["params"])

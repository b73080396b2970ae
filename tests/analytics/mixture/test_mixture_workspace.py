"""Selection, hashes, reproduction, materialisation and saved mixtures on an in-memory DuckDB."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics.mixture import (
    MixtureError,
    ReproductionError,
    SelectionError,
    diff_manifests,
    group_counts,
    group_expression,
    list_mixtures,
    load_mixture,
    materialize,
    reproduce,
    save_mixture,
    snapshot_hash,
)
from analytics.mixture.store import ensure_schema
from tests.workspaces.mixture import SIZES, corpus_frame, make_con, manifest_for


@pytest.fixture
def con():
    c = make_con()
    yield c
    c.close()


# ------------------------------------------------------------------------ selection


def test_group_counts_match_pandas(con):
    df = corpus_frame()
    got = group_counts(con, group_by="source").set_index("group")
    exp = df.groupby("source").agg(documents=("doc_id", "size"), tokens=("n_tokens", "sum"))
    assert got["documents"].to_dict() == exp["documents"].to_dict()
    assert got["tokens"].to_dict() == exp["tokens"].to_dict()
    en = group_counts(con, group_by="source", where=("lang = ?", ["en"])).set_index("group")
    exp_en = df[df.lang == "en"].groupby("source")["n_tokens"].sum().to_dict()
    assert en["tokens"].to_dict() == exp_en


def test_group_specs_whitelist(con):
    cols = ["source", "date", "metadata", "n_tokens"]
    assert group_expression("source", columns=cols) == '"source"'
    years = group_counts(con, group_by="year(date)").set_index("group")["documents"]
    assert (
        years.to_dict()
        == corpus_frame()
        .groupby(pd.to_datetime(corpus_frame().date).dt.year)
        .size()
        .rename(index=str)
        .to_dict()
    )
    clusters = group_counts(con, group_by="json(metadata, cluster)")
    assert sorted(clusters["group"]) == ["0", "1", "2"]
    bins = group_counts(con, group_by="bin(n_tokens, 20)")
    assert bins["documents"].sum() == sum(SIZES.values())
    for bad in [
        "source; DROP TABLE documents",
        "nope",
        "upper(source)",
        "json(metadata, '$x' )",
        "bin(n_tokens, 0)",
    ]:
        with pytest.raises(SelectionError, match="group_by"):
            group_expression(bad, columns=cols)
    with pytest.raises(SelectionError, match="table"):
        group_counts(con, group_by="source", table="missing")
    with pytest.raises(SelectionError, match="where"):
        group_counts(con, group_by="source", where=("1=1; DROP TABLE documents", []))


def test_hashes_are_order_independent_and_sensitive():
    df = corpus_frame()
    a, b = make_con(df), make_con(df.iloc[::-1].reset_index(drop=True))
    ha = group_counts(a, group_by="source").set_index("group")["doc_ids_hash"]
    hb = group_counts(b, group_by="source").set_index("group")["doc_ids_hash"]
    assert ha.to_dict() == hb.to_dict()
    assert snapshot_hash(a) == snapshot_hash(b)
    # re-tokenising one document changes the snapshot but not the selected ids
    b.execute("UPDATE documents SET n_tokens = n_tokens + 1 WHERE doc_id = 'web-0003'")
    assert snapshot_hash(a) != snapshot_hash(b)
    assert (
        group_counts(b, group_by="source").set_index("group")["doc_ids_hash"].to_dict()
        == ha.to_dict()
    )
    # renaming one id changes that group's hash only
    b.execute("UPDATE documents SET doc_id = 'web-renamed' WHERE doc_id = 'web-0005'")
    hb2 = group_counts(b, group_by="source").set_index("group")["doc_ids_hash"]
    assert hb2["web"] != ha["web"] and hb2["books"] == ha["books"]
    # missing token counts are refused
    b.execute("UPDATE documents SET n_tokens = NULL WHERE doc_id = 'code-0001'")
    with pytest.raises(SelectionError, match="n_tokens"):
        group_counts(b, group_by="source")


# ----------------------------------------------------------------------- reproduction


def test_reproduce_ok_and_detects_changes(con):
    m = manifest_for(con, {"web": 0.5, "books": 2.5, "code": 1.0})
    rep = reproduce(con, m)
    assert rep.ok and len(rep.groups) == 3 and rep.groups["hash_matches"].all()

    con.execute(
        "INSERT INTO documents SELECT 'web-new', source, domain, lang, date, url, n_bytes, "
        "n_chars, "
        "n_tokens, metadata, ingest_id, quality FROM documents WHERE doc_id = 'web-0001'"
    )
    with pytest.raises(ReproductionError) as exc:
        reproduce(con, m)
    msg = str(exc.value)
    assert "group 'web'" in msg and "documents 40 -> 41" in msg
    assert "'books'" not in msg and "'code'" not in msg
    assert exc.value.differences and len(exc.value.differences) == 1


def test_reproduce_group_that_no_longer_exists(con):
    m = manifest_for(con, {"web": 0.5, "books": 2.5, "code": 1.0})
    con.execute("DELETE FROM documents WHERE source = 'code'")
    with pytest.raises(ReproductionError, match=r"group 'code': no longer exists"):
        reproduce(con, m)


def test_reproduce_snapshot_only_change_strict_and_lenient(con):
    m = manifest_for(con, {"web": 0.5, "books": 1.0, "code": 1.0}, where=("lang = ?", ["en"]))
    # a German document is outside the selection: groups unchanged, corpus changed
    con.execute(
        "INSERT INTO documents SELECT 'web-de', source, domain, 'de', date, url, n_bytes, "
        "n_chars, "
        "n_tokens, metadata, ingest_id, quality FROM documents WHERE doc_id = 'web-0001'"
    )
    with pytest.raises(ReproductionError, match="snapshot changed"):
        reproduce(con, m)
    rep = reproduce(con, m, strict=False)
    assert not rep.snapshot_matches and not rep.differences


def test_reproduce_refuses_non_select_sql(con):
    m = manifest_for(con, {"web": 0.5, "books": 1.0, "code": 1.0})
    data = m.model_dump(mode="json")
    data["phases"][0]["groups"][0]["selection"]["sql"] = "COPY documents TO '/tmp/x.csv'"
    from analytics.mixture import validate_manifest

    with pytest.raises(SelectionError, match="one SELECT"):
        reproduce(con, validate_manifest(data))


# ---------------------------------------------------------------------- materialise


def _read_jsonl_dir(d):
    rows = []
    for f in sorted(d.glob("part-*.jsonl")):
        rows += [json.loads(line) for line in f.read_text().splitlines()]
    return rows


def test_materialize_repeats_and_shards(con, tmp_path):
    m = manifest_for(con, {"web": 0.5, "books": 2.5, "code": 1.0})
    res = materialize(con, m, tmp_path / "out", shard_rows=7)
    pdir = tmp_path / "out" / "main"
    samples = pd.read_parquet(pdir / "samples.parquet")
    docs = corpus_frame().set_index("doc_id")
    samples["n_tokens"] = samples["doc_id"].map(docs["n_tokens"])
    targets = {g.id: g.target_tokens for g in m.phases[0].groups}
    max_doc = docs["n_tokens"].max()
    for grp, sub in samples.groupby("group"):
        got = int((sub["repeats"] * sub["n_tokens"]).sum())
        assert targets[grp] <= got < targets[grp] + max_doc, grp
    books = samples[samples.group == "books"]
    assert set(books["repeats"]) <= {2, 3} and len(books) == SIZES["books"]
    code = samples[samples.group == "code"]
    assert (code["repeats"] == 1).all() and len(code) == SIZES["code"]
    web = samples[samples.group == "web"]
    assert (web["repeats"] == 1).all() and 0 < len(web) < SIZES["web"]
    # shards: at most 7 rows, every document appears `repeats` times with copies 0..repeats-1
    rows = _read_jsonl_dir(pdir)
    assert len(rows) == samples["repeats"].sum()
    assert all(len(f.read_text().splitlines()) <= 7 for f in pdir.glob("part-*.jsonl"))
    per_doc = pd.DataFrame(rows).groupby("doc_id")["repeat"].agg(["count", "max"])
    rep = samples.set_index("doc_id")["repeats"]
    assert (per_doc["count"] == rep[per_doc.index]).all()
    assert (per_doc["max"] == rep[per_doc.index] - 1).all()
    assert rows[0].keys() == {"doc_id", "group", "repeat", "n_tokens", "text"}
    assert rows[0]["text"] == docs.loc[rows[0]["doc_id"], "text"]
    summary = json.loads((tmp_path / "out" / "materialize.json").read_text())
    assert summary["seed"] == 11 and len(summary["phases"][0]["shards"]) == len(
        list(pdir.glob("part-*"))
    )
    assert set(res.groups["group"]) == {"web", "books", "code"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_materialize_is_deterministic_and_seed_dependent(con, tmp_path):
    m = manifest_for(con, {"web": 0.5, "books": 2.5, "code": 1.0})
    materialize(con, m, tmp_path / "a", shard_rows=50)
    materialize(con, m, tmp_path / "b", shard_rows=50)
    materialize(con, m, tmp_path / "c", shard_rows=50, seed=12345)
    files = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert files and all(
        (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files
    )
    a_rows, c_rows = (
        _read_jsonl_dir(tmp_path / "a" / "main"),
        _read_jsonl_dir(tmp_path / "c" / "main"),
    )
    assert [r["doc_id"] for r in a_rows] != [r["doc_id"] for r in c_rows]  # order differs
    web_a = set(
        pd.read_parquet(tmp_path / "a" / "main" / "samples.parquet").query("group == 'web'")[
            "doc_id"
        ]
    )
    web_c = set(
        pd.read_parquet(tmp_path / "c" / "main" / "samples.parquet").query("group == 'web'")[
            "doc_id"
        ]
    )
    assert web_a != web_c  # the fractional-epoch subset differs


def test_materialize_two_phases(con, tmp_path):
    m1 = manifest_for(con, {"web": 0.5, "books": 2.5, "code": 1.0})
    m2 = manifest_for(con, {"web": 0.25, "books": 1.0, "code": 0.5})
    data = m1.model_dump(mode="json")
    anneal = m2.model_dump(mode="json")["phases"][0] | {"name": "anneal"}
    data["phases"].append(anneal)
    data["total_tokens"] += anneal["budget_tokens"]
    from analytics.mixture import validate_manifest

    m = validate_manifest(data)
    res = materialize(con, m, tmp_path / "both", shard_rows=1000)
    assert sorted(p.name for p in (tmp_path / "both").iterdir()) == [
        "anneal",
        "main",
        "materialize.json",
    ]
    assert set(res.groups["phase"]) == {"main", "anneal"}
    anneal_rows = res.groups.query("phase == 'anneal'").set_index("group")
    assert anneal_rows.loc["books", "rows"] == SIZES["books"]  # exactly one epoch
    only = materialize(con, m, tmp_path / "one", phases=["anneal"])
    assert sorted(p.name for p in only.out_dir.iterdir()) == ["anneal", "materialize.json"]
    with pytest.raises(MixtureError, match="unknown phase"):
        materialize(con, m, tmp_path / "two", phases=["nope"])


def test_materialize_parquet_and_quality_order(con, tmp_path):
    m = manifest_for(
        con,
        {"web": 1.0, "books": 2.0, "code": 1.0},
        order="ascending-quality",
        order_column="quality",
    )
    materialize(
        con, m, tmp_path / "pq", fmt="parquet", shard_tokens=400, columns=("text", "quality")
    )
    t = pd.concat(
        [
            pq.read_table(f).to_pandas()
            for f in sorted((tmp_path / "pq" / "main").glob("part-*.parquet"))
        ]
    )
    assert len(t) == 40 + 2 * 8 + 20
    # pass by pass (repeat 0 first), ascending quality within a pass
    assert list(t["repeat"]) == sorted(t["repeat"])
    for _, sub in t.groupby("repeat", sort=False):
        assert sub["quality"].is_monotonic_increasing
    # token-sized shards: every shard but the last starts below 400 tokens before its last row
    for f in sorted((tmp_path / "pq" / "main").glob("part-*.parquet")):
        n = pq.read_table(f).column("n_tokens").to_pylist()
        assert sum(n[:-1]) < 400


def test_materialize_refuses_and_leaves_nothing(con, tmp_path):
    m = manifest_for(con, {"web": 0.5, "books": 1.0, "code": 1.0})
    (tmp_path / "exists").mkdir()
    with pytest.raises(MixtureError, match="already exists"):
        materialize(con, m, tmp_path / "exists")
    with pytest.raises(SelectionError, match="columns"):
        materialize(con, m, tmp_path / "x", columns=("nope",))
    bad = manifest_for(
        con, {"web": 0.5, "books": 1.0, "code": 1.0}, order="ascending-quality", order_column="nope"
    )
    with pytest.raises(SelectionError, match="order_column"):
        materialize(con, bad, tmp_path / "y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists"]
    con.execute("DELETE FROM documents WHERE doc_id = 'books-0001'")
    with pytest.raises(ReproductionError, match="group 'books'"):
        materialize(con, m, tmp_path / "z")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists"]


def test_materialize_detects_selection_change_behind_an_unchanged_snapshot(con, tmp_path):
    m = manifest_for(con, {"web": 0.5, "books": 1.0, "code": 1.0}, where=("lang = ?", ["en"]))
    # the snapshot covers (doc_id, n_tokens) only: changing a language keeps it, but the
    # selection of 'web' loses a document
    con.execute("UPDATE documents SET lang = 'de' WHERE doc_id = 'web-0001'")
    assert snapshot_hash(con) == m.corpus_snapshot_hash
    with pytest.raises(ReproductionError, match=r"group 'web': documents 30 -> 29"):
        materialize(con, m, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------- saved mixtures


def test_save_list_load_diff(con):
    ensure_schema(con)
    m1 = manifest_for(con, {"web": 0.5, "books": 2.5, "code": 1.0})
    m2 = manifest_for(con, {"web": 1.0, "books": 1.0, "code": 1.0})
    assert save_mixture(con, "base", m1) == 1
    assert save_mixture(con, "base", m2, note="flat") == 2
    lst = list_mixtures(con)
    assert list(lst["version"]) == [1, 2] and list(lst["phases"]) == [1, 1]
    assert load_mixture(con, "base") == m2 and load_mixture(con, "base", 1) == m1
    d = diff_manifests(m1, m2).set_index("group")
    assert d.loc["books", "status"] == "changed"
    w1, w2 = (next(g.weight for g in m.phases[0].groups if g.id == "books") for m in (m1, m2))
    assert d.loc["books", "weight_change"] == pytest.approx(w2 - w1)
    with pytest.raises(MixtureError, match="no saved mixture"):
        load_mixture(con, "missing")
    with pytest.raises(MixtureError, match="name"):
        save_mixture(con, "../evil", m1)


# ------------------------------------------------------------ the real workspace contract


def test_real_workspace_reader_and_materialize(tmp_path):
    from analytics.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.initialise()
    frame = corpus_frame().drop(columns="quality")
    with ws.write(job="test-mixture") as c:
        c.register("_src", pa.Table.from_pandas(frame, preserve_index=False))
        c.execute("INSERT INTO documents BY NAME SELECT * EXCLUDE (text) FROM _src")
        c.execute("INSERT INTO texts SELECT doc_id, text FROM _src")
    cur = ws.user_cursor()  # read-only, external access off
    m = manifest_for(cur, {"web": 0.5, "books": 2.5, "code": 1.0})
    assert reproduce(cur, m).ok
    with pytest.raises(MixtureError, match="cannot write files"):
        materialize(cur, m, tmp_path / "nope")
    res = materialize(ws, m, tmp_path / "out", fmt="parquet")
    samples = pd.read_parquet(tmp_path / "out" / "main" / "samples.parquet")
    assert set(samples["group"]) == {"web", "books", "code"}
    assert (
        res.groups.set_index("group").loc["books", "realised_tokens"]
        >= m.phases[0].groups[0].target_tokens
    )

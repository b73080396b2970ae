"""The workspace-facing builder: derived group values (clusters, signal columns), filter
parameters stored as JSON, manifests built as the CLI and the page build them, materialising
with a derived quality order and progress, and the strategy helpers."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from analytics.filters import DocFilter
from analytics.mixture import (
    MixtureError,
    ReproductionError,
    SelectionError,
    StrategyInputError,
    materialize,
    reproduce,
    temperature_weights,
)
from analytics.mixture import builder as mb
from analytics.mixture.selection import json_param
from tests.workspaces.mixture import corpus_frame, make_con

SIGNAL_VERSION = "v1-test"


def cluster_of(doc_id: str) -> int:
    return int(doc_id.split("-")[1]) % 4


def with_capabilities(con):
    """Add a map's clusters and a computed compression signal, as their jobs would."""
    df = corpus_frame()
    con.execute("CREATE TABLE maps(map_id VARCHAR, model_key VARCHAR, params JSON, "
                "n_points BIGINT, n_corpus BIGINT, created_at TIMESTAMP)")  # fmt: skip
    con.execute("CREATE TABLE doc_clusters(doc_id VARCHAR, map_id VARCHAR, cluster INTEGER)")
    con.execute("INSERT INTO maps VALUES ('old', 'm', '{}', 0, 0, '2020-01-01'), "
                "('map_abc', 'm', '{}', 0, 0, '2024-01-01')")  # fmt: skip
    for map_id, f in (("old", lambda d: 99), ("map_abc", cluster_of)):
        con.executemany(
            "INSERT INTO doc_clusters VALUES (?, ?, ?)", [[d, map_id, f(d)] for d in df.doc_id]
        )
    con.execute(
        "CREATE TABLE signals_catalog(name VARCHAR, version VARCHAR, params JSON, "
        "computed_at TIMESTAMP, n_docs BIGINT)"
    )
    con.execute(
        "CREATE TABLE signal_compression(doc_id VARCHAR, version VARCHAR, "
        "compression_ratio DOUBLE, raw_bytes BIGINT)"
    )
    con.executemany(
        "INSERT INTO signal_compression VALUES (?, ?, ?, ?)",
        [[d, SIGNAL_VERSION, q, 1] for d, q in zip(df.doc_id, df.quality)]
        + [[d, "stale", 0.0, 1] for d in df.doc_id],  # another version must be ignored
    )
    con.execute(
        "INSERT INTO signals_catalog VALUES ('compression', 'stale', '{}', '2020-01-01', 1), "
        f"('compression', '{SIGNAL_VERSION}', '{{}}', '2024-01-01', {len(df)})"
    )
    con.execute("CREATE TABLE meta(key VARCHAR, value VARCHAR)")
    con.execute(
        "INSERT INTO meta VALUES ('tokenizer', 'tok-x'), ('tokenizer_sha256', ?)", ["a" * 64]
    )
    return df


@pytest.fixture
def con():
    c = make_con()
    with_capabilities(c)
    yield c
    c.close()


def test_group_options_and_derived_values(con):
    specs = {o.spec: o.kind for o in mb.group_options(con)}
    assert specs["source"] == "column" and specs["year(date)"] == "expression"
    assert specs["cluster"] == "cluster" and specs["compression_ratio"] == "quality"
    assert "raw_bytes" in mb.derived_columns(con) and mb.latest_map_id(con) == "map_abc"
    assert mb.quality_columns(con) == {
        "compression_ratio": "compression: compressed bytes / raw UTF-8 bytes"
    }
    bare = make_con()  # no maps, no signals: only the document columns
    assert [o.spec for o in mb.group_options(bare)] == ["source", "domain", "lang", "year(date)"]
    assert mb.derived_columns(bare) == {}


def test_group_by_cluster_and_quality_bucket_match_pandas(con):
    df = corpus_frame()
    got = mb.group_table(con, group_by="cluster").set_index("group")
    exp = df.assign(c=df.doc_id.map(cluster_of)).groupby("c")["n_tokens"].sum()
    assert got["tokens"].to_dict() == {str(k): int(v) for k, v in exp.items()}
    got = mb.group_table(con, group_by="bin(compression_ratio, 0.25)").set_index("group")
    bucket = np.floor(df.quality / 0.25) * 0.25
    exp = df.groupby(bucket)["doc_id"].size()
    assert got["documents"].to_dict() == {str(k): int(v) for k, v in exp.items()}
    with pytest.raises(SelectionError, match="unknown column 'cluster2'"):
        mb.check_group_by(con, "cluster2")


def test_dates_and_lists_in_the_filter_are_stored_as_json_and_reproduce(con):
    flt = DocFilter(source=("web", "code"), date_from=dt.date(2021, 1, 1))
    tokens = dict(mb.group_table(con, flt, group_by="source")[["group", "tokens"]].values)
    spec = mb.PhaseSpec("main", 5000, mb.token_strategy_weights("temperature", tokens,
                        params={"temperature": 2.0}))  # fmt: skip
    m = mb.create_manifest(con, flt, group_by="source", phases=[spec], seed=4)
    sel = m.phases[0].groups[0].selection
    assert sel.params[:3] == ["web", "code", "2021-01-01"]
    assert sel.filter == {"src": "web,code", "from": "2021-01-01"}
    assert m.tokenizer.name == "tok-x" and m.tokenizer.sha256 == "a" * 64
    df = corpus_frame()
    sub = df[df.source.isin(["web", "code"]) & (df.date >= dt.date(2021, 1, 1))]
    assert tokens == sub.groupby("source")["n_tokens"].sum().to_dict()
    assert {g.id: g.weight for g in m.phases[0].groups} == pytest.approx(
        dict(temperature_weights(tokens, 2.0))
    )
    assert reproduce(con, m).ok
    picked = DocFilter(doc_ids=("web-0001", "web-0002", "code-0003"))  # a list parameter
    tokens = dict(mb.group_table(con, picked, group_by="source")[["group", "tokens"]].values)
    spec = mb.PhaseSpec("main", 100, mb.token_strategy_weights("uniform", tokens))
    m2 = mb.create_manifest(con, picked, group_by="source", phases=[spec])
    assert m2.phases[0].groups[0].selection.params[0] == ["web-0001", "web-0002", "code-0003"]
    assert [g.documents for g in m2.phases[0].groups] == [1, 2] and reproduce(con, m2).ok
    assert json_param(dt.datetime(2020, 1, 2, 3)) == "2020-01-02T03:00:00"
    assert json_param(("a", 1)) == ["a", 1]
    with pytest.raises(SelectionError, match="parameter"):
        json_param(float("nan"))


def test_cluster_mixture_reproduces_and_detects_reassignment(con):
    tokens = dict(mb.group_table(con, group_by="cluster")[["group", "tokens"]].values)
    spec = mb.PhaseSpec("main", 3000, mb.token_strategy_weights("uniform", tokens))
    m = mb.create_manifest(con, group_by="cluster", phases=[spec])
    assert "doc_clusters" in m.phases[0].groups[0].selection.sql
    assert reproduce(con, m).ok
    con.execute("UPDATE doc_clusters SET cluster = 1 WHERE doc_id = 'web-0000' AND map_id = ?",
                ["map_abc"])  # fmt: skip
    with pytest.raises(ReproductionError) as err:
        reproduce(con, m, strict=False)
    assert any("group '0'" in d for d in err.value.differences)
    assert any("group '1'" in d for d in err.value.differences)


def test_materialize_orders_by_a_signal_and_reports_progress(con, tmp_path):
    tokens = dict(mb.group_table(con, group_by="source")[["group", "tokens"]].values)
    spec = mb.PhaseSpec(
        "main",
        int(sum(tokens.values()) * 1.5),
        mb.token_strategy_weights("natural", tokens),
        order="ascending-quality",
        order_column="compression_ratio",
    )
    m = mb.create_manifest(con, group_by="source", phases=[spec], seed=1)
    seen = []
    res = materialize(
        con, m, tmp_path / "out", shard_rows=25, derived=mb.derived_columns(con),
        progress=lambda stage, done, total: seen.append((stage, done, total)),
    )  # fmt: skip
    rows = [json.loads(x) for f in sorted((tmp_path / "out/main").glob("part-*.jsonl"))
            for x in f.read_text().splitlines()]  # fmt: skip
    q = dict(zip(corpus_frame().doc_id, corpus_frame().quality))
    for rep in {r["repeat"] for r in rows}:  # pass by pass, ascending quality within a pass
        scores = [q[r["doc_id"]] for r in rows if r["repeat"] == rep]
        assert scores == sorted(scores)
    n_shards = math.ceil(len(rows) / 25)
    assert seen[-1] == ("phase main: writing shards", n_shards, n_shards)
    assert ("phase main: selecting", 1, 1) in seen and len(res.files) == n_shards + 2

    def cancel(stage, done, total):
        if done == 2:
            raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        materialize(con, m, tmp_path / "cancelled", shard_rows=25,
                    derived=mb.derived_columns(con), progress=cancel)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing half-written
    with pytest.raises(SelectionError, match="order_column"):
        materialize(con, m, tmp_path / "x")  # without the derived value the column is unknown


def test_token_strategies_and_manual_weights():
    tokens = {"a": 100.0, "b": 300.0}
    w = mb.token_strategy_weights("manual", tokens, params={"a": 1, "b": 3})
    assert dict(w) == {"a": 0.25, "b": 0.75} and w.method == "manual"
    assert mb.token_strategy_weights("unimax", tokens, budget=400, params={"max_epochs": 1.5})[
        "a"
    ] == pytest.approx(150 / 400)  # UniMax: a capped at 1.5 epochs, b takes the rest
    for strategy, params, match in [
        ("manual", {"c": 1}, "unknown group"),
        ("manual", {"a": -1}, r"params\['a'\]"),
        ("temperature", {"T": 2}, "takes temperature, cap"),
        ("regmix", {}, "needs more than token counts"),
    ]:
        with pytest.raises(StrategyInputError, match=match):
            mb.token_strategy_weights(strategy, tokens, params=params)


def test_group_sample_is_bounded_and_seeded(con):
    a = mb.group_text_sample(con, group_by="source", per_group=5, max_chars=12, seed=1)
    b = mb.group_text_sample(con, group_by="source", per_group=5, max_chars=12, seed=1)
    c = mb.group_text_sample(con, group_by="source", per_group=5, max_chars=12, seed=2)
    assert a.groupby("group").size().to_dict() == {"books": 5, "code": 5, "web": 5}
    assert (a["text"].str.len() <= 12).all()
    assert a.equals(b) and not a["doc_id"].equals(c["doc_id"])


def test_target_matching_from_workspace_samples_recovers_the_target_group():
    words = {"web": "alpha beta gamma delta", "books": "omega sigma kappa", "code": "def int x"}
    df = corpus_frame()
    df["text"] = [f"{words[s]} {i}" for i, s in enumerate(df.source)]
    c = make_con(df)
    feats = mb.group_ngram_features(c, group_by="source", per_group=50)
    tokens = dict(mb.group_table(c, group_by="source")[["group", "tokens"]].values)
    w = mb.target_matching_from_texts(feats, ["omega sigma kappa", "omega sigma"], tokens=tokens)
    assert w["books"] > 0.9 and w.diagnostics["kl_reduction"] > 0
    # KL of the returned weights, recomputed here from the definition
    p = w.extras["target_features"] / w.extras["target_features"].sum()
    q = {g: (feats[g] + 0.01) / (feats[g] + 0.01).sum() for g in feats}
    m = sum(w[g] * q[g] for g in feats)
    kl = float(np.sum(p[p > 0] * np.log(p[p > 0] / m[p > 0])))
    assert mb.kl_to_target(feats, w.extras["target_features"], w) == pytest.approx(kl)
    assert w.diagnostics["kl_after"] == pytest.approx(kl)
    with pytest.raises(StrategyInputError, match="at least one"):
        mb.target_matching_from_texts(feats, ["  "], tokens=tokens)
    assert mb.split_target_texts("a\n\nb\n \nc") == ["a", "b", "c"]
    assert mb.split_target_texts('{"text": "x"}\n\n{"text": "y"}', name="t.jsonl") == ["x", "y"]
    with pytest.raises(StrategyInputError, match="t.jsonl: line 1"):
        mb.split_target_texts("nope", name="t.jsonl")


@pytest.mark.slow
def test_proxy_runs_csv_and_regression_over_all_groups():
    rng = np.random.default_rng(0)
    w = rng.dirichlet([1, 1, 1], size=24)
    loss = 3.0 - 0.8 * w[:, 0] + 0.3 * w[:, 2] + rng.normal(0, 0.005, 24)
    csv = pd.DataFrame({"run": [f"r{i}" for i in range(24)], "web": w[:, 0], "books": w[:, 1],
                        "code": w[:, 2], "val_loss": loss}).to_csv(index=False)  # fmt: skip
    df_w, losses = mb.read_proxy_runs(csv.encode(), groups=["web", "books", "code", "wiki"])
    assert list(df_w.columns) == ["web", "books", "code"] and list(losses.columns) == ["val_loss"]
    res = mb.fit_proxy_runs(
        "mixing_law",
        df_w,
        losses,
        groups=["web", "books", "code", "wiki"],
        n_candidates=2000,
        n_folds=3,
    )
    assert res["wiki"] == 0 and res.diagnostics["groups_not_in_runs"] == ["wiki"]
    assert res["web"] == max(res.values()) and res.diagnostics["spearman"] > 0.8
    with pytest.raises(StrategyInputError, match="at least 2 columns named after groups"):
        mb.read_proxy_runs(b"a,b\n1,2\n", groups=["web"])
    with pytest.raises(StrategyInputError, match="validation-loss"):
        mb.read_proxy_runs(b"web,books\n0.5,0.5\n", groups=["web", "books"])
    with pytest.raises(MixtureError):
        mb.fit_proxy_runs("nope", df_w, losses, groups=["web"])

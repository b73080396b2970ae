"""The Mixtures page by widget key: strategies update the plan, save/reopen via `mix=`, roles,
heavy work only on clicks, materialisation as a queued job."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.jobs import JobStore
from analytics.mixture import builder as mb
from analytics.mixture import load_mixture, temperature_weights, uniform_weights
from tests.dashboard.conftest import APP, open_mixtures

SOURCES = ("licenses", "austen", "fortunes-en", "python-code")


def tokens_by_sql(ws, sources=SOURCES) -> dict[str, int]:
    """Per-source tokens with plain SQL (independent of the mixture library)."""
    marks = ", ".join("?" for _ in sources)
    rows = (
        ws.cursor()
        .execute(
            f"SELECT source, sum(n_tokens) FROM documents WHERE source IN ({marks}) GROUP BY 1",
            list(sources),
        )
        .fetchall()
    )
    return {s: int(t) for s, t in rows}


def plans(at) -> list:
    return [d.value for d in at.dataframe if "epochs" in d.value.columns]


def test_temperature_updates_the_plan(demo_workspace, monkeypatch):
    at = open_mixtures(demo_workspace.path, monkeypatch, src=",".join(SOURCES))
    tokens = tokens_by_sql(demo_workspace)
    (plan,) = plans(at)  # natural weights by default
    assert set(plan["group"]) == set(SOURCES)
    total = sum(tokens.values())
    assert dict(zip(plan["group"], plan["weight"])) == pytest.approx(
        {g: t / total for g, t in tokens.items()}, abs=1e-12
    )
    at.selectbox(key="mx_p0_strategy").set_value("temperature").run()
    at.number_input(key="mx_p0_T").set_value(3.5).run()
    at.number_input(key="mx_p0_budget").set_value(2_000_000).run()
    assert not at.exception
    (plan,) = plans(at)
    want = temperature_weights(tokens, 3.5)  # from the independently counted tokens
    assert dict(zip(plan["group"], plan["weight"])) == pytest.approx(dict(want), abs=1e-12)
    assert plan["target_tokens"].sum() == 2_000_000
    assert (plan["epochs"] == plan["target_tokens"] / plan["available_tokens"]).all()
    lic = plan.set_index("group").loc["licenses"]  # 46,667 tokens: far past 4 epochs here
    assert lic["epochs"] > 4 and "effective data" in lic["warning"]
    assert any("licenses" in w.value and "epochs" in w.value for w in at.warning)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Budget"] == "2.00M" and metrics["KL to target"] == "not set"


def test_save_then_reopen_from_the_link(demo_workspace_copy, monkeypatch):
    ws = demo_workspace_copy
    at = open_mixtures(ws.path, monkeypatch, src=",".join(SOURCES))
    at.selectbox(key="mx_p0_strategy").set_value("temperature").run()
    at.number_input(key="mx_p0_T").set_value(4.0).run()
    at.toggle(key="mx_anneal").set_value(True).run()
    at.number_input(key="mx_p1_budget").set_value(300_000).run()
    assert at.selectbox(key="mx_p1_strategy").value == "uniform"
    at.text_input(key="mx_save_name").input("page-mix").run()
    at.button(key="mx_save").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.query_params["mix"] in ("page-mix@1", ["page-mix@1"])
    assert "mix=page-mix%401" in at.code[0].value  # the share link
    saved = load_mixture(ws.cursor(), "page-mix", 1)
    tokens = tokens_by_sql(ws)
    main, anneal = saved.phases
    assert {g.id: g.weight for g in main.groups} == pytest.approx(
        dict(temperature_weights(tokens, 4.0)), abs=1e-12
    )
    assert anneal.budget_tokens == 300_000
    assert {g.id: g.weight for g in anneal.groups} == pytest.approx(dict(uniform_weights(tokens)))
    assert main.groups[0].selection.filter == {"src": ",".join(SOURCES)}

    again = open_mixtures(ws.path, monkeypatch, mix="page-mix@1")  # a colleague opens the link
    assert again.selectbox(key="mx_p0_strategy").value == "temperature"
    assert again.number_input(key="mx_p0_T").value == 4.0
    assert again.toggle(key="mx_anneal").value is True
    assert again.query_params["src"] in (",".join(SOURCES), [",".join(SOURCES)])
    p_main, p_anneal = plans(again)
    assert dict(zip(p_main["group"], p_main["weight"])) == pytest.approx(
        {g.id: g.weight for g in main.groups}, abs=1e-12
    )
    assert p_anneal["target_tokens"].sum() == 300_000
    # a second save is version 2; the diff table compares the two
    again.number_input(key="mx_p0_T").set_value(1.0).run()
    again.button(key="mx_save").click().run()
    assert again.query_params["mix"] in ("page-mix@2", ["page-mix@2"])
    again.selectbox(key="mx_diff_a").set_value("page-mix@1").run()
    again.selectbox(key="mx_diff_b").set_value("page-mix@2").run()
    diff = next(d.value for d in again.dataframe if "weight_change" in d.value.columns)
    assert set(diff.loc[diff["phase"] == "main", "status"]) == {"changed"}
    assert set(diff.loc[diff["phase"] == "anneal", "status"]) == {"same"}


def test_viewers_cannot_save_or_materialise(demo_workspace, monkeypatch):
    monkeypatch.setenv("MIXSCOPE_VIEWER_TOKEN", "viewer-token-0123456789")
    monkeypatch.setenv("MIXSCOPE_EDITOR_TOKEN", "editor-token-9876543210")
    monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(demo_workspace.path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["src"] = "licenses"
    at.run()
    at.text_input(key="login_token").input("viewer-token-0123456789")
    at.button[0].click().run()
    at.switch_page("app_pages/mixtures.py").run()
    assert not at.exception
    keys = {getattr(b, "key", None) for b in at.button}
    assert "mx_save" not in keys and "mx_prepare" in keys  # viewers may still download
    assert any("Viewers cannot save mixtures" in i.value for i in at.info)


def test_target_features_only_on_click_and_cached(demo_workspace, monkeypatch):
    calls = []
    real = mb.group_ngram_features

    @functools.wraps(real)
    def counting(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(mb, "group_ngram_features", counting)
    at = open_mixtures(demo_workspace.path, monkeypatch, src="python-code,austen,licenses")
    at.selectbox(key="mx_p0_strategy").set_value("target_matching").run()
    assert any("Compute target features" in i.value for i in at.info) and not calls
    at.text_area(key="mx_target_text").input("import os\n\ndef main():\n    return 0\n").run()
    at.number_input(key="mx_tm_per_group").set_value(40).run()
    assert not calls  # typing does not hash anything
    at.button(key="mx_tm_go").click().run()
    assert len(calls) == 1 and calls[0]["per_group"] == 40
    metrics = {m.label: m.value for m in at.metric}
    before = float(metrics["KL before (natural)"].split()[0])
    after = float(metrics["KL after"].split()[0])
    assert after < before  # code-like target: python-code gets the weight
    (plan,) = plans(at)
    w = dict(zip(plan["group"], plan["weight"]))
    assert w["python-code"] == max(w.values())
    assert metrics["KL to target"] == metrics["KL after"]
    at.number_input(key="mx_p0_budget").set_value(1_000_000).run()  # reruns reuse the result
    at.toggle(key="mx_anneal").set_value(True).run()
    assert len(calls) == 1 and not at.exception


def test_materialise_as_a_job_from_the_page(demo_workspace_copy, monkeypatch):
    ws = demo_workspace_copy
    at = open_mixtures(ws.path, monkeypatch, src="licenses,austen")
    at.number_input(key="mx_p0_budget").set_value(200_000).run()
    at.text_input(key="mx_save_name").input("job-mix").run()
    at.button(key="mx_save").click().run()
    at.number_input(key="mx_mat_rows").set_value(100).run()
    at.button(key="mx_mat_go").click().run()
    assert not at.exception and "Queued job" in at.success[-1].value
    store = JobStore(ws.path)
    for _ in range(600):
        job = store.list()[0]
        if job.status in ("done", "failed"):
            break
        time.sleep(0.2)
    assert job.status == "done", store.log(job.id)
    assert job.args[:3] == ["mix", "materialize", "job-mix@1"]
    out = Path(job.args[job.args.index("--out") + 1])
    assert out.parent == ws.path / "exports"
    shards = sorted((out / "main").glob("part-*.jsonl"))
    assert shards and (out / "main" / "samples.parquet").exists()
    assert job.progress["stage"].startswith("phase main") and job.progress["done"] == len(shards)


def test_quality_buckets_and_quality_diversity(demo_workspace_copy, monkeypatch):
    from analytics.mixture import quality_diversity_weights

    ws = demo_workspace_copy
    with ws.write(job="test signal") as con:  # a stand-in quality score, as a signal job writes
        con.execute(
            "INSERT INTO signal_compression SELECT doc_id, 'v-test', (n_tokens % 100) / 100.0, "
            "n_bytes FROM documents"
        )
        con.execute("INSERT INTO signals_catalog VALUES ('compression', 'v-test', '{}', now(), 1)")
    at = open_mixtures(ws.path, monkeypatch, src="licenses,austen,python-code")
    labels = at.selectbox(key="mx_group_by").options
    assert "Quality bucket: compression_ratio" in labels
    at.selectbox(key="mx_group_by").set_value("compression_ratio").run()
    at.number_input(key="mx_bin_compression_ratio").set_value(0.25).run()
    (plan,) = plans(at)
    assert sorted(plan["group"]) == ["0.0", "0.25", "0.5", "0.75"]

    at.selectbox(key="mx_group_by").set_value("source").run()
    assert "Quality-diversity (QuaDMix-style)" in at.selectbox(key="mx_p0_strategy").options
    at.selectbox(key="mx_p0_strategy").set_value("quality_diversity").run()
    at.slider(key="mx_p0_qd_thr").set_value(0.5).run()
    assert not plans(at)  # nothing computed before the click
    at.button(key="mx_p0_qd_go").click().run()
    assert not at.exception
    (plan,) = plans(at)
    docs = (
        ws.cursor()
        .execute(
            'SELECT source AS "group", (n_tokens % 100) / 100.0 AS quality, n_tokens '
            "FROM documents WHERE source IN ('licenses', 'austen', 'python-code')"
        )
        .df()
    )
    want = quality_diversity_weights(docs, thresholds=0.5)
    assert dict(zip(plan["group"], plan["weight"])) == pytest.approx(dict(want), abs=1e-9)
    at.selectbox(key="mx_p0_order").set_value("ascending-quality").run()
    assert at.selectbox(key="mx_p0_order_col").value == "compression_ratio"
    at.text_input(key="mx_save_name").input("qd").run()
    at.button(key="mx_save").click().run()
    saved = load_mixture(ws.cursor(), "qd")
    assert saved.phases[0].order == "ascending-quality"
    assert saved.phases[0].groups[0].method.name == "quality_diversity"
    # reopening: a strategy that needs inputs the link does not carry comes back as its weights
    again = open_mixtures(ws.path, monkeypatch, mix="qd@1")
    assert again.selectbox(key="mx_p0_strategy").value == "manual"
    assert again.selectbox(key="mx_p0_order").value == "ascending-quality"
    (plan,) = plans(again)
    assert dict(zip(plan["group"], plan["weight"])) == pytest.approx(dict(want), abs=1e-9)
    again.text_input(key="mx_save_name").input("qd").run()
    again.button(key="mx_save").click().run()
    method = load_mixture(ws.cursor(), "qd", 2).phases[0].groups[0].method
    assert method.name == "manual" and method.params["origin"] == "qd@1 (quality_diversity)"


def test_regression_from_uploaded_proxy_runs(demo_workspace, monkeypatch):
    import numpy as np
    import pandas as pd

    calls = []
    real = mb.fit_proxy_runs

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(mb, "fit_proxy_runs", counting)
    groups = ["austen", "licenses", "python-code"]
    rng = np.random.default_rng(2)
    runs = pd.DataFrame(rng.dirichlet([1, 1, 1], size=16), columns=groups)
    runs["val_loss"] = 2.5 - 0.7 * runs["python-code"] + rng.normal(0, 0.01, 16)
    csv = runs.to_csv(index=False).encode()
    at = open_mixtures(demo_workspace.path, monkeypatch, src=",".join(groups))
    at.selectbox(key="mx_p0_strategy").set_value("regmix").run()
    at.file_uploader(key="mx_p0_runs").set_value(("runs.csv", csv, "text/csv")).run()
    assert not calls and not plans(at)  # uploading alone fits nothing
    at.button(key="mx_p0_fit").click().run()
    assert not at.exception and calls == ["regmix"]
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Spearman (held out)"]) > 0.5
    # the page says which Dirichlet drew RegMix's candidates (the authors' by default)
    shown = [c.value.replace("\\", "") for c in at.caption]  # plain() escapes Markdown
    assert any("Candidates ~ Dirichlet(1 x token distribution prior)" in c for c in shown)
    (plan,) = plans(at)
    w = dict(zip(plan["group"], plan["weight"]))
    assert max(w, key=w.get) == "python-code" and sum(w.values()) == pytest.approx(1)
    at.number_input(key="mx_p0_budget").set_value(500_000).run()  # a rerun does not refit
    assert calls == ["regmix"] and plans(at)[0]["target_tokens"].sum() == 500_000


def test_opening_a_link_sets_widgets_without_the_session_state_warning(
    demo_workspace_copy, monkeypatch, caplog
):
    import logging

    from streamlit.elements.lib import policies
    from streamlit.runtime.state import get_session_state

    ws = demo_workspace_copy
    at = open_mixtures(ws.path, monkeypatch, src=",".join(SOURCES))
    at.selectbox(key="mx_p0_strategy").set_value("temperature").run()
    at.number_input(key="mx_p0_T").set_value(3.0).run()
    at.text_input(key="mx_save_name").input("warn-mix").run()
    at.button(key="mx_save").click().run()
    assert not at.exception and not at.error
    # AppTest has no Runtime, where Streamlit checks the rule: let it check, and log afresh
    monkeypatch.setattr(policies.runtime, "exists", lambda: True)
    monkeypatch.setattr(policies, "get_session_state", get_session_state)
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)
    with caplog.at_level(logging.WARNING):
        again = open_mixtures(ws.path, monkeypatch, mix="warn-mix@1")
    assert again.number_input(key="mx_p0_T").value == 3.0
    assert not [r for r in caplog.records if "created with a default value" in r.getMessage()]


def test_unimax_has_one_max_epochs_field(demo_workspace, monkeypatch):
    from analytics.mixture import unimax_weights

    at = open_mixtures(demo_workspace.path, monkeypatch, src=",".join(SOURCES))
    at.selectbox(key="mx_p0_strategy").set_value("unimax").run()
    assert not at.exception
    fields = [n for n in at.number_input if "epochs" in n.label.lower()]
    assert [n.key for n in fields] == ["mx_p0_unimax_epochs"]
    at.number_input(key="mx_p0_unimax_epochs").set_value(1.5).run()
    at.number_input(key="mx_p0_budget").set_value(2_000_000).run()
    (plan,) = plans(at)
    want = unimax_weights(tokens_by_sql(demo_workspace), budget=2_000_000, max_epochs=1.5)
    assert dict(zip(plan["group"], plan["weight"])) == pytest.approx(dict(want), abs=1e-9)
    assert plan["epochs"].max() <= 1.5 * (1 + 1e-5)  # whole tokens round the last digits

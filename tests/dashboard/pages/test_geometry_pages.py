"""AppTest of the Geometry page on the small geometry workspace: widgets by key, and the
numbers shown equal the stored ones (read back with independent SQL)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from analytics.jobs import JobStore
from analytics.workspace import Workspace
from tests.dashboard.conftest import APP
from tests.workspaces.geometry import copy_of, small_path


@pytest.fixture
def open_page(monkeypatch):
    def make(ws: Workspace, **query) -> AppTest:
        monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(ws.path))
        at = AppTest.from_file(APP, default_timeout=120)
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        at.switch_page("app_pages/geometry.py").run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return make


def sel(at, name: str):
    """A selector below Run: keyed by the run, so each run gets fresh widgets."""
    return at.selectbox(key=f"{name}:{at.selectbox(key='geo_run').value}")


def numbers(at) -> dict[str, float]:
    """The 'numbers at the selection' table: metric label -> value."""
    for el in at.dataframe:
        df = el.value
        if list(df.columns) == ["metric", "value"]:
            return dict(zip(df["metric"], df["value"], strict=True))
    raise AssertionError("no numbers table on the page")


def stored(ws, run, step, layer, group, metric, variant) -> float:
    return (
        ws.cursor()
        .execute(
            """SELECT value FROM geometry_metrics WHERE run = ? AND step = ? AND layer = ?
               AND "group" = ? AND metric = ? AND variant = ?""",
            [run, step, layer, group, metric, variant],
        )
        .fetchall()[0][0]
    )


def test_defaults_show_the_final_layer_of_the_last_checkpoint(open_page, geometry_ws):
    at = open_page(geometry_ws, run="tiny")
    assert at.selectbox(key="geo_run").value == "tiny"
    assert sel(at, "geo_layer").value == 2
    assert sel(at, "geo_ckpt").value == "checkpoint-8"
    shown = numbers(at)
    want = stored(geometry_ws, "tiny", 8, 2, "all", "rankme", "singular")
    assert shown["RankMe (singular values, uncentred, eps=1e-07)"] == pytest.approx(want)
    want = stored(geometry_ws, "tiny", 8, 2, "all", "rankme", "covariance")
    assert shown["RankMe (covariance eigenvalues, top 2048, eps=1e-07)"] == pytest.approx(want)
    # every number names its variant and parameters
    assert any(k.startswith("alpha-ReQ (covariance, fit ranks 11:100, 1/k weights") for k in shown)
    assert "Settings: probe of 64 documents stratified by source" in " ".join(
        c.value for c in at.caption
    )


def test_select_layer_checkpoint_group_metric_by_key(open_page, geometry_ws):
    at = open_page(geometry_ws, run="tiny")
    sel(at, "geo_layer").select(1).run()
    sel(at, "geo_ckpt").select("checkpoint-4").run()
    sel(at, "geo_group").select("python-doc").run()
    sel(at, "geo_metric").select("alpha_req/covariance").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = numbers(at)
    alpha = next(v for k, v in shown.items() if k.startswith("alpha-ReQ"))
    assert alpha == pytest.approx(
        stored(geometry_ws, "tiny", 4, 1, "python-doc", "alpha_req", "covariance")
    )
    pr = shown["participation ratio (covariance eigenvalues)"]
    assert pr == pytest.approx(
        stored(geometry_ws, "tiny", 4, 1, "python-doc", "participation_ratio", "covariance")
    )
    # the view is in the URL, so it can be shared
    qp = {k: (v if isinstance(v, str) else v[0]) for k, v in at.query_params.items()}
    assert qp["layer"] == "1" and qp["ckpt"] == "checkpoint-4" and qp["group"] == "python-doc"
    assert qp["metric"] == "alpha_req/covariance"
    # the phase table is shown for RankMe / alpha with the rule in a caption
    rule = next(c.value for c in at.caption if "Phases (analytics.geometry.phases)" in c.value)
    assert "is mixed" in rule and "range over the steps after the collapse" in rule
    # the conventions behind the numbers, where the numbers are shown
    caps = " ".join(c.value for c in at.caption)
    assert "first token is not predicted: its loss and its bytes are both left out" in caps
    assert "keep at least 10 eigenvalues in the tail (min_tail)" in caps
    assert "R^2 is the ordinary (unweighted) R^2 of that same line over the same points" in caps
    # CKA across layers, debiased
    at.radio(key="geo_cka_kind").set_value("layers").run()
    at.radio(key="geo_cka_value").set_value("debiased").run()
    assert not at.exception


def test_url_opens_the_shared_view(open_page, geometry_ws):
    at = open_page(
        geometry_ws, run="tiny", layer="0", ckpt="checkpoint-2", metric="rankme/singular"
    )
    assert sel(at, "geo_layer").value == 0
    assert sel(at, "geo_ckpt").value == "checkpoint-2"
    shown = numbers(at)
    assert shown["RankMe (singular values, uncentred, eps=1e-07)"] == pytest.approx(
        stored(geometry_ws, "tiny", 2, 0, "all", "rankme", "singular")
    )


def test_pretrained_model_is_shown_per_layer(open_page, geometry_ws):
    at = open_page(geometry_ws, run="minilm")
    assert sel(at, "geo_layer").value == 6
    assert "A single checkpoint (no training steps): the views are per layer." in [
        c.value for c in at.caption
    ]
    shown = numbers(at)
    cur = geometry_ws.cursor()
    want = cur.execute(
        """SELECT value FROM geometry_metrics WHERE run = 'minilm' AND layer = 6
           AND "group" = 'all' AND metric = 'anisotropy'"""
    ).fetchall()[0][0]
    assert shown["anisotropy (mean off-diagonal cosine)"] == pytest.approx(want)


def test_empty_workspace_offers_the_demo_series_job(
    open_page, tmp_path_factory, tmp_path, monkeypatch
):
    ws = copy_of(small_path(tmp_path_factory), tmp_path / "ws")
    monkeypatch.setattr(JobStore, "ensure_worker", lambda self: None)  # don't train in a test
    at = open_page(ws)
    assert "No checkpoint run in this workspace yet" in at.info[0].value
    assert any("mixscope checkpoints add" in c.value for c in at.code)
    at.button(key="geo_demo_queue").click().run()
    assert not at.exception
    assert "Queued job" in at.success[0].value
    jobs = JobStore(ws.path).list()
    assert len(jobs) == 1 and jobs[0].args == ["demo-series"]
    at.run()  # the pending job is shown instead of a second button
    assert "geo_demo_queue" not in [b.key for b in at.button]
    assert any("is queued" in c.value for c in at.caption)
    JobStore(ws.path).cancel(jobs[0].id)


def test_registered_run_can_be_computed_from_the_page(
    open_page, tmp_path_factory, tmp_path, monkeypatch
):
    from analytics.geometry.store import add_run
    from tests.workspaces.geometry import series_path

    ws = copy_of(small_path(tmp_path_factory), tmp_path / "ws")
    with ws.write(job="test: register") as con:
        add_run(con, "tiny", [series_path(tmp_path_factory)])
    monkeypatch.setattr(JobStore, "ensure_worker", lambda self: None)
    at = open_page(ws)
    assert "Registered but not computed yet: tiny." in at.info[0].value
    at.button(key="geo_compute_tiny").click().run()
    assert not at.exception and "Queued job" in at.success[0].value
    jobs = JobStore(ws.path).list()
    assert [j.args for j in jobs] == [["geometry", "tiny"]]
    JobStore(ws.path).cancel(jobs[0].id)


def test_switching_run_refreshes_setting_and_layer_labels(open_page, geometry_ws):
    from analytics.geometry import views

    at = open_page(geometry_ws, run="tiny")
    assert sel(at, "geo_layer").value == 2
    assert "2 (final)" in sel(at, "geo_layer").options
    at.selectbox(key="geo_run").select("minilm").run()
    assert not at.exception, [e.value for e in at.exception]
    layer = sel(at, "geo_layer")
    # the new run's layers, labelled for the new run, its final layer chosen by default
    assert layer.value == 6
    assert "6 (final)" in layer.options and "2 (final)" not in layer.options
    cfgs = views.configs(geometry_ws.cursor(), run="minilm")
    cfg = sel(at, "geo_config")
    assert len(cfg.options) == len(cfgs)
    for label, n in zip(cfg.options, cfgs["n_checkpoints"], strict=True):
        assert label.endswith(f"{n} checkpoint(s)")
    assert cfg.value in set(cfgs["config"])
    # and back: the old run's final layer again, labelled for it
    at.selectbox(key="geo_run").select("tiny").run()
    assert sel(at, "geo_layer").value == 2
    assert "6 (final)" not in sel(at, "geo_layer").options

"""Lineage: `checkpoints add RUN PATH --mixture NAME@V` and `checkpoints link` record which runs
were trained on which mixture version; `mix show`, the Mixtures page and the Geometry page's
mixture comparison list them; the numbers compared are the stored ones (independent SQL)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from analytics.mixture import MixtureError, lineage
from tests.dashboard.conftest import APP
from tests.workspaces.geometry import (
    copy_of,
    geometry_path,
    mixscope,
    series_path,
)


@pytest.fixture(scope="module")
def lineage_ws(tmp_path_factory):
    """The geometry workspace with mixtures a@1, a@2 (natural, uniform) and b@1; run tiny
    linked to a@1 by `checkpoints add --mixture`, minilm to b@1 by `checkpoints link`."""
    ws = copy_of(geometry_path(tmp_path_factory), tmp_path_factory.mktemp("lin") / "ws")
    for name, strategy in (("a", "natural"), ("a", "uniform"), ("b", "natural")):
        r = mixscope(
            "mix", "create", name, "--group-by", "source", "--budget", "20000",
            "--strategy", strategy, ws=ws.path,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    r = mixscope(
        "checkpoints", "add", "tiny", series_path(tmp_path_factory), "--mixture", "a@1",
        ws=ws.path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "linked run tiny to mixture a@1" in r.stderr.replace("\n", " ")
    r = mixscope("checkpoints", "link", "minilm", "--mixture", "b", ws=ws.path)  # latest: b@1
    assert r.returncode == 0, r.stderr
    return ws


def test_links_listed_by_cli_and_library(lineage_ws):
    ws = lineage_ws
    r = mixscope("mix", "show", "a@1", ws=ws.path)
    assert r.returncode == 0 and "tiny" in r.stdout + r.stderr
    r = mixscope("mix", "show", "a@2", ws=ws.path)
    assert "none linked" in (r.stdout + r.stderr).replace("\n", " ")
    cur = ws.cursor()
    rows = cur.execute("SELECT name, version, run, kind FROM mixture_runs ORDER BY name").fetchall()
    assert rows == [("a", 1, "tiny", "trained"), ("b", 1, "minilm", "trained")]
    got = lineage.runs_of(cur, "a", 1)
    assert list(got["run"]) == ["tiny"] and int(got["checkpoints"].iloc[0]) == 4
    assert lineage.linked_versions(cur) == ["a@1", "b@1"]
    assert list(lineage.mixtures_of(cur, "minilm")["name"]) == ["b"]


def test_unknown_mixture_is_one_line_exit_2_and_nothing_registered(lineage_ws, tmp_path_factory):
    ws = lineage_ws
    for args in (
        ("checkpoints", "add", "tiny2", series_path(tmp_path_factory), "--mixture", "a@9"),
        ("checkpoints", "add", "tiny2", series_path(tmp_path_factory), "--mixture", "zz"),
        ("checkpoints", "link", "tiny2", "--mixture", "a@9"),
        ("mix", "show", "a@9"),
    ):
        r = mixscope(*args, ws=ws.path)
        lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    regs = ws.cursor().execute("SELECT count(*) FROM geometry_runs WHERE run = 'tiny2'").fetchone()
    assert regs[0] == 0


def test_link_run_api_is_idempotent_and_validates(lineage_ws, tmp_path):
    ws = copy_of(lineage_ws.path, tmp_path / "ws")
    with ws.write(job="link") as con:
        assert lineage.link_run(con, "a", 2, "proxy-3", kind="proxy", metrics={"bpb": 1.5}) == 2
        lineage.link_run(con, "a", 2, "proxy-3", kind="proxy", metrics={"bpb": 1.25})
        with pytest.raises(MixtureError, match="a@7"):
            lineage.link_run(con, "a", 7, "proxy-3")
        with pytest.raises(MixtureError, match="kind"):
            lineage.link_run(con, "a", 2, "proxy-3", kind="other")
        with pytest.raises(MixtureError, match="run"):
            lineage.link_run(con, "a", 2, "../etc")
    got = lineage.runs_of(ws.cursor(), "a", 2)
    assert len(got) == 1 and '"bpb": 1.25' in got["metrics"].iloc[0]


def _stored(cur, run, metric):
    (config,) = cur.execute(
        "SELECT config FROM geometry_results WHERE run = ? ORDER BY computed_at DESC LIMIT 1",
        [run],
    ).fetchone()
    return cur.execute(
        """SELECT value FROM geometry_metrics m WHERE run = ? AND metric = ?
           AND variant = 'covariance' AND "group" = 'all'
           AND cache_key IN (SELECT cache_key FROM geometry_results WHERE run = ? AND config = ?)
           ORDER BY step DESC, layer DESC LIMIT 1""",
        [run, metric, run, config],
    ).fetchone()[0]


def test_compare_mixtures_reads_the_stored_numbers(lineage_ws):
    cur = lineage_ws.cursor()
    res = lineage.compare_mixtures(cur, "a@1", "b@1")
    s = res["summary"].set_index("run")
    assert list(s.index) == ["tiny", "minilm"] and list(s["mixture"]) == ["a@1", "b@1"]
    for run in ("tiny", "minilm"):
        assert s.loc[run, "rankme"] == pytest.approx(_stored(cur, run, "rankme"))
        assert s.loc[run, "alpha_req"] == pytest.approx(_stored(cur, run, "alpha_req"))
    bpb = res["bpb"].set_index("group")
    want = dict(
        cur.execute(
            """SELECT "group", bits_per_byte FROM geometry_loss WHERE run = 'tiny'
               AND step = (SELECT max(step) FROM geometry_loss WHERE run = 'tiny')"""
        ).fetchall()
    )
    assert set(bpb.index) == set(want) and len(want) >= 4
    for g, v in want.items():
        assert bpb.loc[g, "a@1 · tiny"] == pytest.approx(v)
    with pytest.raises(MixtureError):
        lineage.compare_mixtures(cur, "a@1", "nope@1")


def _page(ws, monkeypatch, page, **query):
    monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(ws.path))
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_geometry_page_compares_runs_by_mixture(lineage_ws, monkeypatch):
    at = _page(lineage_ws, monkeypatch, "app_pages/geometry.py", mixa="a@1", mixb="b@1")
    assert at.selectbox(key="geo_mix_a").value == "a@1"
    assert at.selectbox(key="geo_mix_b").value == "b@1"
    tables = {el.key: el.value for el in at.dataframe if getattr(el, "key", None)}
    summary = tables.get("geo_mix_summary")
    if summary is None:  # AppTest may not expose keys on dataframes: find by columns
        summary = next(el.value for el in at.dataframe if "alpha_req" in el.value.columns)
    assert list(summary["run"]) == ["tiny", "minilm"]
    cur = lineage_ws.cursor()
    assert summary["rankme"].iloc[0] == pytest.approx(_stored(cur, "tiny", "rankme"))


def test_mixtures_page_lists_linked_runs_and_dsir_panel(lineage_ws, monkeypatch):
    at = _page(lineage_ws, monkeypatch, "app_pages/mixtures.py", mix="a@1")
    frames = [el.value for el in at.dataframe]
    runs = next(f for f in frames if "checkpoint_path" in f.columns)
    assert list(runs["run"]) == ["tiny"] and int(runs["checkpoints"].iloc[0]) == 4
    assert at.button(key="mx_dsir_go") is not None
    # DSIR without a target: one plain error, nothing queued
    at.text_input(key="mx_dsir_name").input("py-like").run()
    at.button(key="mx_dsir_go").click().run()
    assert any("target file" in e.value for e in at.error)

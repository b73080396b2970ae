"""AppTest of the Map and Search pages on the small map workspace (fake embedder); expected
numbers come from independent SQL."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.filters import DocFilter
from analytics.jobs import JobStore
from analytics.workspace import Workspace
from tests.dashboard.conftest import APP, qp
from tests.workspaces.maps import (
    KEY,
    PER_SOURCE,
    copy_of,
    count,
    map_path,
    rows,
    small_docs_path,
)

N_DOCS = 17 * PER_SOURCE + 17
SAMPLE = 150
_SAMPLE_CACHE: dict[str, Path] = {}


def sample_map_path(tmp_path_factory) -> Path:
    """The map workspace plus a second, newer map of a seeded sample of 150 documents."""
    if "p" not in _SAMPLE_CACHE:
        from analytics.maps import compute_map, publish_map

        dst = tmp_path_factory.mktemp("map_sample") / "ws"
        shutil.copytree(map_path(tmp_path_factory), dst)
        ws = Workspace.open(dst)
        publish_map(ws, compute_map(ws, KEY, params={"max_points": SAMPLE, "n_clusters": 5}))
        _SAMPLE_CACHE["p"] = dst
    return _SAMPLE_CACHE["p"]


@pytest.fixture(scope="session")
def sample_ws(tmp_path_factory):
    return Workspace.open(sample_map_path(tmp_path_factory))


@pytest.fixture
def open_app(monkeypatch):
    def make(ws, page: str, **query) -> AppTest:
        monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(getattr(ws, "path", ws)))
        at = AppTest.from_file(APP, default_timeout=120)
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return make


def figure(at) -> dict:
    charts = at.get("plotly_chart")
    assert charts, "no chart on the page"
    return json.loads(charts[0].proto.spec)


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def table_with(at, *columns):
    for el in at.dataframe:
        value = getattr(el.value, "data", el.value)
        if all(c in value.columns for c in columns):
            return value
    raise AssertionError(f"no table with columns {columns}")


def select_on_map(at, doc_ids):
    at.session_state["map_scatter"] = {
        "selection": {
            "points": [
                {"customdata": d, "curve_number": 0, "point_index": i}
                for i, d in enumerate(doc_ids)
            ],  # fmt: skip
            "point_indices": list(range(len(doc_ids))),
            "box": [],
            "lasso": [],
        }
    }
    return at.run()


# ---------------------------------------------------------------------- Map
def test_map_colour_by_and_all_documents(open_app, map_ws):
    at = open_app(map_ws, "map")
    captions = " ".join(c.value for c in at.caption)
    assert f"all {N_DOCS:,} documents" in captions and "sample of" not in captions
    fig = figure(at)
    assert sum(len(t["customdata"]) for t in fig["data"]) == N_DOCS
    n_clusters = rows(map_ws, "SELECT count(*) FROM cluster_labels")[0][0]
    assert len(fig["data"]) == n_clusters  # one trace per cluster
    labels = [a["text"] for a in fig["layout"]["annotations"]]  # at the clusters' centres
    names = {t["name"] for t in fig["data"]}
    assert 2 <= len(labels) <= n_clusters and set(labels) <= names  # overlapping ones skipped
    at.selectbox(key="map_color").set_value("source").run()
    assert not at.exception
    fig = figure(at)
    names = {t["name"] for t in fig["data"]}
    assert names == {r[0] for r in rows(map_ws, "SELECT DISTINCT source FROM documents")}
    per = {t["name"]: len(t["customdata"]) for t in fig["data"]}
    assert per["licenses"] == 17 and per["bible-kjv"] == PER_SOURCE
    assert qp(at, "color") == "source"
    # hover text is escaped: no raw markup from documents reaches Plotly
    hover = " ".join(h for t in fig["data"] for h in t["hovertext"])
    assert "<script" not in hover.lower()


def test_map_of_a_sample_says_so(open_app, sample_ws):
    at = open_app(sample_ws, "map")
    captions = " ".join(c.value for c in at.caption)
    assert f"sample of {SAMPLE} of {N_DOCS:,} documents" in captions
    assert sum(len(t["customdata"]) for t in figure(at)["data"]) == SAMPLE
    maps = rows(sample_ws, "SELECT map_id FROM maps ORDER BY created_at")
    at.selectbox(key="map_pick").set_value(maps[0][0]).run()  # the older, full map
    assert f"all {N_DOCS:,} documents" in " ".join(c.value for c in at.caption)
    assert qp(at, "map") == maps[0][0]


def test_selection_becomes_a_filter_with_the_right_count(open_app, tmp_path_factory, tmp_path):
    ws = copy_of(map_path(tmp_path_factory), tmp_path / "ws")
    at = open_app(ws, "map")
    picked = [r[0] for r in rows(ws, "SELECT doc_id FROM documents WHERE source IN "
                                 "('gcide', 'austen') ORDER BY doc_id")]  # fmt: skip
    at = select_on_map(at, picked)
    assert not at.exception, [e.value for e in at.exception]
    assert metric(at, "Selected documents") == f"{len(picked):,}"
    at.button(key="map_use_selection").click().run()
    assert not at.exception, [e.value for e in at.exception]
    c = qp(at, "c")
    assert c and c.startswith("selection.") and c.endswith(".doc_id.in.")
    flt = DocFilter.from_params({"c": c})
    assert count(ws, flt) == len(picked) == 2 * PER_SOURCE
    # the map now shows only the selection, and Explore counts the same documents
    assert sum(len(t["customdata"]) for t in figure(at)["data"]) == len(picked)
    explore = open_app(ws, "explore", c=c)
    assert metric(explore, "Documents") == f"{len(picked):,}"


def test_cluster_filter_from_the_clusters_table(open_app, map_ws):
    at = open_app(map_ws, "map")
    map_id = rows(map_ws, "SELECT map_id FROM maps")[0][0]
    at.multiselect(key="map_pick_clusters").set_value([0, 2]).run()
    at.button(key="map_use_clusters").click().run()
    assert not at.exception
    assert qp(at, "c") == f"cluster.{map_id}.cluster.in.0,2"
    want = rows(map_ws, "SELECT count(*) FROM doc_clusters WHERE cluster IN (0, 2)")[0][0]
    assert count(map_ws, DocFilter.from_params({"c": qp(at, "c")})) == want
    assert sum(len(t["customdata"]) for t in figure(at)["data"]) == want


def test_diversity_duplicates_and_target_panels(open_app, map_ws):
    at = open_app(map_ws, "map")
    div = table_with(at, "source", "cluster entropy (normalised)")
    assert len(div) == 19 and div.iloc[-1]["source"] == "(all)"
    assert div["documents on the map"].iloc[:-1].sum() == N_DOCS
    assert div["cluster entropy (normalised)"].between(0, 1).all()
    assert "of 357 documents" in metric(at, "Semantic near-duplicates")
    at.text_area(key="map_target_text").input(
        "In the beginning God created the heaven and the earth.\n\n"
        "And the LORD said unto Moses, speak unto the children of Israel."
    ).run()
    at.button(key="map_target_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    sim = table_with(at, "source", "centroid_cosine", "MMD²")
    assert len(sim) == 18 and sim.iloc[0]["source"] == "bible-kjv"  # sorted by cosine


def test_map_page_without_a_map_shows_the_commands(open_app, tmp_path_factory, tmp_path):
    ws = copy_of(small_docs_path(tmp_path_factory), tmp_path / "ws")
    at = open_app(ws, "map")
    code = " ".join(c.value for c in at.code)
    assert "mixscope embed" in code and "mixscope map" in code
    assert "--sample" not in code  # 357 documents: embed them all
    assert at.button(key="map_queue").label.startswith("Embed a sample and draw the map")


@pytest.mark.slow
def test_map_jobs_from_the_page(open_app, tmp_path_factory, tmp_path, monkeypatch):
    """The editor's button queues `embed` then `map`; when both finish, the map appears."""
    monkeypatch.setenv("MIXSCOPE_EMBED_MODEL", "fake")
    ws = copy_of(small_docs_path(tmp_path_factory), tmp_path / "ws")
    at = open_app(ws, "map")
    at.button(key="map_queue").click().run()
    assert not at.exception and "Queued 2 job(s)" in at.success[0].value
    store = JobStore(ws.path)
    deadline = time.time() + 240
    while time.time() < deadline:
        jobs = store.list()
        if len(jobs) == 2 and all(j.status in ("done", "failed") for j in jobs):
            break
        time.sleep(0.5)
    assert [j.args for j in sorted(jobs, key=lambda j: j.id)] == [["embed"], ["map"]]
    assert all(j.status == "done" for j in jobs), [store.log(j.id) for j in jobs]
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/map.py").run()
    assert not at.exception
    assert sum(len(t["customdata"]) for t in figure(at)["data"]) == N_DOCS


# ---------------------------------------------------------------------- Search
def test_search_query_gives_a_results_table(open_app, map_ws):
    doc_id, text = rows(
        map_ws,
        "SELECT doc_id, text FROM documents "
        "JOIN document_text USING (doc_id) WHERE source = 'fortunes-en' "
        "AND length(text) BETWEEN 60 AND 200 ORDER BY doc_id LIMIT 1",
    )[0]
    at = open_app(map_ws, "search")
    at.text_input(key="search_q").input(text).run()
    assert not at.exception, [e.value for e in at.exception]
    res = table_with(at, "rank", "score", "doc_id", "snippet")
    assert len(res) == 10 and res.iloc[0]["doc_id"] == doc_id
    assert res.iloc[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert res["score"].is_monotonic_decreasing
    assert qp(at, "sq") == text.strip()


def test_search_more_like_this_and_filter(open_app, map_ws):
    doc_id = rows(map_ws, "SELECT min(doc_id) FROM documents WHERE source = 'python-doc'")[0][0]
    at = open_app(map_ws, "search", doc=doc_id)
    at.button(key="search_more_like").click().run()
    assert not at.exception and qp(at, "like") == doc_id
    res = table_with(at, "rank", "score", "doc_id")
    assert len(res) == 10 and doc_id not in res["doc_id"].tolist()
    # with a filter in the URL, results are only documents that match it
    at = open_app(map_ws, "search", sq="python function object", src="python-doc")
    res = table_with(at, "rank", "score", "doc_id", "source")
    assert len(res) == 10 and set(res["source"]) == {"python-doc"}


def test_search_without_embeddings_says_what_to_run(open_app, tmp_path_factory, tmp_path):
    ws = copy_of(small_docs_path(tmp_path_factory), tmp_path / "ws")
    at = open_app(ws, "search")
    assert "mixscope embed" in " ".join(c.value for c in at.code)
    assert not at.text_input


def test_a_bad_map_condition_in_the_link_is_ignored_with_a_warning(open_app, map_ws):
    at = open_app(map_ws, "map", c="cluster.latest.cluster.in.x,y")
    assert any("Ignoring a condition" in w.value for w in at.warning)
    assert sum(len(t["customdata"]) for t in figure(at)["data"]) == N_DOCS


def test_search_within_a_cluster_is_exact(open_app, map_ws):
    members = {r[0] for r in rows(map_ws, "SELECT doc_id FROM doc_clusters WHERE cluster = 5")}
    at = open_app(map_ws, "search", sq="the", c="cluster.latest.cluster.eq.5")
    at.number_input(key="search_k").set_value(100).run()
    res = table_with(at, "rank", "score", "doc_id")
    assert set(res["doc_id"]) == members  # every member, and only members


def test_more_like_this_keeps_the_clicked_document(open_app, map_ws):
    at = open_app(map_ws, "search", sq="python function object")
    res = table_with(at, "rank", "score", "doc_id")
    key = next(el.key for el in at.dataframe if el.key and el.key.startswith("search_table"))
    at.session_state[key] = {"selection": {"rows": [3], "columns": [], "cells": []}}
    at.run()
    clicked = res.iloc[3]["doc_id"]
    assert qp(at, "doc") == clicked
    # the viewer under the results shows the document's own signals (none computed here)
    assert any(c.value.startswith("signals (current version") for c in at.caption)
    assert "No signal has scored this document (mixscope signals)." in [t.value for t in at.text]
    at.button(key="search_more_like").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert qp(at, "like") == clicked
    # the new table's row 3 is another document; the one clicked stays open
    new = table_with(at, "rank", "score", "doc_id")
    assert new.iloc[3]["doc_id"] != clicked
    assert qp(at, "doc") == clicked
    # the viewer under the results shows the document's own signals (none computed here)
    assert any(c.value.startswith("signals (current version") for c in at.caption)
    assert "No signal has scored this document (mixscope signals)." in [t.value for t in at.text]

"""One AppTest per page, interacting by widget key."""

from __future__ import annotations

import json

from analytics import overview
from analytics.filters import DocFilter


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_overview_numbers_and_basis_switch(app, demo_workspace):
    at = app()
    tot = overview.totals(demo_workspace.cursor())
    assert metric(at, "Documents") == f"{int(tot['documents']):,}"
    assert int(metric(at, "Sources")) == tot["sources"]
    at.radio(key="ov_basis").set_value("documents").run()
    at.radio(key="ov_kind").set_value("sunburst").run()
    assert not at.exception
    shares = at.dataframe[0].value
    assert "documents" in shares.columns
    assert abs(shares["share"].sum() - 1) < 1e-9


def chart(at, key):
    for el in at.get("plotly_chart"):
        if el.proto.id and key in el.proto.id or getattr(el, "key", None) == key:
            return json.loads(el.proto.spec)
    raise AssertionError(f"no chart with key {key}")


def test_overview_length_boxes_one_per_source_with_names(app, demo_workspace):
    at = app()
    fig = chart(at, "ov_lengths")
    sources = set(overview.facet_values(demo_workspace.cursor(), "source"))
    boxes = [t for t in fig["data"] if t["type"] == "box"]
    assert {b["name"] for b in boxes} == sources
    # each box sits at its own category named after its source, not stacked at x=0
    xs = [tuple(b.get("x", ())) for b in boxes]
    assert all(x == (b["name"],) for x, b in zip(xs, boxes, strict=True))
    assert len(set(xs)) == len(sources)


def test_explore_filters_update_counts_and_url(app, demo_workspace):
    at = app("explore")
    facets = overview.facet_values(demo_workspace.cursor(), "source")
    src = facets[-1]
    at.multiselect(key="ex_source").set_value([src]).run()
    assert not at.exception
    want = overview.totals(demo_workspace.cursor(), DocFilter(source=(src,)))
    assert metric(at, "Documents") == f"{int(want['documents']):,}"
    assert at.query_params["src"] in (src, [src])
    at.number_input(key="ex_tmin").set_value(50).run()
    want = overview.totals(demo_workspace.cursor(), DocFilter(source=(src,), min_tokens=50))
    assert metric(at, "Documents") == f"{int(want['documents']):,}"


def test_explore_opens_from_a_shared_url_and_shows_a_document(app, demo_workspace):
    cur = demo_workspace.cursor()
    lang = overview.facet_values(cur, "lang")[1]
    doc_id = overview.documents_page(cur, DocFilter(lang=(lang,)), page_size=1)["doc_id"][0]
    at = app("explore", lang=lang, doc=doc_id)
    assert at.multiselect(key="ex_lang").value == [lang]
    want = overview.totals(cur, DocFilter(lang=(lang,)))
    assert metric(at, "Documents") == f"{int(want['documents']):,}"
    text = overview.document(cur, doc_id)["text"]
    assert any(c.value == text for c in at.code)


def test_sql_page_runs_and_refuses(app):
    at = app("sql")
    at.text_area(key="sql_text").set_value("SELECT count(*) AS n FROM documents").run()
    at.button(key="sql_run").click().run()
    assert not at.error and at.dataframe[0].value["n"][0] > 0
    at.text_area(key="sql_text").set_value("DROP TABLE documents").run()
    at.button(key="sql_run").click().run()
    assert "type DROP" in at.error[0].value
    at.text_area(key="sql_text").set_value("SELECT * FROM read_csv('/etc/passwd')").run()
    at.button(key="sql_run").click().run()
    assert "Refused" in at.error[0].value


def test_overview_is_also_served_at_slash_overview(app):
    at = app()
    pages = at._registered_pages.values()  # what st.navigation registered for URL look-ups
    alias = [p for p in pages if p.get("url_pathname") == "overview"]
    assert len(alias) == 1 and str(alias[0]["script_path"]).endswith("app_pages/overview.py")
    at.switch_page("app_pages/overview.py").run()  # the page registered as "overview"
    assert not at.exception and at.title[0].value == "Overview"
    assert metric(at, "Documents")

"""AppTest of the Signals, Concepts and Contamination pages and Explore's signal filters, on
the small signals workspace; expected numbers come from independent SQL / Python."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from analytics.jobs import JobStore
from analytics.workspace import Workspace
from tests.dashboard.conftest import APP
from tests.workspaces.signals import copy_of, small_unscored_path


@pytest.fixture
def open_app(monkeypatch):
    def make(ws: Workspace, page: str, **query) -> AppTest:
        monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(ws.path))
        at = AppTest.from_file(APP, default_timeout=120)
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return make


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def df(at, *columns):
    """The first table on the page having all these columns (tables are not widgets, so
    AppTest does not expose their keys)."""
    for el in at.dataframe:
        value = getattr(el.value, "data", el.value)  # a Styler exposes its frame as .data
        if all(c in value.columns for c in columns):
            return value
    raise AssertionError(f"no table with columns {columns}")


def displayed(at, *columns):
    """The first table with these columns as the page shows it (a Styler's display values)."""
    import pyarrow as pa

    for el in at.dataframe:
        value = getattr(el.value, "data", el.value)
        if all(c in value.columns for c in columns):
            styler = el.proto.arrow_data.styler
            assert styler.display_values, "the table has no display values (no formatting)"
            return pa.ipc.open_stream(styler.display_values).read_all().to_pandas()
    raise AssertionError(f"no table with columns {columns}")


def qp(at, key) -> str:
    value = at.query_params[key]
    return value if isinstance(value, str) else value[0]


def scalar(ws, sql, params=()):
    return ws.cursor().execute(sql, list(params)).fetchall()[0][0]


# ---------------------------------------------------------------------- Explore
def test_explore_signal_condition_from_url(open_app, signals_ws):
    c = (
        "signal.gopher_repetition.gopher_rep_pass.eq.true"
        "|signal.compression.compression_ratio.ge.0.35"
    )
    at = open_app(signals_ws, "explore", c=c)
    want = scalar(
        signals_ws,
        """SELECT count(*) FROM documents JOIN signal_gopher_repetition r USING (doc_id)
           JOIN signal_compression s USING (doc_id)
           WHERE r.gopher_rep_pass AND s.compression_ratio >= 0.35""",
    )
    assert metric(at, "Documents") == f"{want:,}"
    assert at.toggle(key="ex_sig_keep_gopher_repetition").value is True
    assert at.toggle(key="ex_sig_keep_c4_quality").value is False
    lo, _hi = at.slider(key="ex_sig_range_compression_ratio").value
    assert lo == pytest.approx(0.35)
    # one more toggle: the count and the URL follow
    at.toggle(key="ex_sig_keep_c4_quality").set_value(True).run()
    assert not at.exception
    want2 = scalar(
        signals_ws,
        """SELECT count(*) FROM documents JOIN signal_gopher_repetition r USING (doc_id)
           JOIN signal_compression s USING (doc_id) JOIN signal_c4_quality q USING (doc_id)
           WHERE r.gopher_rep_pass AND s.compression_ratio >= 0.35 AND q.c4_pass""",
    )
    assert metric(at, "Documents") == f"{want2:,}"
    assert "signal.c4_quality.c4_pass.eq.true" in qp(at, "c")


def test_explore_signals_expander_counts_the_conditions_it_applies(open_app, signals_ws):
    def label(at):
        return next(e.label for e in at.expander if e.label.startswith("Signals"))

    at = open_app(signals_ws, "explore", c="signal.gopher_repetition.gopher_rep_pass.eq.true")
    assert label(at) == "Signals · 1 condition active"
    at.toggle(key="ex_sig_keep_c4_quality").set_value(True).run()
    assert label(at) == "Signals · 2 conditions active"
    assert len(qp(at, "c").split("|")) == 2
    at.multiselect(key="ex_sig_in_detected_lang").set_value(["de"]).run()
    assert label(at) == "Signals · 3 conditions active"
    at.toggle(key="ex_sig_keep_gopher_repetition").set_value(False).run()
    at.toggle(key="ex_sig_keep_c4_quality").set_value(False).run()
    at.multiselect(key="ex_sig_in_detected_lang").set_value([]).run()
    assert label(at) == "Signals"
    assert not at.exception


def test_explore_language_multiselect(open_app, signals_ws):
    at = open_app(signals_ws, "explore")
    at.multiselect(key="ex_sig_in_detected_lang").set_value(["de", "fr"]).run()
    want = scalar(
        signals_ws, "SELECT count(*) FROM signal_language WHERE detected_lang IN ('de', 'fr')"
    )
    assert metric(at, "Documents") == f"{want:,}"
    assert qp(at, "c") == "signal.language.detected_lang.in.de,fr"


def test_explore_viewer_shows_the_documents_own_signals(open_app, signals_ws):
    at = open_app(signals_ws, "explore", doc="syn/a")
    shown = "\n".join(t.value for t in at.text)
    for sig, pass_col, reason_col in (
        ("gopher_quality", "gopher_quality_pass", "gopher_quality_reason"),
        ("c4_quality", "c4_pass", "c4_reason"),
        ("fineweb_quality", "fineweb_pass", "fineweb_reason"),
    ):
        ok, reason = (
            signals_ws.cursor()
            .execute(f"SELECT {pass_col}, {reason_col} FROM signal_{sig} WHERE doc_id = 'syn/a'")
            .fetchall()[0]
        )
        assert (f"{sig}: pass" if ok else f"{sig}: FAIL ({reason})") in shown
    lang, conf = (
        signals_ws.cursor()
        .execute(
            "SELECT detected_lang, detected_lang_conf FROM signal_language WHERE doc_id = 'syn/a'"
        )
        .fetchall()[0]
    )
    assert f"language: {lang} (confidence {conf:.2f})" in shown
    cluster, size = (
        signals_ws.cursor()
        .execute(
            "SELECT exact_dup_cluster, exact_dup_size FROM signal_exact_dup WHERE doc_id = 'syn/a'"
        )
        .fetchall()[0]
    )
    assert f"exact_dup: cluster {cluster}, {size} documents" in shown
    nums = df(at, "signal", "column", "value")
    ratio = scalar(
        signals_ws, "SELECT compression_ratio FROM signal_compression WHERE doc_id = 'syn/a'"
    )
    row = nums[(nums["signal"] == "compression") & (nums["column"] == "compression_ratio")]
    assert row["value"].tolist() == [f"{ratio:.4g}"]
    # the document's columns keep their types: numbers are numbers, not strings
    fields = json.loads(at.json[0].value)
    n_tokens = scalar(signals_ws, "SELECT n_tokens FROM documents WHERE doc_id = 'syn/a'")
    assert fields["n_tokens"] == n_tokens and isinstance(fields["n_tokens"], int)
    assert fields["doc_id"] == "syn/a"


def test_explore_viewer_highlights_the_text_term_escaped(open_app, signals_ws):
    doc = scalar(
        signals_ws,
        "SELECT min(doc_id) FROM document_text WHERE contains(text, '<') AND contains(text, '>')",
    )
    assert doc, "the fixture has a document with markup characters"
    at = open_app(signals_ws, "explore", doc="syn/a", q="COMMITTEE")
    body = " ".join(h.proto.body for h in at.get("html"))
    assert "<mark>committee</mark>" in body  # case-insensitive, the document's own casing
    assert body.count("<mark>") == 1
    # markup in the document (or the term) is shown escaped, never rendered
    at = open_app(signals_ws, "explore", doc=doc, q="<")
    body = " ".join(h.proto.body for h in at.get("html"))
    assert "<mark>&lt;</mark>" in body
    text = scalar(signals_ws, "SELECT text FROM document_text WHERE doc_id = ?", [doc])
    assert body.count("<mark>") == min(text.count("<"), 50)


def test_explore_without_signals_offers_the_job(open_app, tmp_path_factory, tmp_path):
    ws = copy_of(small_unscored_path(tmp_path_factory), tmp_path / "ws")
    at = open_app(ws, "explore")
    assert any("No signals are computed" in i.value for i in at.info)
    assert any(c.value == "mixscope signals run" for c in at.code)
    assert at.button(key="ex_sig_run")


# ---------------------------------------------------------------------- Signals
def test_signals_page_impact_duplicates_and_age(open_app, signals_ws):
    at = open_app(signals_ws, "signals")
    n = scalar(signals_ws, "SELECT count(*) FROM documents")
    cov = df(at, "current", "coverage")
    assert (cov.loc[cov["current"], "n_docs"] == n).all()
    assert at.multiselect(key="sg_filters").value == [
        "gopher_quality: pass",
        "gopher_repetition: pass",
        "c4_quality: pass",
        "fineweb_quality: pass",
    ]
    impact = df(at, "filter", "docs_removed")
    total = impact[(impact["source"] == "(all sources)") & (impact["filter"] == "all together")]
    removed_docs, removed_tokens = ws_failing_any_rule(signals_ws)
    assert int(total["docs_removed"].iloc[0]) == removed_docs
    assert int(total["tokens_removed"].iloc[0]) == removed_tokens
    # duplicate rates of the synthetic source: a ~ c exact, a ~ b near (closed form)
    dups = df(at, "exact_dup_rate").set_index("source")
    assert dups.loc["synthetic", "exact_dup_rate"] == pytest.approx(1 / 3)
    assert dups.loc["synthetic", "near_dup_rate"] == pytest.approx(2 / 3)
    # one filter only, documents basis
    at.multiselect(key="sg_filters").set_value(["c4_quality: pass"]).run()
    at.radio(key="sg_basis").set_value("docs").run()
    impact = df(at, "filter", "docs_removed")
    c4_fail = scalar(signals_ws, "SELECT count(*) FROM signal_c4_quality WHERE NOT c4_pass")
    total = impact[(impact["source"] == "(all sources)") & (impact["filter"] == "all together")]
    assert int(total["docs_removed"].iloc[0]) == c4_fail
    # scatter says it is a sample
    assert any(re.match(r"Sample of [\d,]+ of [\d,]+ documents", c.value) for c in at.caption)
    # data age: synthetic documents are dated 2024-06-01
    age = df(at, "share_before").set_index("source")
    assert age.loc["synthetic", "share_after"] == 1.0
    import datetime as dt

    at.date_input(key="sg_cutoff").set_value(dt.date(2025, 1, 1)).run()
    age = df(at, "share_before").set_index("source")
    assert age.loc["synthetic", "share_before"] == 1.0
    assert (
        age["tokens_before"] + age["tokens_after"] + age["tokens_undated"] == age["tokens"]
    ).all()
    # the near-duplicate threshold explained with the LSH actually used
    from analytics.signals.views import near_dup_lsh

    lsh = near_dup_lsh(signals_ws.cursor())
    cap = next(c.value for c in at.caption if c.value.startswith("Near duplicates: MinHash"))
    assert f"{lsh['bands']} bands x {lsh['rows']} rows" in cap
    assert f"half the time at J = {lsh['j50']:.2f}" in cap
    assert f"{lsh['p_mean']:.0%} on average" in cap
    assert any(
        "Compression ratio = compressed bytes / raw UTF-8 bytes" in c.value for c in at.caption
    )
    # what the table shows: a source with no dated token says so, never "None" / "nan"
    shown = displayed(at, "share_before").set_index("source")
    undated = age.index[age["tokens_before"] + age["tokens_after"] == 0]
    assert len(undated) > 0
    for src in undated:
        assert shown.loc[src, "share_before"] == "no dated tokens"
        assert shown.loc[src, "share_after"] == "no dated tokens"
    assert shown.loc["synthetic", "share_before"] == "100.0%"
    cells = shown.astype(str).to_numpy().ravel().tolist()
    assert not {"None", "nan", "NaN", "<NA>"} & set(cells)


def ws_failing_any_rule(ws) -> tuple[int, int]:
    return (
        ws.cursor()
        .execute(
            """SELECT count(*), coalesce(sum(n_tokens), 0) FROM documents d
           JOIN signal_gopher_quality a USING (doc_id)
           JOIN signal_gopher_repetition b USING (doc_id)
           JOIN signal_c4_quality c USING (doc_id) JOIN signal_fineweb_quality f USING (doc_id)
           WHERE NOT (a.gopher_quality_pass AND b.gopher_rep_pass AND c.c4_pass
                      AND f.fineweb_pass)"""
        )
        .fetchall()[0]
    )


def test_signals_page_uses_the_conditions_from_explore(open_app, signals_ws):
    at = open_app(signals_ws, "signals", c="signal.compression.compression_ratio.ge.0.35")
    assert at.multiselect(key="sg_filters").value == ["compression_ratio ≥ 0.35"]
    impact = df(at, "filter", "docs_removed")
    total = impact[(impact["source"] == "(all sources)") & (impact["filter"] == "all together")]
    below = scalar(
        signals_ws, "SELECT count(*) FROM signal_compression WHERE compression_ratio < 0.35"
    )
    assert int(total["docs_removed"].iloc[0]) == below


@pytest.mark.slow
def test_signals_job_from_the_page(open_app, tmp_path_factory, tmp_path):
    ws = copy_of(small_unscored_path(tmp_path_factory), tmp_path / "ws")
    at = open_app(ws, "signals")
    assert any("No signals are computed" in i.value for i in at.info)
    at.multiselect(key="sg_run_only").set_value(["compression"]).run()
    assert any(c.value == "mixscope signals run --only compression" for c in at.code)
    at.button(key="sg_run").click().run()
    assert not at.exception and "Queued job" in at.success[0].value
    store = JobStore(ws.path)
    job_id = store.list()[0].id
    for _ in range(600):  # get() without refresh(): no race with the worker's final update
        job = store.get(job_id)
        if job.status in ("done", "failed"):
            break
        time.sleep(0.2)
    assert job.status == "done", store.log(job.id)
    n = scalar(ws, "SELECT count(*) FROM documents")
    assert scalar(ws, "SELECT count(DISTINCT doc_id) FROM signal_compression") == n
    # the engine's progress line: shards and documents done, throughput, ETA
    assert job.progress["stage"].startswith(f"signals compression: shards 1/1, documents {n}/{n}")
    assert job.progress["done"] == n
    at.run()
    cov = df(at, "current", "coverage")
    assert cov.loc[cov["name"] == "compression", "coverage"].iloc[0] == 1.0


# ---------------------------------------------------------------------- Concepts
def test_concepts_page_shows_the_demo_list_on_first_visit(open_app, demo_workspace):
    from analytics.demo import demo_concepts

    at = open_app(demo_workspace, "concepts")
    assert not at.exception and not at.error
    table = df(at, "concept", "rank")
    assert set(table["concept"]) == set(demo_concepts())
    assert table.set_index("concept").loc["god", "count"] > 100  # the KJV is in the demo
    assert any("shipped list" in c.value for c in at.caption)


def test_concepts_page_counts_fit_and_rare(open_app, signals_ws):
    at = open_app(signals_ws, "concepts")
    at.button(key="cc_run").click().run()
    assert "no concepts" in at.error[0].value  # empty list: a clear error
    at.text_area(key="cc_text").input("Python\nfunction\nthe\nzzqxv").run()
    at.button(key="cc_run").click().run()
    assert not at.exception and not at.error
    table = df(at, "concept", "rank").set_index("concept")
    texts = [
        t
        for (t,) in signals_ws.cursor()
        .execute("SELECT text FROM documents JOIN document_text USING (doc_id)")
        .fetchall()
    ]
    want = sum(len(re.findall(r"(?<![^\W_])function(?![^\W_])", t, re.I)) for t in texts)
    assert table.loc["function", "count"] == want
    assert table.loc["zzqxv", "count"] == 0
    assert df(at, "rare concept")["rare concept"].tolist() == ["zzqxv"]
    at.text_area(key="cc_acc_text").input(
        "concept,accuracy\npython,0.5\nfunction,0.6\nthe,0.9\nzzqxv,0.1"
    ).run()
    assert not at.exception and not at.error
    # fitted against the number of documents containing each concept (the default)
    x = np.log10([table.loc[c, "documents"] for c in ("Python", "function", "the")])
    slope, intercept = np.polyfit(x, [0.5, 0.6, 0.9], 1)
    assert metric(at, "Slope (accuracy per 10x frequency)") == f"{slope:.4f}"
    assert metric(at, "Concepts in the fit") == "3"
    y = np.array([0.5, 0.6, 0.9])
    r2 = 1 - ((y - (slope * x + intercept)) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert metric(at, "R²") == f"{r2:.3f}"
    # ... or against occurrences
    at.radio(key="cc_freq_basis").set_value("occurrences").run()
    x = np.log10([table.loc[c, "count"] for c in ("Python", "function", "the")])
    slope, _ = np.polyfit(x, [0.5, 0.6, 0.9], 1)
    assert metric(at, "Slope (accuracy per 10x frequency)") == f"{slope:.4f}"
    # every concept occurs: the default rare threshold still exports the long tail
    at.text_area(key="cc_text").input("Python\nfunction\nthe").run()
    at.button(key="cc_run").click().run()
    table = df(at, "concept", "rank").set_index("concept")
    rarest = table["count"].idxmin()
    assert rarest in df(at, "rare concept")["rare concept"].tolist()
    assert "the" not in df(at, "rare concept")["rare concept"].tolist()


# ---------------------------------------------------------------------- Contamination
def copied_span(ws) -> tuple[str, str]:
    doc_id, text = (
        ws.cursor()
        .execute(
            "SELECT doc_id, text FROM documents "
            "JOIN document_text USING (doc_id) WHERE source = 'linux-doc' "
            "AND len(string_split(text, ' ')) > 80 ORDER BY doc_id LIMIT 1"
        )
        .fetchall()[0]
    )
    words = text.split()
    i = next(k for k in range(10, len(words)) if words[k].isalpha() and words[k + 20].isalpha())
    return doc_id, " ".join(words[i : i + 21])


def test_contamination_page_scan(open_app, signals_ws):
    at = open_app(signals_ws, "contamination")
    at.button(key="ct_run").click().run()
    assert "paste at least one text" in at.error[0].value
    doc_id, span = copied_span(signals_ws)
    at.text_area(key="ct_text").input(f"a short text\n{span}").run()
    at.button(key="ct_run").click().run()
    assert not at.exception and not at.error
    assert metric(at, "Evaluation texts") == "2"
    assert metric(at, "Shorter than 13 words") == "1"
    flagged = df(at, "doc_id", "n_matched_ngrams")
    assert doc_id in flagged["doc_id"].tolist()
    per = df(at, "flagged_docs").set_index("source")
    assert per["flagged_docs"].sum() == len(flagged)
    at.selectbox(key="ct_doc").set_value(doc_id).run()
    spans = df(at, "match")
    norm = lambda s: " ".join(re.findall(r"\w+", s.lower()))  # noqa: E731
    assert any(norm(span) in norm(m) for m in spans["match"])
    # plain text only: nothing on the page renders document text as markdown/HTML
    assert all(span not in md.value for md in at.markdown)


@pytest.mark.slow
def test_contamination_job_from_the_page_and_its_report(open_app, signals_ws, tmp_path):
    ws = copy_of(signals_ws.path, tmp_path / "ws")
    doc_id, span = copied_span(ws)
    at = open_app(ws, "contamination")
    at.text_area(key="ct_text").input(span).run()
    at.number_input(key="ct_n").set_value(8).run()
    at.button(key="ct_job").click().run()
    assert not at.exception and "Queued job" in at.success[0].value
    store = JobStore(ws.path)
    job_id = store.list()[0].id
    for _ in range(600):
        job = store.get(job_id)
        if job.status in ("done", "failed"):
            break
        time.sleep(0.2)
    assert job.status == "done", store.log(job.id)
    assert job.args[:1] == ["contamination"] and "--n" in job.args and "8" in job.args
    at = open_app(ws, "contamination")  # a new session: only the job's report to show
    assert at.selectbox(key="ct_show").value.endswith("-n8.json")
    assert doc_id in df(at, "doc_id", "n_matched_ngrams")["doc_id"].tolist()
    assert metric(at, "Evaluation texts") == "1"
    assert metric(at, "Shorter than 8 words") == "0"

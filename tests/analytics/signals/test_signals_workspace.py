"""Checks on the shared signals fixture workspace (built in tests/workspaces/signals.py)."""

from __future__ import annotations

import pytest

from analytics.filters import Condition, DocFilter
from analytics.workspace import Workspace


# ---------------------------------------------------------------------- checks on the fixture
def count(ws: Workspace, flt: DocFilter) -> int:
    where, params = flt.where()
    return (
        ws.cursor()
        .execute(f"SELECT count(*) FROM documents WHERE {where}", params)
        .fetchall()[0][0]
    )


def test_fixture_every_document_scored_exactly_once(signals_ws):
    cur = signals_ws.cursor()
    n = cur.execute("SELECT count(*) FROM documents").fetchall()[0][0]
    assert 200 <= n <= 400
    for name in ("gopher_quality", "language", "toxicity", "near_dup", "url_domain"):
        rows, distinct = cur.execute(
            f"SELECT count(*), count(DISTINCT doc_id) FROM signal_{name}"
        ).fetchall()[0]
        assert rows == distinct == n, name


def test_signal_conditions_match_independent_sql(signals_ws):
    cur = signals_ws.cursor()
    flt = DocFilter(
        conditions=(
            Condition("signal", "gopher_repetition", "gopher_rep_pass", "eq", "true"),
            Condition("signal", "compression", "compression_ratio", "ge", "0.35"),
            Condition("signal", "language", "detected_lang", "in", "en,de"),
        )
    )
    want = cur.execute(
        """SELECT count(*) FROM documents d
           JOIN signal_gopher_repetition r USING (doc_id)
           JOIN signal_compression c USING (doc_id)
           JOIN signal_language l USING (doc_id)
           WHERE r.gopher_rep_pass AND c.compression_ratio >= 0.35
             AND l.detected_lang IN ('en', 'de')"""
    ).fetchall()[0][0]
    assert 0 < want < count(signals_ws, DocFilter())
    assert count(signals_ws, flt) == want
    # the same filter survives the URL round trip
    assert count(signals_ws, DocFilter.from_params(flt.to_params())) == want


def test_condition_follows_the_latest_version_and_excludes_unscored(signals_ws_copy):
    from analytics.signals import run_signals

    ws = signals_ws_copy
    flt = DocFilter(
        conditions=(Condition("signal", "compression", "compression_ratio", "gt", "0"),)
    )
    n = count(ws, DocFilter())
    assert count(ws, flt) == n
    with ws.write(job="partial new version") as con:  # a new version scored on 10 documents
        run_signals(con, "compression", params={"compression": {"level": 1}}, max_docs=10)
    assert count(ws, flt) == 10  # latest version: the other documents are unscored there


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        (Condition("signal", "nope", "x", "eq", "1"), "unknown signal 'nope'"),
        (Condition("signal", "compression", "nope", "eq", "1"), "has no column 'nope'"),
        (Condition("signal", "compression", "compression_ratio", "ge", "abc"), "expected a number"),
        (Condition("signal", "c4_quality", "c4_pass", "ge", "true"), "takes eq or ne"),
        (Condition("signal", "c4_quality", "c4_pass", "eq", "maybe"), "expected true or false"),
    ],
)
def test_bad_conditions_are_clear_errors(cond, message):
    with pytest.raises(ValueError, match=message):
        DocFilter(conditions=(cond,)).where()


def test_condition_impact_per_source_matches_independent_sql(signals_ws):
    from analytics.signals.filtering import condition_impact

    cur = signals_ws.cursor()
    flt = DocFilter(
        source=("python-doc", "linux-doc"),
        conditions=(
            Condition("signal", "c4_quality", "c4_pass", "eq", "true"),
            Condition("signal", "compression", "compression_ratio", "ge", "0.35"),
        ),
    )
    imp = condition_impact(cur, flt).set_index(["source", "filter"])
    want = cur.execute(
        """SELECT d.source, count(*) FILTER (WHERE NOT q.c4_pass),
                  count(*) FILTER (WHERE s.compression_ratio < 0.35),
                  coalesce(sum(d.n_tokens) FILTER (WHERE NOT q.c4_pass
                                                   OR s.compression_ratio < 0.35), 0),
                  count(*)
           FROM documents d JOIN signal_c4_quality q USING (doc_id)
           JOIN signal_compression s USING (doc_id)
           WHERE d.source IN ('python-doc', 'linux-doc') GROUP BY 1"""
    ).fetchall()
    assert {s for s, _f in imp.index} == {"(all sources)", "python-doc", "linux-doc"}
    for source, c4, comp, tok_all, docs in want:
        assert imp.loc[(source, "c4_quality: pass"), "docs_removed"] == c4
        assert imp.loc[(source, "compression_ratio ≥ 0.35"), "docs_removed"] == comp
        assert imp.loc[(source, "all together"), "tokens_removed"] == tok_all
        assert imp.loc[(source, "all together"), "docs"] == docs
    total = imp.loc[("(all sources)", "all together")]
    assert total["tokens_removed"] == sum(w[3] for w in want)


def test_data_age_closed_form(signals_ws):
    from analytics.signals.views import data_age

    cur = signals_ws.cursor()
    age = data_age(cur, DocFilter(source=("synthetic",)), cutoff="2024-06-01").set_index("source")
    tokens = cur.execute(
        "SELECT sum(n_tokens) FROM documents WHERE source = 'synthetic'"
    ).fetchall()[0][0]
    assert list(age.index) == ["(all sources)", "synthetic"]
    assert age.loc["synthetic", "tokens_after"] == tokens  # dated on the cutoff: after
    assert age.loc["synthetic", "share_before"] == 0.0
    age = data_age(cur, DocFilter(source=("synthetic",)), cutoff="2024-06-02")
    assert age.set_index("source").loc["synthetic", "share_before"] == 1.0
    with pytest.raises(ValueError, match="expected a date"):
        data_age(cur, cutoff="June")


def test_document_signals_match_independent_sql(signals_ws):
    from analytics.signals.views import document_signal_summary, document_signals

    cur = signals_ws.cursor()
    vals = document_signals(cur, "syn/a")
    summary = document_signal_summary(vals)
    # one verdict per quality filter, with the stored pass and reason
    filters = summary["filters"].set_index("signal")
    for sig, pass_col, reason_col in (
        ("gopher_quality", "gopher_quality_pass", "gopher_quality_reason"),
        ("gopher_repetition", "gopher_rep_pass", "gopher_rep_reason"),
        ("c4_quality", "c4_pass", "c4_reason"),
        ("fineweb_quality", "fineweb_pass", "fineweb_reason"),
    ):
        ok, reason = cur.execute(
            f"SELECT {pass_col}, {reason_col} FROM signal_{sig} WHERE doc_id = 'syn/a'"
        ).fetchall()[0]
        assert filters.loc[sig, "passed"] == ok
        rule = filters.loc[sig, "failing_rule"]
        assert (rule is None or rule != rule) if ok else rule == reason
    # the duplicate clusters: syn/a and its normalised copy syn/c share an exact cluster
    dups = summary["duplicates"].set_index("signal")
    cluster, size = cur.execute(
        "SELECT exact_dup_cluster, exact_dup_size FROM signal_exact_dup WHERE doc_id = 'syn/a'"
    ).fetchall()[0]
    assert dups.loc["exact_dup", "cluster"] == cluster and dups.loc["exact_dup", "size"] == size
    assert size >= 2
    lang, conf = cur.execute(
        "SELECT detected_lang, detected_lang_conf FROM signal_language WHERE doc_id = 'syn/a'"
    ).fetchall()[0]
    assert summary["language"] == (lang, pytest.approx(conf))
    # the numbers behind the verdicts, as stored
    numbers = summary["numbers"].set_index(["signal", "column"])["value"]
    ratio = cur.execute(
        "SELECT compression_ratio FROM signal_compression WHERE doc_id = 'syn/a'"
    ).fetchall()[0][0]
    assert numbers[("compression", "compression_ratio")] == pytest.approx(ratio)
    assert ("gopher_quality", "gopher_n_words") in numbers.index
    assert ("gopher_quality", "gopher_quality_pass") not in numbers.index
    # a failing document names its failing rule
    doc, reason = cur.execute(
        "SELECT doc_id, gopher_quality_reason FROM signal_gopher_quality "
        "WHERE NOT gopher_quality_pass ORDER BY doc_id LIMIT 1"
    ).fetchall()[0]
    failing = document_signal_summary(document_signals(cur, doc))["filters"].set_index("signal")
    assert not failing.loc["gopher_quality", "passed"]
    assert failing.loc["gopher_quality", "failing_rule"] == reason
    # an unknown document has no signal rows
    assert document_signals(cur, "no/such/doc").empty

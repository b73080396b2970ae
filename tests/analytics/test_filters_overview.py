"""DocFilter round trips and predicates; overview aggregates against pandas."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from analytics import overview
from analytics.errors import MixscopeError
from analytics.filters import DocFilter


def test_filter_url_round_trip():
    f = DocFilter(
        source=("a", "b,c"[:1]),
        lang=("de",),
        date_from=dt.date(1900, 1, 2),
        min_tokens=10,
        max_tokens=500,
        text_contains="fox",
    )
    assert DocFilter.from_params(f.to_params()) == f
    assert DocFilter.from_params({}) == DocFilter()


@pytest.mark.parametrize(
    "params, key", [({"from": "yesterday"}, "from"), ({"tmin": "ten"}, "tmin")]
)
def test_filter_rejects_malformed_url_values(params, key):
    with pytest.raises(MixscopeError, match=key):
        DocFilter.from_params(params)


def test_filter_values_never_enter_sql():
    evil = "x'); DROP TABLE documents; --"
    where, params = DocFilter(source=(evil,), text_contains=evil).where()
    assert evil not in where and params.count(evil) == 2


@pytest.fixture(scope="module")
def frame(demo_workspace):
    return (
        demo_workspace.cursor()
        .execute(
            "SELECT doc_id, source, domain, lang, date, n_tokens, n_bytes, text FROM documents "
            "JOIN document_text USING (doc_id)"
        )
        .df()
    )


def test_totals_match_pandas(demo_workspace, frame):
    tot = overview.totals(demo_workspace.cursor())
    assert tot["documents"] == len(frame)
    assert tot["tokens"] == frame["n_tokens"].sum()
    assert tot["sources"] == frame["source"].nunique()
    assert tot["languages"] == frame["lang"].nunique()


def test_filtered_composition_matches_pandas(demo_workspace, frame):
    langs = sorted(frame["lang"].dropna().unique())[:2]
    flt = DocFilter(lang=tuple(langs), min_tokens=20)
    got = overview.composition(demo_workspace.cursor(), flt, by=("source",))
    sub = frame[frame["lang"].isin(langs) & (frame["n_tokens"] >= 20)]
    want = sub.groupby("source")["n_tokens"].sum()
    assert dict(zip(got["source"], got["tokens"])) == want.to_dict()


def test_date_and_text_filters(demo_workspace, frame):
    dated = frame.dropna(subset=["date"])
    cut = pd.Timestamp(sorted(dated["date"])[len(dated) // 2]).date()
    flt = DocFilter(date_to=cut, text_contains="the")
    tot = overview.totals(demo_workspace.cursor(), flt)
    d = pd.to_datetime(frame["date"]).dt.date
    mask = d.notna() & (d <= cut) & frame["text"].str.lower().str.contains("the", regex=False)
    assert tot["documents"] == int(mask.sum())


def test_length_quantiles_and_pages(demo_workspace, frame):
    q = overview.length_quantiles(demo_workspace.cursor())
    for row in q.itertuples():
        s = frame.loc[frame["source"] == row.grp, "n_tokens"]
        assert row.median == pytest.approx(s.median())
        assert row.documents == len(s)
    page = overview.documents_page(
        demo_workspace.cursor(), page=1, page_size=5, order_by="n_tokens DESC"
    )
    want = frame.sort_values(["n_tokens", "doc_id"], ascending=[False, True]).iloc[5:10]
    assert list(page["n_tokens"]) == list(want["n_tokens"])
    doc = overview.document(demo_workspace.cursor(), page["doc_id"][0])
    assert doc["text"].startswith(page["snippet"][0])


def test_conditions_resolve_through_registered_kinds_and_round_trip():
    from analytics.filters import CONDITION_KINDS, Condition

    CONDITION_KINDS.add("testkind", lambda c, p: (f"{p}n_tokens {c.sql_op} ?", [float(c.value)]))
    try:
        f = DocFilter(conditions=(Condition("testkind", "x", "", "ge", "2.5"),))
        assert DocFilter.from_params(f.to_params()) == f
        where, params = f.where("d")
        assert where == "(d.n_tokens >= ?)" and params == [2.5]
    finally:
        CONDITION_KINDS.unregister("testkind")


@pytest.mark.parametrize("token", ["signal.x;drop.col.eq.1", "signal.x.c.like.1", "a.b"])
def test_malformed_conditions_are_refused(token):
    with pytest.raises(MixscopeError):
        DocFilter.from_params({"c": token})


def test_term_matches_case_insensitive_with_context():
    from analytics.overview import term_matches

    text = "C++ and c++; <b>Bold</b> and bold."
    m = term_matches(text, "BOLD", context=3)
    assert m["match"].tolist() == ["Bold", "bold"]
    assert m["before"].tolist() == ["<b>", "nd "]
    assert [text[a:b] for a, b in zip(m["start"], m["end"], strict=True)] == ["Bold", "bold"]
    # the term is a literal, not a pattern
    assert term_matches(text, "c++")["match"].tolist() == ["C++", "c++"]
    assert term_matches(text, "").empty and term_matches(text, None).empty
    assert len(term_matches("a" * 100, "a", limit=7)) == 7


def test_json_fields_keep_numbers_and_nulls():
    import datetime as dt

    import numpy as np

    from analytics.overview import json_fields

    got = json_fields(
        {"n_tokens": np.int64(5), "x": np.float64(0.5), "ok": np.bool_(True),
         "date": dt.date(2020, 1, 2), "gone": float("nan"), "none": None, "s": "7"}
    )  # fmt: skip
    assert got == {"n_tokens": 5, "x": 0.5, "ok": True, "date": "2020-01-02", "gone": None,
                   "none": None, "s": "7"}  # fmt: skip
    assert type(got["n_tokens"]) is int

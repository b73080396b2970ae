"""Filter impact per source on a tiny table whose numbers are computed by hand."""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from analytics.migrations import MIGRATIONS
from analytics.signals import get_signal
from analytics.signals.impact import FilterSpecError, compile_filter, duplicate_rates, filter_impact
from analytics.signals.store import ensure_tables, insert_arrow, update_catalog
from tests.conftest import add_doc

#        doc  source   tokens  compression  gopher_pass  exact_is_rep
DOCS = [
    ("a", "web", 100, 0.5, True, True),
    ("b", "web", 50, 0.2, False, False),
    ("c", "books", 200, 0.1, True, True),
    ("d", "books", 10, 0.6, False, True),
    ("e", "books", 40, None, None, False),
]


@pytest.fixture()
def con():
    con = duckdb.connect(":memory:")
    for sql in MIGRATIONS[0][2]:
        con.execute(sql)
    for doc_id, source, tokens, *_ in DOCS:
        add_doc(con, doc_id=doc_id, source=source, text="x", n_tokens=tokens)
    comp, gq, ex = get_signal("compression"), get_signal("gopher_quality"), get_signal("exact_dup")
    ensure_tables(con, [comp, gq, ex])
    scored = [d for d in DOCS if d[3] is not None]
    insert_arrow(
        con,
        comp.table,
        comp.version,
        pa.table(
            {
                "doc_id": [d[0] for d in scored],
                "compression_ratio": [d[3] for d in scored],
                "raw_bytes": [1] * len(scored),
            }
        ),
    )
    insert_arrow(
        con,
        gq.table,
        gq.version,
        pa.table({"doc_id": [d[0] for d in scored], "gopher_quality_pass": [d[4] for d in scored]}),
    )
    insert_arrow(
        con,
        ex.table,
        ex.version,
        pa.table({"doc_id": [d[0] for d in DOCS], "exact_dup_is_rep": [d[5] for d in DOCS]}),
    )
    for sig in (comp, gq, ex):
        update_catalog(con, sig)
    return con


FILTERS = [
    {"name": "quality", "signal": "gopher_quality", "keep": "pass"},
    {"name": "density", "column": "compression_ratio", "min": 0.3},
]


def cell(df: pd.DataFrame, source: str, name: str, col: str):
    return df[(df["source"] == source) & (df["filter"] == name)][col].item()


def test_impact_numbers_by_hand(con):
    df = filter_impact(con, FILTERS)
    expected = {
        # (source, filter): (docs_removed, tokens_removed)
        ("web", "quality"): (1, 50),
        ("web", "density"): (1, 50),
        ("web", "all filters"): (1, 50),
        ("books", "quality"): (1, 10),
        ("books", "density"): (1, 200),
        ("books", "all filters"): (2, 210),
        ("(all sources)", "quality"): (2, 60),
        ("(all sources)", "density"): (2, 250),
        ("(all sources)", "all filters"): (3, 260),
    }
    for (src, name), (docs, tokens) in expected.items():
        assert cell(df, src, name, "docs_removed") == docs, (src, name)
        assert cell(df, src, name, "tokens_removed") == tokens, (src, name)
    assert cell(df, "books", "density", "tokens") == 250
    assert cell(df, "books", "all filters", "tokens_removed_frac") == pytest.approx(210 / 250)
    assert cell(df, "web", "quality", "exact_dup_rate") == pytest.approx(1 / 2)
    assert cell(df, "books", "quality", "exact_dup_rate") == pytest.approx(1 / 3)
    assert df["near_dup_rate"].isna().all()  # near_dup never computed
    assert df["source"].iloc[0] == "(all sources)"


def test_unscored_remove_and_in_filters(con):
    df = filter_impact(
        con,
        [
            {"name": "density", "column": "compression_ratio", "min": 0.3, "unscored": "remove"},
            {"name": "band", "column": "compression_ratio", "min": 0.15, "max": 0.55},
            {"name": "dedup", "signal": "exact_dup", "keep": "representative"},
        ],
        total_source=None,
    )
    assert cell(df, "books", "density", "tokens_removed") == 240  # c (200) + unscored e (40)
    assert cell(df, "books", "band", "docs_removed") == 2  # c 0.1, d 0.6; e unscored kept
    assert cell(df, "web", "band", "docs_removed") == 0
    assert cell(df, "books", "dedup", "tokens_removed") == 40
    assert "(all sources)" not in set(df["source"])
    rates = duplicate_rates(con).set_index("source")
    assert rates.loc["web", "exact_dup_rate"] == pytest.approx(0.5)


def test_bad_filters(con):
    with pytest.raises(FilterSpecError, match="unknown column"):
        compile_filter({"column": "compression_ratio; DROP TABLE documents", "min": 1})
    with pytest.raises(FilterSpecError, match="unknown key"):
        compile_filter({"column": "compression_ratio", "sql": "1=1"})
    with pytest.raises(FilterSpecError, match="numeric"):
        compile_filter({"column": "compression_ratio", "min": "0.3 OR 1=1"})
    with pytest.raises(FilterSpecError, match="has not been computed"):
        filter_impact(con, [{"signal": "fineweb_quality", "keep": "pass"}])
    f = compile_filter({"column": "detected_lang", "in": ["en", "x'); --"]})
    assert "x'); --" not in f.keep_sql and f.params == ("en", "x'); --")

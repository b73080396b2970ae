"""Corpus composition: the aggregates behind the Overview and Explore pages.

Every function takes a cursor and a DocFilter and returns a small pandas DataFrame computed
inside DuckDB (no text is read unless asked for).
"""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd

from analytics.errors import MixscopeError
from analytics.filters import DocFilter
from analytics.query import run_query

BASES = {"tokens": "sum(n_tokens)", "documents": "count(*)", "bytes": "sum(n_bytes)"}
GROUPABLE = ("source", "domain", "lang")


def _basis(basis: str) -> str:
    if basis not in BASES:
        raise MixscopeError(f"basis must be one of {', '.join(BASES)}; got {basis!r}.")
    return BASES[basis]


def totals(cur: duckdb.DuckDBPyConnection, flt: DocFilter = DocFilter()) -> dict[str, int]:
    """documents, tokens, bytes, sources, domains, languages under the filter."""
    where, params = flt.where()
    df, _ = run_query(
        cur,
        f"""SELECT count(*) AS documents, COALESCE(sum(n_tokens), 0)::BIGINT AS tokens,
                   COALESCE(sum(n_bytes), 0)::BIGINT AS bytes, count(DISTINCT source) AS sources,
                   count(DISTINCT domain) AS domains, count(DISTINCT lang) AS languages,
                   min(date) AS date_min, max(date) AS date_max
            FROM documents WHERE {where}""",
        params,
    )
    return df.iloc[0].to_dict()


def composition(
    cur: duckdb.DuckDBPyConnection,
    flt: DocFilter = DocFilter(),
    *,
    by: tuple[str, ...] = ("domain", "source", "lang"),
) -> pd.DataFrame:
    """Documents, tokens and bytes per combination of the `by` columns (nulls as '(none)')."""
    bad = [c for c in by if c not in GROUPABLE]
    if bad or not by:
        raise MixscopeError(f"group by columns must be among {', '.join(GROUPABLE)}; got {bad}.")
    where, params = flt.where()
    cols = ", ".join(f"COALESCE({c}, '(none)') AS {c}" for c in by)
    df, _ = run_query(
        cur,
        f"""SELECT {cols}, count(*) AS documents, sum(n_tokens)::BIGINT AS tokens,
                   sum(n_bytes)::BIGINT AS bytes
            FROM documents WHERE {where} GROUP BY ALL ORDER BY tokens DESC""",
        params,
        max_rows=100_000,
    )
    return df


def length_quantiles(
    cur: duckdb.DuckDBPyConnection, flt: DocFilter = DocFilter(), *, by: str = "source"
) -> pd.DataFrame:
    """Per group: min, q1, median, q3, max, mean of tokens per document (box-plot ready)."""
    if by not in GROUPABLE:
        raise MixscopeError(f"group by must be one of {', '.join(GROUPABLE)}; got {by!r}.")
    where, params = flt.where()
    df, _ = run_query(
        cur,
        f"""SELECT COALESCE({by}, '(none)') AS grp, count(*) AS documents,
                   min(n_tokens) AS min, quantile_cont(n_tokens, 0.25) AS q1,
                   median(n_tokens) AS median, quantile_cont(n_tokens, 0.75) AS q3,
                   max(n_tokens) AS max, avg(n_tokens) AS mean,
                   quantile_cont(n_tokens, 0.05) AS p05, quantile_cont(n_tokens, 0.95) AS p95
            FROM documents WHERE {where} GROUP BY 1 ORDER BY median DESC""",
        params,
    )
    return df


def length_histogram(
    cur: duckdb.DuckDBPyConnection,
    flt: DocFilter = DocFilter(),
    *,
    by: str = "source",
    bins_per_decade: int = 5,
) -> pd.DataFrame:
    """Documents per log10-spaced token-length bin per group: grp, lo, hi, documents."""
    if by not in GROUPABLE:
        raise MixscopeError(f"group by must be one of {', '.join(GROUPABLE)}; got {by!r}.")
    where, params = flt.where()
    df, _ = run_query(
        cur,
        f"""SELECT COALESCE({by}, '(none)') AS grp,
                   floor(log10(greatest(n_tokens, 1)) * ?) AS b, count(*) AS documents
            FROM documents WHERE {where} GROUP BY ALL ORDER BY grp, b""",
        [bins_per_decade, *params],
        max_rows=100_000,
    )
    df["lo"] = 10 ** (df["b"] / bins_per_decade)
    df["hi"] = 10 ** ((df["b"] + 1) / bins_per_decade)
    return df.drop(columns="b")


def date_histogram(
    cur: duckdb.DuckDBPyConnection,
    flt: DocFilter = DocFilter(),
    *,
    by: str = "source",
    unit: str = "year",
) -> pd.DataFrame:
    """Documents and tokens per date bucket (`year` or `month`) per group; dated docs only."""
    if unit not in ("year", "month", "decade"):
        raise MixscopeError(f"unit must be year, month or decade; got {unit!r}.")
    if by not in GROUPABLE:
        raise MixscopeError(f"group by must be one of {', '.join(GROUPABLE)}; got {by!r}.")
    where, params = flt.where()
    bucket = (
        "make_date((year(date) // 10) * 10, 1, 1)"
        if unit == "decade"
        else f"date_trunc('{unit}', date)::DATE"
    )
    df, _ = run_query(
        cur,
        f"""SELECT {bucket} AS bucket, COALESCE({by}, '(none)') AS grp,
                   count(*) AS documents, sum(n_tokens)::BIGINT AS tokens
            FROM documents WHERE date IS NOT NULL AND {where} GROUP BY ALL ORDER BY bucket""",
        params,
        max_rows=100_000,
    )
    return df


def facet_values(cur: duckdb.DuckDBPyConnection, column: str) -> list[str]:
    """Distinct non-null values of a facet column, most tokens first."""
    if column not in GROUPABLE:
        raise MixscopeError(f"facet must be one of {', '.join(GROUPABLE)}; got {column!r}.")
    df, _ = run_query(
        cur,
        f"""SELECT {column} AS v FROM documents WHERE {column} IS NOT NULL
            GROUP BY 1 ORDER BY sum(n_tokens) DESC""",
    )
    return df["v"].tolist()


def ranges(cur: duckdb.DuckDBPyConnection) -> dict:
    """Bounds for the range widgets: dates and token lengths."""
    df, _ = run_query(
        cur,
        """SELECT min(date) AS date_min, max(date) AS date_max,
                  min(n_tokens) AS tokens_min, max(n_tokens) AS tokens_max FROM documents""",
    )
    return df.iloc[0].to_dict()


def documents_page(
    cur: duckdb.DuckDBPyConnection,
    flt: DocFilter = DocFilter(),
    *,
    page: int = 0,
    page_size: int = 50,
    order_by: str = "doc_id",
    snippet_chars: int = 160,
) -> pd.DataFrame:
    """One page of matching documents with a text snippet (never the full text)."""
    allowed = {"doc_id", "source", "n_tokens", "date", "domain", "lang"}
    column, _, direction = order_by.partition(" ")
    if column not in allowed or direction.upper() not in ("", "ASC", "DESC"):
        raise MixscopeError(f"order_by must be one of {sorted(allowed)} [ASC|DESC].")
    where, params = flt.where()
    df, _ = run_query(
        cur,
        f"""SELECT doc_id, source, domain, lang, date, n_tokens, title,
                   left(text, ?) AS snippet
            FROM documents WHERE {where}
            ORDER BY {column} {direction or "ASC"}, doc_id LIMIT ? OFFSET ?""",
        [snippet_chars, *params, int(page_size), int(page) * int(page_size)],
        max_rows=page_size,
    )
    return df


def document(cur: duckdb.DuckDBPyConnection, doc_id: str) -> dict | None:
    """Every column of one document, or None."""
    df, _ = run_query(cur, "SELECT * FROM documents WHERE doc_id = ?", [doc_id], max_rows=1)
    return None if df.empty else df.iloc[0].to_dict()


def json_fields(fields: dict) -> dict:
    """A document's columns as JSON values: numbers stay numbers (ints as int), booleans stay
    booleans, missing values (None, NaN, NaT) become null, dates and anything else text."""
    out: dict = {}
    for k, v in fields.items():
        if v is None or (not isinstance(v, str) and pd.api.types.is_scalar(v) and pd.isna(v)):
            out[k] = None
        elif isinstance(v, bool | np.bool_):
            out[k] = bool(v)
        elif isinstance(v, int | np.integer):
            out[k] = int(v)
        elif isinstance(v, float | np.floating):
            out[k] = float(v)
        else:
            out[k] = str(v)
    return out


def term_matches(
    text: str, term: str | None, *, context: int = 60, limit: int = 50
) -> pd.DataFrame:
    """Where `term` occurs in `text`, case-insensitively (as the "text contains" filter):
    start, end, before, match, after (up to `context` characters each side), at most `limit`
    rows. The pieces are plain text for the caller to show (and escape) as it must."""
    cols = ["start", "end", "before", "match", "after"]
    if not term or not text:
        return pd.DataFrame(columns=cols)
    rows = []
    for m in re.finditer(re.escape(term), text, flags=re.IGNORECASE):
        a, b = m.span()
        rows.append({"start": a, "end": b, "before": text[max(0, a - context) : a],
                     "match": text[a:b], "after": text[b : b + context]})  # fmt: skip
        if len(rows) >= limit:
            break
    return pd.DataFrame(rows, columns=cols)

"""Corpus composition: the aggregates behind the Overview and Explore pages.

Every function takes a cursor and a DocFilter and returns a small pandas DataFrame computed
inside DuckDB (no text is read unless asked for).
"""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd

from analytics.db import table_exists
from analytics.errors import MixscopeError
from analytics.filters import DocFilter
from analytics.query import run_query

BASES = {"tokens": "sum(n_tokens)", "documents": "count(*)", "bytes": "sum(n_bytes)"}
GROUPABLE = ("source", "domain", "lang")


def _basis(basis: str) -> str:
    if basis not in BASES:
        raise MixscopeError(f"basis must be one of {', '.join(BASES)}; got {basis!r}.")
    return BASES[basis]


def facet_only(flt: DocFilter) -> bool:
    """True when the filter constrains only source/domain/lang: the rollups answer it."""
    return flt == DocFilter(source=flt.source, domain=flt.domain, lang=flt.lang)


def _has_rollup(cur: duckdb.DuckDBPyConnection) -> bool:
    return table_exists(cur, "doc_rollup")


def _rollup(cur: duckdb.DuckDBPyConnection, flt: DocFilter, table: str = "documents") -> bool:
    return table == "documents" and facet_only(flt) and _has_rollup(cur)


def _table(cur: duckdb.DuckDBPyConnection, tokenizer: str | None) -> str:
    """`documents`, or the view whose n_tokens count in `tokenizer` (analytics.tokenize)."""
    if not tokenizer or tokenizer == "ingest":
        return "documents"
    from analytics.tokenize import documents_table

    return documents_table(cur, tokenizer)


def totals(
    cur: duckdb.DuckDBPyConnection,
    flt: DocFilter = DocFilter(),
    *,
    tokenizer: str | None = None,
) -> dict[str, int]:
    """documents, tokens, bytes, sources, domains, languages under the filter.

    Facet-only filters are answered from `doc_rollup` (exact per-ingest aggregates), so the
    cost does not grow with the number of documents; the date range then scans one column.
    `tokenizer`: count tokens in a tokenizer added by `mixscope tokenize` (default: the
    ingest tokenizer)."""
    where, params = flt.where()
    table = _table(cur, tokenizer)
    if _rollup(cur, flt, table):
        df, _ = run_query(
            cur,
            f"""SELECT COALESCE(sum(n_docs), 0)::BIGINT AS documents,
                       COALESCE(sum(n_tokens), 0)::BIGINT AS tokens,
                       COALESCE(sum(n_bytes), 0)::BIGINT AS bytes,
                       count(DISTINCT source) AS sources, count(DISTINCT domain) AS domains,
                       count(DISTINCT lang) AS languages,
                       (SELECT min(date) FROM documents WHERE {where}) AS date_min,
                       (SELECT max(date) FROM documents WHERE {where}) AS date_max
                FROM doc_rollup WHERE {where}""",
            [*params, *params, *params],
        )
        return df.iloc[0].to_dict()
    df, _ = run_query(
        cur,
        f"""SELECT count(*) AS documents, COALESCE(sum(n_tokens), 0)::BIGINT AS tokens,
                   COALESCE(sum(n_bytes), 0)::BIGINT AS bytes, count(DISTINCT source) AS sources,
                   count(DISTINCT domain) AS domains, count(DISTINCT lang) AS languages,
                   min(date) AS date_min, max(date) AS date_max
            FROM {table} WHERE {where}""",
        params,
    )
    return df.iloc[0].to_dict()


def composition(
    cur: duckdb.DuckDBPyConnection,
    flt: DocFilter = DocFilter(),
    *,
    by: tuple[str, ...] = ("domain", "source", "lang"),
    tokenizer: str | None = None,
) -> pd.DataFrame:
    """Documents, tokens and bytes per combination of the `by` columns (nulls as '(none)');
    tokens in `tokenizer` when given (see `totals`)."""
    bad = [c for c in by if c not in GROUPABLE]
    if bad or not by:
        raise MixscopeError(f"group by columns must be among {', '.join(GROUPABLE)}; got {bad}.")
    where, params = flt.where()
    cols = ", ".join(f"COALESCE({c}, '(none)') AS {c}" for c in by)
    base = _table(cur, tokenizer)
    table, n = ("doc_rollup", "sum(n_docs)") if _rollup(cur, flt, base) else (base, "count(*)")
    df, _ = run_query(
        cur,
        f"""SELECT {cols}, {n}::BIGINT AS documents, sum(n_tokens)::BIGINT AS tokens,
                   sum(n_bytes)::BIGINT AS bytes
            FROM {table} WHERE {where} GROUP BY ALL ORDER BY tokens DESC, {", ".join(by)}""",
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
    table = "doc_rollup" if _has_rollup(cur) else "documents"
    df, _ = run_query(
        cur,
        f"""SELECT {column} AS v FROM {table} WHERE {column} IS NOT NULL
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
    """One page of matching documents with a text snippet (never the full text): the page
    is chosen on metadata, then only its documents' text is read (from the files that hold
    them, wherever the corpus lives)."""
    from analytics.text import fetch_texts

    allowed = {"doc_id", "source", "n_tokens", "date", "domain", "lang"}
    column, _, direction = order_by.partition(" ")
    if column not in allowed or direction.upper() not in ("", "ASC", "DESC"):
        raise MixscopeError(f"order_by must be one of {sorted(allowed)} [ASC|DESC].")
    where, params = flt.where()
    df, _ = run_query(
        cur,
        f"""SELECT doc_id, source, domain, lang, date, n_tokens, title
            FROM documents WHERE {where}
            ORDER BY {column} {direction or "ASC"}, doc_id LIMIT ? OFFSET ?""",
        [*params, int(page_size), int(page) * int(page_size)],
        max_rows=page_size,
    )
    texts = fetch_texts(cur, df["doc_id"].tolist())
    df["snippet"] = [texts.get(d, "")[: int(snippet_chars)] for d in df["doc_id"]]
    return df


def document(cur: duckdb.DuckDBPyConnection, doc_id: str) -> dict | None:
    """Every column of one document and its text (read where the corpus lives), or None."""
    from analytics.text import fetch_texts

    df, _ = run_query(cur, "SELECT * FROM documents WHERE doc_id = ?", [doc_id], max_rows=1)
    if df.empty:
        return None
    doc = df.iloc[0].to_dict()
    doc["text"] = fetch_texts(cur, [doc_id]).get(doc_id, "")
    return doc


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

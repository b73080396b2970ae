"""Filter impact per source: documents and tokens each filter removes, alone and together.

A filter is a structured dict turned into a SQL predicate by trusted code here (column names
are checked against the registry and quoted; values travel as bound parameters):

* `{"signal": "gopher_quality", "keep": "pass"}`: keep documents that pass a rule set
  (`"fail"` keeps the failing ones). For `exact_dup` / `near_dup`, `"keep": "representative"`
  keeps one document per duplicate cluster.
* `{"column": "compression_ratio", "min": 0.3, "max": 0.9}`: keep documents whose value lies
  in [min, max] (either bound optional).
* `{"column": "detected_lang", "in": ["en", "de"]}` (or `"not_in"`), `{"column": ..., "equals": v}`.
* optional `"name"` (default: a readable rendering) and `"unscored"`: what happens to documents
  without a value for the column: `"keep"` (default) or `"remove"`.

"Removed by all together" removes a document that any filter removes. Duplicate rate of a
source = share of its documents (with a duplicate signal) that are not their cluster's
representative, i.e. that deduplication would drop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from analytics.signals.base import SignalError
from analytics.signals.registry import all_columns, signal_names
from analytics.signals.store import current_versions, signals_view_sql

#: signal -> (boolean column, the "keep" words meaning True)
KEEP_COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "gopher_quality": ("gopher_quality_pass", ("pass",)),
    "gopher_repetition": ("gopher_rep_pass", ("pass",)),
    "c4_quality": ("c4_pass", ("pass",)),
    "fineweb_quality": ("fineweb_pass", ("pass",)),
    "exact_dup": ("exact_dup_is_rep", ("representative", "rep")),
    "near_dup": ("near_dup_is_rep", ("representative", "rep")),
}
_FALSE_WORDS = {"fail", "duplicate", "dup"}
_ALLOWED_KEYS = {
    "name",
    "signal",
    "keep",
    "column",
    "min",
    "max",
    "in",
    "not_in",
    "equals",
    "unscored",
}


class FilterSpecError(SignalError):
    """A filter specification that cannot be turned into a predicate."""


@dataclass(frozen=True)
class CompiledFilter:
    name: str
    signal: str
    keep_sql: str  # boolean, never NULL
    params: tuple[Any, ...]


def _quote(col: str) -> str:
    return '"' + col.replace('"', '""') + '"'


def compile_filter(spec: Mapping[str, Any], index: int = 0) -> CompiledFilter:
    """Turn one structured filter into a keep-predicate with bound parameters."""
    if not isinstance(spec, Mapping):
        raise FilterSpecError(f"filter #{index + 1}: expected a mapping, got {type(spec).__name__}")
    extra = sorted(set(spec) - _ALLOWED_KEYS)
    if extra:
        raise FilterSpecError(
            f"filter #{index + 1}: unknown key(s) {', '.join(extra)}; "
            f"allowed: {', '.join(sorted(_ALLOWED_KEYS))}"
        )
    unscored = spec.get("unscored", "keep")
    if unscored not in ("keep", "remove"):
        raise FilterSpecError(f"filter #{index + 1}: 'unscored' must be 'keep' or 'remove'")
    null_keep = "TRUE" if unscored == "keep" else "FALSE"
    columns = all_columns()
    if "signal" in spec:
        sig = spec["signal"]
        if sig not in KEEP_COLUMNS:
            raise FilterSpecError(
                f"filter #{index + 1}: signal {sig!r} has no keep/remove verdict; "
                f"use one of {', '.join(KEEP_COLUMNS)} or a column filter"
            )
        col, true_words = KEEP_COLUMNS[sig]
        keep = str(spec.get("keep", true_words[0]))
        if keep in true_words:
            expr = f"coalesce({_quote(col)}, {null_keep})"
        elif keep in _FALSE_WORDS:
            expr = f"coalesce(NOT {_quote(col)}, {null_keep})"
        else:
            raise FilterSpecError(
                f"filter #{index + 1}: keep must be one of "
                f"{', '.join(true_words + tuple(sorted(_FALSE_WORDS)))}"
            )
        return CompiledFilter(spec.get("name") or f"{sig}: keep {keep}", sig, expr, ())
    if "column" not in spec:
        raise FilterSpecError(f"filter #{index + 1}: give either 'signal' or 'column'")
    col = spec["column"]
    if col not in columns:
        raise FilterSpecError(
            f"filter #{index + 1}: unknown column {col!r}; signal columns: {', '.join(columns)}"
        )
    sig = columns[col][0]
    conds, params, parts = [], [], []
    if "min" in spec and spec["min"] is not None:
        conds.append(f"{_quote(col)} >= ?")
        params.append(spec["min"])
        parts.append(f">= {spec['min']}")
    if "max" in spec and spec["max"] is not None:
        conds.append(f"{_quote(col)} <= ?")
        params.append(spec["max"])
        parts.append(f"<= {spec['max']}")
    for key, neg in (("in", False), ("not_in", True)):
        if key in spec:
            values = list(spec[key])
            if not values:
                raise FilterSpecError(f"filter #{index + 1}: '{key}' needs at least one value")
            marks = ", ".join("?" for _ in values)
            conds.append(f"{_quote(col)} {'NOT ' if neg else ''}IN ({marks})")
            params.extend(values)
            parts.append(f"{'not in' if neg else 'in'} {values}")
    if "equals" in spec:
        conds.append(f"{_quote(col)} = ?")
        params.append(spec["equals"])
        parts.append(f"= {spec['equals']!r}")
    if not conds:
        raise FilterSpecError(
            f"filter #{index + 1}: column filter needs min, max, in, not_in or equals"
        )
    for p in params:
        if isinstance(p, str) and columns[col][1] in ("DOUBLE", "BIGINT", "INTEGER"):
            raise FilterSpecError(f"filter #{index + 1}: {col} is numeric, got {p!r}")
    expr = f"coalesce(({' AND '.join(conds)}), {null_keep})"
    return CompiledFilter(
        spec.get("name") or f"{col} {' and '.join(parts)}", sig, expr, tuple(params)
    )


#: the columns of :func:`filter_impact`, in order
IMPACT_COLUMNS = [
    "source",
    "filter",
    "docs",
    "tokens",
    "docs_removed",
    "tokens_removed",
    "docs_removed_frac",
    "tokens_removed_frac",
    "exact_dup_rate",
    "near_dup_rate",
]


def removal_aggregates(n: int) -> list[str]:
    """SQL aggregates over rows with keep flags ``k0..k{n-1}`` and a token count ``tok``:
    documents and tokens each flag removes (``d{i}``, ``t{i}``) and all of them together
    (``d_all``, ``t_all``)."""
    all_keep = " AND ".join(f"k{i}" for i in range(n)) or "TRUE"
    aggs = []
    for i in range(n):
        aggs += [
            f"count(*) FILTER (WHERE NOT k{i}) AS d{i}",
            f"coalesce(sum(tok) FILTER (WHERE NOT k{i}), 0) AS t{i}",
        ]
    aggs += [
        f"count(*) FILTER (WHERE NOT ({all_keep})) AS d_all",
        f"coalesce(sum(tok) FILTER (WHERE NOT ({all_keep})), 0) AS t_all",
    ]
    return aggs


def filter_impact(
    con: duckdb.DuckDBPyConnection,
    filters: Sequence[Mapping[str, Any]],
    *,
    versions: Mapping[str, str] | None = None,
    all_name: str = "all filters",
    total_source: str | None = "(all sources)",
) -> pd.DataFrame:
    """Documents and tokens removed per source by each filter alone and by all together.

    Returns a long DataFrame: source, filter, docs, tokens, docs_removed, tokens_removed,
    docs_removed_frac, tokens_removed_frac, exact_dup_rate, near_dup_rate (NaN where the
    duplicate signal was not computed). `tokens` sums documents.n_tokens (NULL counted as 0).
    One row per (source, filter) plus (source, `all_name`); with `total_source` set, the same
    rows summed over all sources come first.
    """
    compiled = [compile_filter(f, i) for i, f in enumerate(filters)]
    names = [c.name for c in compiled]
    if len(set(names)) != len(names):
        raise FilterSpecError("filter names must be unique; give each filter a 'name'")
    computed = set(current_versions(con)) | set(versions or {})
    for c in compiled:
        if c.signal not in computed:
            raise FilterSpecError(
                f"filter {c.name!r} needs signal {c.signal!r}, which has not been computed; "
                f"run `mixscope signals run --only {c.signal}` first"
            )
    view = signals_view_sql(con, versions=versions)
    signal_names()
    dup_cols = {
        "exact_dup_rate": "exact_dup_is_rep" if "exact_dup" in computed else None,
        "near_dup_rate": "near_dup_is_rep" if "near_dup" in computed else None,
    }
    keep_cols = ", ".join(f"{c.keep_sql} AS k{i}" for i, c in enumerate(compiled)) or "TRUE AS k_"
    dup_select = ", ".join(
        f"{_quote(col)} AS {name}_src" if col else f"NULL::BOOLEAN AS {name}_src"
        for name, col in dup_cols.items()
    )
    aggs = ["count(*) AS docs", "sum(tok) AS tokens", *removal_aggregates(len(compiled))]
    for name in dup_cols:
        aggs.append(
            f"count(*) FILTER (WHERE {name}_src = FALSE) / nullif(count({name}_src), 0) AS {name}"
        )
    params = [p for c in compiled for p in c.params]
    sql = (
        f"WITH v AS ({view}), f AS (SELECT source, coalesce(n_tokens, 0) AS tok, {keep_cols}, "
        f"{dup_select} FROM v) "
        f"SELECT source, grouping(source) AS is_total, {', '.join(aggs)} "
        "FROM f GROUP BY GROUPING SETS ((source), ())"
    )
    raw = con.execute(sql, params).df()
    rows = []
    for rec in raw.to_dict("records"):
        is_total = bool(rec["is_total"])
        if is_total and total_source is None:
            continue
        src = total_source if is_total else rec["source"]
        for i, name in enumerate([*names, all_name]):
            key = str(i) if i < len(names) else "_all"
            rows.append(
                {
                    "source": src,
                    "filter": name,
                    "docs": int(rec["docs"]),
                    "tokens": int(rec["tokens"] or 0),
                    "docs_removed": int(rec[f"d{key}"]),
                    "tokens_removed": int(rec[f"t{key}"] or 0),
                    "exact_dup_rate": rec["exact_dup_rate"],
                    "near_dup_rate": rec["near_dup_rate"],
                    "_total": is_total,
                }
            )
    return _impact_frame(rows)


def _impact_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The :data:`IMPACT_COLUMNS` frame of the rows: removed fractions added, the rows
    summed over all sources (``_total``) first, then by source."""
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=IMPACT_COLUMNS)
    out["docs_removed_frac"] = out["docs_removed"] / out["docs"].where(out["docs"] > 0)
    out["tokens_removed_frac"] = out["tokens_removed"] / out["tokens"].where(out["tokens"] > 0)
    for col in ("exact_dup_rate", "near_dup_rate"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    out = out.sort_values(["_total", "source"], ascending=[False, True], kind="stable")
    return out[IMPACT_COLUMNS].reset_index(drop=True)


def duplicate_rates(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per source: documents, exact_dup_rate and near_dup_rate (see module docstring)."""
    imp = filter_impact(con, [], total_source=None)
    return imp[["source", "docs", "exact_dup_rate", "near_dup_rate"]].reset_index(drop=True)


__all__ = [
    "KEEP_COLUMNS",
    "CompiledFilter",
    "FilterSpecError",
    "compile_filter",
    "duplicate_rates",
    "filter_impact",
]

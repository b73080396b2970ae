"""Signal thresholds as DocFilter conditions, and their impact per source.

A signal condition is `Condition(kind="signal", name=<signal>, column=<column>, op, value)`,
e.g. `Condition("signal", "gopher_quality", "gopher_quality_pass", "eq", "true")` or
`Condition("signal", "compression", "compression_ratio", "ge", "0.3")`. In the URL (param `c`)
it reads `signal.compression.compression_ratio.ge.0.3`; several are joined with `|`.

The resolver turns it into

    doc_id IN (SELECT doc_id FROM signal_<name>
               WHERE version = <current version of <name>> AND <column> <op> ?)

Choices (documented here because they change counts):

* **Version**: the signal's *current* version, the one most recently computed according to
  `signals_catalog` (largest `computed_at`, ties broken by version), looked up inside the SQL
  so that a condition in a shared URL follows the workspace's latest run. This is the same
  definition `signals_view_sql` and the Signals page use.
* **Unscored documents never match**: a document without a row at the current version (not
  yet scored) or whose value is NULL (e.g. `c4_kept_lines` of a failing page) is excluded by
  every signal condition, like a SQL comparison with NULL. Explore shows the coverage next to
  the widgets so a partial run is visible.
* **Values are typed by the column's type**: BOOLEAN accepts true/false (also 1/0, yes/no,
  pass/fail), DOUBLE and BIGINT numbers, VARCHAR strings; `op="in"` takes a list or a
  comma-separated string (so its items cannot contain `,` or `|`). Values are always bound
  parameters; the signal and column names are checked against the registry before they are
  written into the SQL.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import duckdb
import pandas as pd

from analytics.filters import Condition, DocFilter, register_condition
from analytics.signals.base import SignalError
from analytics.signals.impact import removal_aggregates
from analytics.signals.registry import SIGNALS, signal_names

#: signal -> its boolean "keep" column: pass/fail rule sets, then dedup representatives
PASS_COLUMNS: dict[str, str] = {
    "gopher_quality": "gopher_quality_pass",
    "gopher_repetition": "gopher_rep_pass",
    "c4_quality": "c4_pass",
    "fineweb_quality": "fineweb_pass",
}
DEDUP_COLUMNS: dict[str, str] = {
    "exact_dup": "exact_dup_is_rep",
    "near_dup": "near_dup_is_rep",
}
#: the default quality filters: every heuristic rule set, keep passing documents
DEFAULT_QUALITY = tuple(
    Condition("signal", name, col, "eq", "true") for name, col in PASS_COLUMNS.items()
)

_TRUE = {"true", "1", "yes", "y", "t", "pass", "passing"}
_FALSE = {"false", "0", "no", "n", "f", "fail", "failing"}
_NUMERIC = {"DOUBLE", "BIGINT", "INTEGER", "UBIGINT"}
_OPS_FOR_BOOL = {"eq", "ne"}
_OPS_SYMBOL = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥", "in": "in"}


class SignalConditionError(SignalError):
    """A signal condition naming an unknown signal/column or carrying an unusable value."""


def column_type(name: str, column: str) -> str:
    """DuckDB type of `column` of signal `name`; SignalConditionError when either is unknown."""
    signal_names()
    if name not in SIGNALS:
        raise SignalConditionError(
            f"filter condition: unknown signal {name!r}; valid names: {', '.join(SIGNALS)}"
        )
    cols = {c.name: c.type for c in SIGNALS[name].columns}
    if column not in cols:
        raise SignalConditionError(
            f"filter condition: signal {name!r} has no column {column!r}; "
            f"its columns: {', '.join(cols)}"
        )
    return cols[column]


def typed_value(value: Any, col_type: str, *, where: str = "value") -> Any:
    """`value` converted to the Python type matching a DuckDB column type."""
    if col_type == "BOOLEAN":
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise SignalConditionError(
            f"filter condition {where}: expected true or false, got {value!r}"
        )
    if col_type in _NUMERIC:
        try:
            num = float(value)
        except (TypeError, ValueError):
            raise SignalConditionError(
                f"filter condition {where}: expected a number, got {value!r}"
            ) from None
        if math.isnan(num):
            raise SignalConditionError(f"filter condition {where}: NaN is not a usable bound")
        if col_type != "DOUBLE" and num.is_integer():
            return int(num)
        return num
    if value is None:
        raise SignalConditionError(f"filter condition {where}: a value is required")
    return str(value)


def split_values(value: Any) -> list[Any]:
    """Items of an `in` value: a list/tuple as is, a string split on commas (blanks dropped)."""
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    else:
        items = [v.strip() for v in str(value if value is not None else "").split(",")]
    return [v for v in items if v != ""]


@register_condition("signal")
def resolve_signal_condition(cond: Condition, prefix: str = "") -> tuple[str, list[Any]]:
    """(SQL predicate, params) of a signal condition; see the module docstring."""
    name, column = cond.name, cond.column
    col_type = column_type(name, column)  # validates both names against the registry
    where = f"{name}.{column}"
    if col_type == "BOOLEAN" and cond.op not in _OPS_FOR_BOOL | {"in"}:
        raise SignalConditionError(
            f"filter condition {where}: a true/false column takes eq or ne, not {cond.op!r}"
        )
    if cond.op == "in":
        items = [typed_value(v, col_type, where=where) for v in split_values(cond.value)]
        if not items:
            raise SignalConditionError(f"filter condition {where}: 'in' needs at least one value")
        test, value = f"{column} IN (SELECT unnest(?::{col_type}[]))", items
    else:
        test, value = f"{column} {cond.sql_op} ?", typed_value(cond.value, col_type, where=where)
    sql = (
        f"{prefix}doc_id IN (SELECT doc_id FROM signal_{name} WHERE version = "
        "(SELECT version FROM signals_catalog WHERE name = ? "
        "ORDER BY computed_at DESC, version DESC LIMIT 1) "
        f"AND {test})"
    )
    return sql, [name, value]


# ---------------------------------------------------------------------- helpers for the UI
def signal_conditions(flt: DocFilter) -> tuple[Condition, ...]:
    """The filter's conditions of kind "signal"."""
    return tuple(c for c in flt.conditions if c.kind == "signal")


def parse_conditions(items: Iterable[str | Condition]) -> tuple[Condition, ...]:
    """Conditions from URL tokens (`kind.name.column.op.value`) or Condition objects."""
    out = []
    for item in items:
        out.append(item if isinstance(item, Condition) else Condition.parse(str(item)))
    return tuple(out)


def describe_condition(cond: Condition) -> str:
    """A short readable label, e.g. `gopher_quality: pass` or `compression_ratio ≥ 0.3`."""
    if cond.kind != "signal":
        col = f".{cond.column}" if cond.column else ""
        return f"{cond.kind} {cond.name}{col} {cond.op} {cond.value}"
    truth = str(cond.value).strip().lower()
    if cond.column in PASS_COLUMNS.values() and cond.op in _OPS_FOR_BOOL:
        keep_pass = (truth in _TRUE) == (cond.op == "eq")
        return f"{cond.name}: {'pass' if keep_pass else 'fail'}"
    if cond.column in DEDUP_COLUMNS.values() and cond.op in _OPS_FOR_BOOL:
        keep_rep = (truth in _TRUE) == (cond.op == "eq")
        return f"{cond.name}: {'one per cluster' if keep_rep else 'duplicates only'}"
    return f"{cond.column} {_OPS_SYMBOL.get(cond.op, cond.op)} {cond.value}"


def condition_impact(
    con: duckdb.DuckDBPyConnection,
    flt: DocFilter | None = None,
    *,
    conditions: Sequence[str | Condition] | None = None,
    all_name: str = "all together",
    total_source: str = "(all sources)",
    tokenizer: str | None = None,
) -> pd.DataFrame:
    """Documents and tokens that each condition removes, alone and all together, per source.

    (Over 80 lines: one SQL statement built and read back in one place; split, the names of
    its aggregates would be spread over several functions.)

    Population: the documents matching `flt` without its conditions (facets, dates, lengths,
    text). Filters: `conditions` (URL tokens or Condition objects) or, when None, the
    conditions of `flt`. A document is removed by a condition when it does not satisfy it (so
    unscored documents count as removed by a signal condition, matching Explore); "all
    together" removes a document that any condition removes. Tokens are documents.n_tokens
    (NULL counted as 0), or the counts in `tokenizer` (one added by `mixscope tokenize`).

    Returns a long DataFrame: source, filter, docs, tokens, docs_removed, tokens_removed,
    docs_removed_frac, tokens_removed_frac; the rows summed over all sources come first under
    `total_source`; with no condition, only the population counts (filter = `all_name`,
    nothing removed).
    """
    flt = flt or DocFilter()
    table = "documents"
    if tokenizer and tokenizer != "ingest":
        from analytics.tokenize import documents_table

        table = documents_table(con, tokenizer)
    conds = parse_conditions(flt.conditions if conditions is None else conditions)
    population = flt.with_(conditions=())
    pop_where, pop_params = population.where("d")
    names: list[str] = []
    keeps, params = [], []
    for i, c in enumerate(conds):
        sql, p = DocFilter(conditions=(c,)).where("d")
        label = describe_condition(c)
        while label in names:
            label += " (again)"
        names.append(label)
        keeps.append(f"{sql} AS k{i}")
        params.extend(p)
    params.extend(pop_params)
    aggs = ["count(*) AS docs", "coalesce(sum(tok), 0) AS tokens", *removal_aggregates(len(conds))]
    sql = (
        "WITH f AS (SELECT d.source, coalesce(d.n_tokens, 0) AS tok"
        + "".join(f", {k}" for k in keeps)
        + f" FROM {table} d WHERE {pop_where}) "
        f"SELECT source, grouping(source) AS is_total, {', '.join(aggs)} "
        "FROM f GROUP BY GROUPING SETS ((source), ()) ORDER BY is_total DESC, source"
    )
    raw = con.execute(sql, params).df()
    rows = []
    for rec in raw.to_dict("records"):
        if rec["source"] is None and not rec["is_total"]:
            rec["source"] = "(none)"
        if rec["is_total"] and not int(rec["docs"]):
            continue
        src = total_source if rec["is_total"] else rec["source"]
        for i, label in enumerate([*names, all_name]):
            key = str(i) if i < len(names) else "_all"
            rows.append(
                {
                    "source": src,
                    "filter": label,
                    "docs": int(rec["docs"]),
                    "tokens": int(rec["tokens"]),
                    "docs_removed": int(rec[f"d{key}"]),
                    "tokens_removed": int(rec[f"t{key}"]),
                }
            )
    cols = ["source", "filter", "docs", "tokens", "docs_removed", "tokens_removed"]
    out = pd.DataFrame(rows, columns=cols)
    docs = out["docs"].where(out["docs"] > 0).astype(float)
    toks = out["tokens"].where(out["tokens"] > 0).astype(float)
    out["docs_removed_frac"] = out["docs_removed"] / docs
    out["tokens_removed_frac"] = out["tokens_removed"] / toks
    return out


def condition_presets(computed: Iterable[str]) -> dict[str, Condition]:
    """Readable label -> condition for every keep-rule of the computed signals (for pickers)."""
    have = set(computed)
    out: dict[str, Condition] = {}
    for name, col in {**PASS_COLUMNS, **DEDUP_COLUMNS}.items():
        if name in have:
            cond = Condition("signal", name, col, "eq", "true")
            out[describe_condition(cond)] = cond
    return out


def check_condition(cond: Condition) -> Condition:
    """Resolve `cond` once (raising a MixscopeError for a bad one) and return it."""
    DocFilter(conditions=(cond,)).where()
    return cond


__all__ = [
    "DEDUP_COLUMNS",
    "DEFAULT_QUALITY",
    "PASS_COLUMNS",
    "SignalConditionError",
    "check_condition",
    "column_type",
    "condition_impact",
    "condition_presets",
    "describe_condition",
    "parse_conditions",
    "resolve_signal_condition",
    "signal_conditions",
    "split_values",
    "typed_value",
]

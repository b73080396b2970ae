"""Small read-only aggregates over computed signals for the dashboard (and notebooks).

Every function takes a cursor (and, where it narrows the corpus, a DocFilter) and returns a
small DataFrame computed in DuckDB. "Current version" of a signal is the most recently
computed one (see `store.current_versions`); signal and column names are checked against the
registry before they reach the SQL, values are bound parameters.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from analytics.filters import DocFilter
from analytics.signals.base import SignalError
from analytics.signals.registry import SIGNALS, all_columns, signal_names
from analytics.signals.runner import list_signals
from analytics.signals.store import current_versions

NUMERIC_TYPES = ("DOUBLE", "BIGINT", "INTEGER")


def computed_signals(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """`list_signals` rows of the *current* version of each signal with at least one scored
    document: name, version, is_default, params, description, computed_at, n_docs, coverage."""
    cur = current_versions(con)
    df = list_signals(con)
    keep = [cur.get(n) == v and d > 0 for n, v, d in zip(df["name"], df["version"], df["n_docs"])]
    return df[keep].reset_index(drop=True)


def _column(column: str) -> tuple[str, str]:
    cols = all_columns()
    if column not in cols:
        raise SignalError(f"unknown signal column {column!r}; signal columns: {', '.join(cols)}")
    return cols[column]


def column_stats(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """min, max and non-null count of every numeric column of every computed signal (current
    version): signal, column, type, min, max, n."""
    versions = current_versions(con)
    rows = []
    for name in signal_names():
        if name not in versions:
            continue
        cols = [c for c in SIGNALS[name].columns if c.type in NUMERIC_TYPES]
        if not cols:
            continue
        aggs = ", ".join(f"min({c.name}), max({c.name}), count({c.name})" for c in cols)
        res = con.execute(
            f"SELECT {aggs} FROM signal_{name} WHERE version = ?", [versions[name]]
        ).fetchall()[0]
        for i, c in enumerate(cols):
            lo, hi, n = res[3 * i : 3 * i + 3]
            rows.append(
                {"signal": name, "column": c.name, "type": c.type, "min": lo, "max": hi, "n": n}
            )
    return pd.DataFrame(rows, columns=["signal", "column", "type", "min", "max", "n"])


def column_values(con: duckdb.DuckDBPyConnection, *, column: str, limit: int = 200) -> pd.DataFrame:
    """The `limit` most frequent values of a text signal column (current version): value, docs."""
    name, _type = _column(column)
    versions = current_versions(con)
    if name not in versions:
        return pd.DataFrame(columns=["value", "docs"])
    return con.execute(
        f"SELECT {column} AS value, count(*) AS docs FROM signal_{name} "
        f"WHERE version = ? AND {column} IS NOT NULL GROUP BY 1 ORDER BY docs DESC, value LIMIT ?",
        [versions[name], int(limit)],
    ).df()


def signal_sample(
    con: duckdb.DuckDBPyConnection,
    flt: DocFilter | None = None,
    *,
    x: str,
    y: str,
    n: int = 2000,
    seed: int = 0,
) -> tuple[pd.DataFrame, int]:
    """A deterministic sample of documents under `flt` with both signal values.

    Returns (sample, population): sample has doc_id, source, n_tokens, `x`, `y` (at most `n`
    rows, chosen by a seeded hash of doc_id, so the same call gives the same points);
    population is how many documents under the filter have both values.
    """
    flt = flt or DocFilter()
    versions = current_versions(con)
    joins, params, seen = [], [], {}
    for col in dict.fromkeys([x, y]):
        name, typ = _column(col)
        if typ not in NUMERIC_TYPES:
            raise SignalError(f"column {col!r} is not numeric ({typ})")
        if name not in versions:
            raise SignalError(f"signal {name!r} has not been computed")
        if name not in seen:
            seen[name] = f"s{len(seen)}"
            joins.append(
                f"JOIN (SELECT * FROM signal_{name} WHERE version = ?) {seen[name]} "
                f"ON {seen[name]}.doc_id = d.doc_id"
            )
            params.append(versions[name])
    xs, ys = f"{seen[_column(x)[0]]}.{x}", f"{seen[_column(y)[0]]}.{y}"
    where, wparams = flt.where("d")
    base = (
        f"SELECT d.doc_id, d.source, d.n_tokens, {xs} AS {x}"
        + (f", {ys} AS {y}" if y != x else "")
        + f" FROM documents d {' '.join(joins)} "
        f"WHERE {where} AND {xs} IS NOT NULL AND {ys} IS NOT NULL"
    )
    total = int(con.execute(f"SELECT count(*) FROM ({base})", params + wparams).fetchall()[0][0])
    sample = con.execute(
        f"SELECT * FROM ({base}) ORDER BY hash(doc_id || ?), doc_id LIMIT ?",
        params + wparams + [str(seed), int(n)],
    ).df()
    return sample, total


def data_age(
    con: duckdb.DuckDBPyConnection,
    flt: DocFilter | None = None,
    *,
    cutoff: str | dt.date,
) -> pd.DataFrame:
    """Tokens dated before / on-or-after an evaluation cutoff date, per source.

    Returns source, docs, tokens, tokens_before, tokens_after, tokens_undated, share_before
    and share_after (of the source's *dated* tokens; NaN when none is dated), share_undated
    (of all its tokens); a first row "(all sources)" sums them. Tokens = n_tokens (NULL -> 0).
    """
    flt = flt or DocFilter()
    try:
        day = cutoff if isinstance(cutoff, dt.date) else dt.date.fromisoformat(str(cutoff))
    except ValueError as exc:
        raise SignalError(f"cutoff: expected a date YYYY-MM-DD, got {cutoff!r}") from exc
    where, params = flt.where()
    df = con.execute(
        f"""SELECT coalesce(source, '(none)') AS source, grouping(source) AS is_total,
                   count(*) AS docs, coalesce(sum(n_tokens), 0) AS tokens,
                   coalesce(sum(n_tokens) FILTER (WHERE date < ?), 0) AS tokens_before,
                   coalesce(sum(n_tokens) FILTER (WHERE date >= ?), 0) AS tokens_after,
                   coalesce(sum(n_tokens) FILTER (WHERE date IS NULL), 0) AS tokens_undated
            FROM documents WHERE {where}
            GROUP BY GROUPING SETS ((source), ()) ORDER BY is_total DESC, source""",
        [day, day, *params],
    ).df()
    df = df[df["docs"] > 0].copy()
    df.loc[df["is_total"] == 1, "source"] = "(all sources)"
    for c in ("docs", "tokens", "tokens_before", "tokens_after", "tokens_undated"):
        df[c] = df[c].astype("int64")
    dated = (df["tokens_before"] + df["tokens_after"]).astype(float)
    dated = dated.where(dated > 0)
    df["share_before"] = df["tokens_before"] / dated
    df["share_after"] = df["tokens_after"] / dated
    df["share_undated"] = df["tokens_undated"] / df["tokens"].where(df["tokens"] > 0).astype(float)
    return df.drop(columns="is_total").reset_index(drop=True)


def near_dup_lsh(con: duckdb.DuckDBPyConnection) -> dict | None:
    """`NearDup.lsh_summary()` for the parameters of the current near_dup version (None when
    near duplicates are not computed)."""
    import json

    from analytics.signals.registry import get_signal

    cur = computed_signals(con)
    row = cur[cur["name"] == "near_dup"]
    if row.empty:
        return None
    params = row.iloc[0]["params"]
    params = json.loads(params) if isinstance(params, str) else dict(params or {})
    return get_signal("near_dup", **params).lsh_summary()


def document_signals(con: duckdb.DuckDBPyConnection, doc_id: str) -> pd.DataFrame:
    """Every stored value of one document's signals, from the current version of each
    computed signal: signal, version, column, type, value (one row per column; `value` keeps
    its type in an object column). A signal that did not score the document has no rows."""
    cols = ["signal", "version", "column", "type", "value"]
    rows = []
    for name, version in current_versions(con).items():
        spec = SIGNALS[name].columns
        names = ", ".join(c.name for c in spec)
        got = con.execute(
            f"SELECT {names} FROM signal_{name} WHERE version = ? AND doc_id = ? LIMIT 1",
            [version, str(doc_id)],
        ).fetchall()
        if not got:
            continue
        for c, value in zip(spec, got[0], strict=True):
            rows.append({"signal": name, "version": version, "column": c.name, "type": c.type,
                         "value": value})  # fmt: skip
    order = {n: i for i, n in enumerate(signal_names())}
    df = pd.DataFrame(rows, columns=cols)
    if len(df):
        df = df.sort_values("signal", key=lambda s: s.map(order), kind="stable")
    return df.reset_index(drop=True).astype({"value": object})


def document_signal_summary(values: pd.DataFrame) -> dict:
    """What a reader asks first about one document, from `document_signals` rows.

    Returns a dict with
    - ``filters``: DataFrame signal, passed (bool), failing_rule (None when passing), one row
      per quality filter (a signal with a BOOLEAN ``*_pass`` column; its ``*_reason`` column is
      the first failing rule);
    - ``language``: (language, confidence) or None;
    - ``duplicates``: DataFrame signal, cluster, size, representative, is_representative, one
      row per duplicate signal (columns ``*_cluster``, ``*_size``, ``*_rep``, ``*_is_rep``);
    - ``numbers``: DataFrame signal, column, value of every other value (the numbers behind
      the verdicts), value as stored.
    """
    by_sig: dict[str, dict] = {}
    for sig, col, value in zip(values["signal"], values["column"], values["value"], strict=True):
        by_sig.setdefault(sig, {})[col] = value
    filters, dups, used = [], [], set()
    language = None
    for sig, cols in by_sig.items():
        pass_col = next((c for c in cols if c.endswith("_pass")), None)
        if pass_col is not None:
            reason_col = pass_col[: -len("_pass")] + "_reason"
            passed = bool(cols[pass_col]) if cols[pass_col] is not None else None
            filters.append({"signal": sig, "passed": passed,
                            "failing_rule": None if passed else cols.get(reason_col)})  # fmt: skip
            used |= {(sig, pass_col), (sig, reason_col)}
        cluster_col = next((c for c in cols if c.endswith("_cluster")), None)
        if cluster_col is not None:
            stem = cluster_col[: -len("_cluster")]
            size = cols.get(f"{stem}_size")
            dups.append({"signal": sig, "cluster": cols[cluster_col],
                         "size": None if size is None else int(size),
                         "representative": cols.get(f"{stem}_rep"),
                         "is_representative": cols.get(f"{stem}_is_rep")})  # fmt: skip
            used |= {(sig, f"{stem}_{x}") for x in ("cluster", "size", "rep", "is_rep")}
        if "detected_lang" in cols:
            conf = cols.get("detected_lang_conf")
            language = (cols["detected_lang"], None if conf is None else float(conf))
            used |= {(sig, "detected_lang"), (sig, "detected_lang_conf")}
    numbers = [
        {"signal": sig, "column": col, "value": v}
        for sig, cols in by_sig.items()
        for col, v in cols.items()
        if (sig, col) not in used
    ]
    return {
        "filters": pd.DataFrame(filters, columns=["signal", "passed", "failing_rule"]),
        "language": language,
        "duplicates": pd.DataFrame(
            dups, columns=["signal", "cluster", "size", "representative", "is_representative"]
        ),
        "numbers": pd.DataFrame(numbers, columns=["signal", "column", "value"]),
    }


__all__ = [
    "column_stats",
    "column_values",
    "computed_signals",
    "data_age",
    "document_signal_summary",
    "near_dup_lsh",
    "document_signals",
    "signal_sample",
]

"""Selections: per-group counts and hashes computed in DuckDB, and exact reproduction.

Hashes (all computed inside DuckDB, no per-row Python):

* ``doc_ids_hash`` of a selection: order-independent. Over the selected rows DuckDB computes
  h = md5_number(doc_id) (128-bit), n = count(*), X = bit_xor(h) and S = sum(h >> 64) (exact
  HUGEINT); the hash is ``"v1:" + sha256(f"{n}:{X}:{S}")``. MD5 (not DuckDB's
  ``hash()``) keeps the value stable across DuckDB versions; XOR and SUM together make
  accidental equality of two different id sets vanishingly unlikely.
* ``snapshot_hash`` of the corpus: the same construction with h = md5_number(doc_id || ':' ||
  n_tokens) over every row of the table, plus the total tokens. It changes when a document
  is added, removed, renamed or re-tokenised (it does not look at the text itself).

Group specifications (``group_by``) are a column name of the table or one of the whitelisted
forms ``year(col)``, ``month(col)``, ``lower(col)``, ``json(col, key)`` (``json_extract_string``
of ``$.key``), ``bin(col, width)`` (``floor(col / width) * width``), where ``col`` must be a column
of the table (optionally restricted by ``columns``). A group's id is its value cast to VARCHAR
(``"(null)"`` for NULL). Filters are ``(sql, params)`` pairs built by trusted code; they are
checked to form a single SELECT and always bound as parameters. Parameters are stored in the
manifest as JSON values: dates become ISO strings (DuckDB casts them back when comparing with a
DATE column), tuples become lists.

``derived`` columns extend the allowed names with per-document values that live in other
tables (a map's cluster, a signal's column): a mapping name -> SQL template built by trusted
code (see :mod:`analytics.mixture.builder`), where ``{doc}`` stands for the documents table (or
its alias) so the template can be a correlated scalar subquery. A derived name is usable
wherever a column is (``bin(compression_ratio, 0.1)``); the stored selection SQL holds the
expanded subquery, so :func:`reproduce` needs nothing but the workspace.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .errors import ReproductionError, SelectionError
from .manifest import Manifest, Selection

NULL_GROUP = "(null)"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FUNC1 = re.compile(r"^(year|month|lower)\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$", re.IGNORECASE)
_JSON = re.compile(
    r"^json\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,\s*'?([A-Za-z0-9_][A-Za-z0-9_.\-]*)'?\s*\)$",
    re.IGNORECASE,
)
_BIN = re.compile(
    r"^bin\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,\s*([0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)\s*\)$",
    re.IGNORECASE,
)

Where = tuple[str, Sequence[Any]]
Derived = Mapping[str, str]
DOC_REF = "{doc}"


def json_param(value: Any, *, where: str = "where") -> Any:
    """A filter parameter as the JSON value stored in a manifest (and bound when counting).

    str/int/bool/None stay; finite floats stay; dates and datetimes become ISO 8601 strings;
    Decimals become floats; tuples/lists become lists of such scalars. Anything else raises
    :class:`SelectionError`.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SelectionError(f"{where}: parameter {value!r} is not a finite number")
        return value
    if isinstance(value, decimal.Decimal):
        return json_param(float(value), where=where)
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        out = [json_param(v, where=where) for v in value]
        if any(isinstance(v, list) for v in out):
            raise SelectionError(f"{where}: nested list parameters are not supported")
        return out
    raise SelectionError(
        f"{where}: parameter of type {type(value).__name__} cannot be stored in a manifest"
    )


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def table_columns(con: Any, table: str = "documents") -> list[str]:
    """Column names of ``table`` as the connection resolves it (current database, temp views)."""
    if not _IDENT.match(table):
        raise SelectionError(f"table: expected a plain identifier, got {table!r}")
    try:
        cur = con.execute(f"SELECT * FROM {_quote(table)} LIMIT 0")
    except Exception as exc:  # duckdb.CatalogException
        raise SelectionError(f"table: {table!r} does not exist in this workspace ({exc})") from None
    return [d[0] for d in cur.description]


def group_expression(
    spec: str,
    *,
    columns: Sequence[str],
    derived: Derived | None = None,
    doc_ref: str = '"documents"',
) -> str:
    """SQL for a whitelisted group specification (see the module docstring).

    ``derived`` names (not shadowing a column) expand to their template with ``{doc}``
    replaced by ``doc_ref``.
    """
    extra = {k: v for k, v in (derived or {}).items() if k not in set(columns)}
    allowed = set(columns) | set(extra)
    s = str(spec).strip()

    def col(name: str) -> str:
        if name not in allowed:
            raise SelectionError(f"group_by: unknown column {name!r}; allowed: {sorted(allowed)}")
        if name in extra:
            return "(" + extra[name].replace(DOC_REF, doc_ref) + ")"
        return _quote(name)

    if _IDENT.match(s):
        return col(s)
    if m := _FUNC1.match(s):
        return f"{m.group(1).lower()}({col(m.group(2))})"
    if m := _JSON.match(s):
        return f"json_extract_string({col(m.group(1))}, '$.{m.group(2)}')"
    if m := _BIN.match(s):
        width = float(m.group(2))
        if width <= 0:
            raise SelectionError(f"group_by: bin width must be > 0, got {m.group(2)}")
        return f"(floor({col(m.group(1))} / {width!r}) * {width!r})"
    raise SelectionError(
        f"group_by: {spec!r} is not a column or one of year(col), month(col), lower(col), "
        "json(col, key), bin(col, width)"
    )


def _check_select(con: Any, sql: str, *, what: str) -> None:
    try:
        stmts = con.extract_statements(sql)
    except Exception as exc:  # duckdb.ParserException and friends
        raise SelectionError(f"{what}: does not parse: {exc}") from None
    if len(stmts) != 1 or str(stmts[0].type).split(".")[-1] != "SELECT":
        raise SelectionError(f"{what}: expected exactly one SELECT statement")


def _where(con: Any, where: Where | None, table: str) -> tuple[str, list[Any]]:
    if where is None:
        return "TRUE", []
    if not (isinstance(where, tuple) and len(where) == 2 and isinstance(where[0], str)):
        raise SelectionError("where: expected a (sql, params) pair")
    sql, params = where
    if not sql.strip():
        return "TRUE", list(params)
    _check_select(con, f"SELECT 1 FROM {_quote(table)} WHERE ({sql})", what="where")
    return sql, list(params)


def _digest(n: int, x: Any, s: Any, *extra: Any) -> str:
    payload = ":".join(str(v) for v in (n, x or 0, s or 0, *extra))
    return "v1:" + hashlib.sha256(payload.encode()).hexdigest()


# aggregate over a relation with columns (doc_id, n_tokens, h = md5_number(doc_id)):
# count, tokens, rows without token count, X = bit_xor(h), S = sum(h >> 64) (exact HUGEINT)
_AGG = "count(*), sum(n_tokens), count(*) - count(n_tokens), bit_xor(h), sum((h >> 64)::HUGEINT)"


def snapshot_hash(con: Any, *, table: str = "documents") -> str:
    """Order-independent hash over (doc_id, n_tokens) of every row of ``table``."""
    table_columns(con, table)
    key = "doc_id || ':' || coalesce(CAST(n_tokens AS VARCHAR), 'NULL')"
    n, tok, x, s = con.execute(
        f"SELECT count(*), coalesce(sum(n_tokens), 0), bit_xor(h), sum((h >> 64)::HUGEINT) "
        f"FROM (SELECT n_tokens, md5_number({key}) AS h FROM {_quote(table)})"
    ).fetchone()
    return _digest(n, x, s, tok)


def selection_sql(
    *,
    group_by: str,
    table: str = "documents",
    where: Where | None = None,
    columns: Sequence[str],
    derived: Derived | None = None,
) -> str:
    """The per-group SELECT stored in a manifest (last placeholder = the group value)."""
    expr = group_expression(group_by, columns=columns, derived=derived, doc_ref=_quote(table))
    fsql = "TRUE" if where is None or not where[0].strip() else where[0]
    return (
        f"SELECT doc_id, n_tokens FROM {_quote(table)} WHERE ({fsql}) "
        f"AND CAST(({expr}) AS VARCHAR) IS NOT DISTINCT FROM ?"
    )


def group_counts(
    con: Any,
    *,
    group_by: str,
    where: Where | None = None,
    table: str = "documents",
    columns: Sequence[str] | None = None,
    derived: Derived | None = None,
) -> pd.DataFrame:
    """Per-group ``group, group_value, documents, tokens, doc_ids_hash`` of the filtered table.

    One aggregate query. Raises :class:`SelectionError` when selected rows lack ``n_tokens``.
    The filter's parameters are bound as :func:`json_param` values (as a manifest stores them).
    """
    cols = table_columns(con, table)
    allowed = [c for c in cols if columns is None or c in columns]
    expr = group_expression(group_by, columns=allowed, derived=derived, doc_ref=_quote(table))
    fsql, params = _where(con, where, table)
    params = [json_param(p) for p in params]
    rows = con.execute(
        f"SELECT g, {_AGG} FROM (SELECT CAST(({expr}) AS VARCHAR) AS g, doc_id, n_tokens, "
        "md5_number(doc_id) AS h "
        f"FROM {_quote(table)} WHERE ({fsql})) GROUP BY 1 ORDER BY 1 NULLS LAST",
        params,
    ).fetchall()
    out = []
    for g, n, tok, missing, x, s in rows:
        gid = NULL_GROUP if g is None else g
        if missing:
            raise SelectionError(
                f"documents.n_tokens: {missing} selected document(s) of group {gid!r} have no "
                "token count"
            )
        out.append(
            {
                "group": gid,
                "group_value": g,
                "documents": int(n),
                "tokens": int(tok or 0),
                "doc_ids_hash": _digest(n, x, s),
            }
        )
    ids = [r["group"] for r in out]
    if len(set(ids)) != len(ids):
        raise SelectionError(f"group_by: a group value equals the null placeholder {NULL_GROUP!r}")
    return pd.DataFrame(
        out, columns=["group", "group_value", "documents", "tokens", "doc_ids_hash"]
    )


def group_selections(
    con: Any,
    *,
    group_by: str,
    where: Where | None = None,
    table: str = "documents",
    columns: Sequence[str] | None = None,
    derived: Derived | None = None,
) -> tuple[pd.DataFrame, dict[str, Selection]]:
    """Counts per group plus a manifest :class:`Selection` per group (sharing one snapshot hash)."""
    counts = group_counts(
        con, group_by=group_by, where=where, table=table, columns=columns, derived=derived
    )
    cols = [c for c in table_columns(con, table) if columns is None or c in columns]
    sql = selection_sql(group_by=group_by, table=table, where=where, columns=cols, derived=derived)
    snap = snapshot_hash(con, table=table)
    base = [json_param(p) for p in where[1]] if where is not None else []
    sels = {
        r.group: Selection(
            sql=sql,
            params=[*base, r.group_value],
            snapshot_hash=snap,
            doc_ids_hash=r.doc_ids_hash,
            group_by=group_by,
            group_value=r.group_value,
        )
        for r in counts.itertuples(index=False)
    }
    return counts, sels


def selection_stats(con: Any, selection: Selection) -> dict[str, Any]:
    """Re-run a stored selection: ``documents``, ``tokens``, ``doc_ids_hash``."""
    _check_select(con, selection.sql, what="selection.sql")
    try:
        n, tok, missing, x, s = con.execute(
            f"SELECT {_AGG} FROM (SELECT doc_id, n_tokens, md5_number(doc_id) AS h FROM "
            f"({selection.sql}) AS sel)",
            list(selection.params),
        ).fetchone()
    except Exception as exc:  # duckdb errors: missing table, refused file access, bad params
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SelectionError(f"selection.sql: cannot be run on this workspace: {first}") from None
    return {
        "documents": int(n),
        "tokens": int(tok or 0),
        "missing_tokens": int(missing),
        "doc_ids_hash": _digest(n, x, s),
    }


@dataclass
class ReproductionReport:
    """Outcome of :func:`reproduce`: one row per (phase, group) and the snapshot comparison."""

    snapshot_hash: str
    snapshot_matches: bool
    groups: pd.DataFrame
    differences: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.snapshot_matches and not self.differences


_TOKENIZER_VIEW = re.compile(r'\bFROM "(documents_tok_[A-Za-z][A-Za-z0-9_]*)"')


def manifest_table(manifest: Manifest) -> str:
    """The relation a manifest's selections read: ``documents``, or the view of the tokenizer
    its budgets were counted in (``documents_tok_<name>``, see analytics.tokenize)."""
    for ph in manifest.phases:
        for g in ph.groups:
            if g.selection is not None:
                m = _TOKENIZER_VIEW.search(g.selection.sql)
                return m.group(1) if m else "documents"
    return "documents"


def reproduce(
    con: Any, manifest: Manifest, *, strict: bool = True, table: str | None = None
) -> ReproductionReport:
    """Recompute every group's selection and compare with the manifest.

    Raises :class:`ReproductionError` listing each group whose documents, tokens or
    doc_ids_hash differ (a group that no longer exists shows 0 documents). With ``strict``
    (default) a changed corpus snapshot is an error even when every group still selects the
    same documents; with ``strict=False`` that case only sets ``snapshot_matches=False``.

    The SQL comes from the manifest file: each must be a single SELECT. Run this on a
    read-only connection (``Workspace.reader()``) with external access disabled when the
    manifest is not trusted. ``table`` defaults to the one its selections read.
    """
    table = table or manifest_table(manifest)
    snap = snapshot_hash(con, table=table)
    cache: dict[tuple[str, tuple[Any, ...]], dict[str, Any]] = {}
    rows, diffs, unverified = [], [], []
    for ph in manifest.phases:
        for g in ph.groups:
            label = f"phase {ph.name!r} group {g.id!r}"
            if g.selection is None:
                unverified.append(label)
                continue
            key = (g.selection.sql, repr(g.selection.params))
            if key not in cache:
                try:
                    cache[key] = selection_stats(con, g.selection)
                except SelectionError as exc:
                    raise SelectionError(f"{label}: {exc}") from None
            st = cache[key]
            problems = []
            if st["documents"] == 0 and g.documents > 0:
                problems.append("no longer exists (0 documents selected)")
            else:
                if st["documents"] != g.documents:
                    problems.append(f"documents {g.documents} -> {st['documents']}")
                if st["tokens"] != g.tokens:
                    problems.append(f"tokens {g.tokens} -> {st['tokens']}")
                if (
                    st["doc_ids_hash"] != g.selection.doc_ids_hash
                    and st["documents"] == g.documents
                ):
                    problems.append("same count but different doc ids (doc_ids_hash differs)")
                elif st["doc_ids_hash"] != g.selection.doc_ids_hash and not problems:
                    problems.append("doc_ids_hash differs")
            if problems:
                diffs.append(f"{label}: " + "; ".join(problems))
            rows.append(
                {
                    "phase": ph.name,
                    "group": g.id,
                    "documents_expected": g.documents,
                    "documents_actual": st["documents"],
                    "tokens_expected": g.tokens,
                    "tokens_actual": st["tokens"],
                    "hash_matches": st["doc_ids_hash"] == g.selection.doc_ids_hash,
                    "status": "ok" if not problems else "; ".join(problems),
                }
            )
    report = ReproductionReport(
        snapshot_hash=snap,
        snapshot_matches=snap == manifest.corpus_snapshot_hash,
        groups=pd.DataFrame(rows),
        differences=diffs,
        unverified=unverified,
    )
    if diffs:
        raise ReproductionError(
            f"the workspace does not reproduce the manifest: {len(diffs)} group(s) differ"
            + ("" if report.snapshot_matches else " (the corpus snapshot changed)")
            + ":\n  "
            + "\n  ".join(diffs),
            diffs,
        )
    if strict and not report.snapshot_matches:
        raise ReproductionError(
            f"the corpus snapshot changed ({manifest.corpus_snapshot_hash} -> {snap}) although all "
            f"{len(rows)} verified group(s) select the same documents; pass strict=False to accept",
            [f"corpus_snapshot_hash {manifest.corpus_snapshot_hash} -> {snap}"],
        )
    return report

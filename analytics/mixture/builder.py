"""Build a mixture from a workspace: what to mix over, per-group counts under a filter, strategy
weights from workspace data, and the manifest. Shared by ``mixscope mix create`` and the
Mixtures page so both produce the same manifest from the same inputs.

What a mixture can group by (:func:`group_options`): columns of ``documents`` (``source``,
``domain``, ``lang``, ``year(date)`` or any whitelisted expression of
:func:`~analytics.mixture.selection.group_expression`), plus *derived* values that live in other
tables when those exist (:func:`derived_columns`):

* ``cluster``: the document's cluster in the most recent map (table ``doc_clusters``);
* every numeric or boolean column of the current version of each computed signal
  (``signal_<name>`` tables), e.g. ``compression_ratio``; a quality bucket is
  ``bin(<column>, width)``.

A derived value is a correlated scalar subquery written into the stored selection SQL, so a
manifest reproduces from the workspace alone. Identifiers and versions are checked against
strict patterns before they are written into SQL; filter values stay bound parameters.

Functions that read the workspace take ``(con, flt)`` first (``flt``: a
:class:`~analytics.filters.DocFilter`, a ``(sql, params)`` pair or None), the shape the
dashboard's cached wrapper calls.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics.db import table_exists

from .errors import SelectionError, StrategyInputError
from .manifest import Manifest, Order, build_manifest, build_phase
from .plan import plan_table
from .selection import (
    DOC_REF,
    NULL_GROUP,
    Where,
    group_counts,
    group_expression,
    group_selections,
    json_param,
    snapshot_hash,
    table_columns,
)
from .strategies import (
    fit_mixing_law,
    fit_regmix,
    hashed_ngram_features,
    quality_diversity_weights,
    target_matching_weights,
)
from .weights import MixtureWeights, _jsonable, normalise

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_NUMERIC = ("DOUBLE", "FLOAT", "REAL", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT")

#: strategies computed from the per-group token counts alone (the CLI's ``--strategy``)
TOKEN_STRATEGIES = ("natural", "uniform", "temperature", "unimax", "manual")


# ----------------------------------------------------------------------------- filters


def as_where(flt: Any) -> Where | None:
    """A DocFilter, a ``(sql, params)`` pair or None as the ``where`` of the selection API."""
    if flt is None:
        return None
    if isinstance(flt, tuple) and len(flt) == 2 and isinstance(flt[0], str):
        return flt
    if hasattr(flt, "where"):
        sql, params = flt.where()
        return (sql, list(params))
    raise SelectionError(f"filter: expected a DocFilter or a (sql, params) pair, got {flt!r}")


# ----------------------------------------------------------------------------- derived values


def latest_map_id(con: Any) -> str | None:
    """The map whose clusters ``cluster`` refers to: the newest in ``maps`` (else any in
    ``doc_clusters``); None when no map was computed."""
    if not table_exists(con, "doc_clusters"):
        return None
    rows: list[tuple] = []
    if table_exists(con, "maps"):
        rows = con.execute(
            "SELECT map_id FROM maps WHERE map_id IN (SELECT DISTINCT map_id FROM doc_clusters) "
            "ORDER BY created_at DESC NULLS LAST, map_id DESC LIMIT 1"
        ).fetchall()
    if not rows:
        rows = con.execute(
            "SELECT map_id FROM doc_clusters GROUP BY map_id ORDER BY map_id DESC LIMIT 1"
        ).fetchall()
    if not rows or not _SAFE_ID.match(str(rows[0][0])):
        return None
    return str(rows[0][0])


def signal_columns(con: Any) -> dict[str, dict[str, str]]:
    """Numeric/boolean columns of the current version of every computed signal:
    ``column -> {signal, version, type, description}`` (empty when no signal was computed)."""
    try:
        from analytics.signals.registry import SIGNALS
        from analytics.signals.store import current_versions
    except ImportError:  # pragma: no cover - the signals package is part of mixscope
        return {}
    try:
        versions = current_versions(con)
    except Exception:  # no catalog table yet
        return {}
    out: dict[str, dict[str, str]] = {}
    for name, version in sorted(versions.items()):
        if not _NAME.match(name) or not _SAFE_ID.match(version) or name not in SIGNALS:
            continue
        for col in SIGNALS[name].columns:
            kind = str(col.type).upper()
            if (kind.startswith(_NUMERIC) or kind == "BOOLEAN") and _NAME.match(col.name):
                out.setdefault(
                    col.name,
                    {
                        "signal": name,
                        "version": version,
                        "type": kind,
                        "description": getattr(col, "description", ""),
                    },
                )
    return out


def derived_columns(con: Any) -> dict[str, str]:
    """Name -> SQL template (``{doc}`` = the documents table) of the derived values present."""
    out: dict[str, str] = {}
    map_id = latest_map_id(con)
    if map_id is not None:
        out["cluster"] = (
            f"SELECT c.cluster FROM doc_clusters c WHERE c.doc_id = {DOC_REF}.doc_id "
            f"AND c.map_id = '{map_id}'"
        )
    docs = set(table_columns(con, "documents"))
    for col, info in signal_columns(con).items():
        if col in docs or col in out:
            continue
        out[col] = (
            f'SELECT s."{col}" FROM signal_{info["signal"]} s WHERE s.doc_id = {DOC_REF}.doc_id '
            f"AND s.version = '{info['version']}'"
        )
    return out


def quality_columns(con: Any) -> dict[str, str]:
    """Real-valued signal columns (scores, ratios) usable as a quality score: name ->
    description. Integer columns (counts) and booleans stay usable as ``group_by`` values."""
    return {
        col: f"{info['signal']}: {info['description']}".rstrip(": ")
        for col, info in signal_columns(con).items()
        if info["type"].startswith(("DOUBLE", "FLOAT", "REAL"))
    }


@dataclass(frozen=True)
class GroupOption:
    """One thing a mixture can be grouped by: ``spec`` is the ``group_by`` string."""

    spec: str
    label: str
    kind: str  # column | cluster | quality | expression


def group_options(con: Any) -> list[GroupOption]:
    """What to mix over in this workspace, most useful first."""
    cols = table_columns(con, "documents")
    out = [
        GroupOption(c, label, "column")
        for c, label in (("source", "Source"), ("domain", "Domain"), ("lang", "Language"))
        if c in cols
    ]
    if "date" in cols:
        out.append(GroupOption("year(date)", "Year", "expression"))
    derived = derived_columns(con)
    if "cluster" in derived:
        out.append(GroupOption("cluster", f"Cluster (map {latest_map_id(con)})", "cluster"))
    for col in quality_columns(con):
        if col in derived:
            out.append(GroupOption(col, f"Quality bucket: {col}", "quality"))
    return out


def check_group_by(con: Any, group_by: str) -> str:
    """Raise :class:`SelectionError` (naming what is allowed) unless ``group_by`` resolves."""
    group_expression(
        group_by, columns=table_columns(con, "documents"), derived=derived_columns(con)
    )
    return group_by


def suggest_bin_width(con: Any, flt: Any = None, *, column: str, bins: int = 5) -> float:
    """A round bin width giving about ``bins`` buckets over the column's range."""
    derived = derived_columns(con)
    expr = group_expression(column, columns=table_columns(con, "documents"), derived=derived)
    where = as_where(flt) or ("TRUE", [])
    lo, hi = con.execute(
        f'SELECT min({expr}), max({expr}) FROM "documents" WHERE ({where[0]})',
        [json_param(p) for p in where[1]],
    ).fetchall()[0]
    if lo is None or hi is None or float(hi) <= float(lo):
        return 1.0
    raw = (float(hi) - float(lo)) / max(1, bins)
    mag = 10 ** math.floor(math.log10(raw))
    return float(min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw))


# ----------------------------------------------------------------------------- counts


def group_table(
    con: Any, flt: Any = None, *, group_by: str, table: str = "documents"
) -> pd.DataFrame:
    """``group, group_value, documents, tokens, doc_ids_hash`` under the filter; `table` is
    ``documents`` or a tokenizer's view (analytics.tokenize.documents_table) to count tokens
    in that tokenizer."""
    return group_counts(
        con, group_by=group_by, where=as_where(flt), derived=derived_columns(con), table=table
    )


def workspace_tokenizer(con: Any) -> dict[str, Any]:
    """``{name, sha256}`` of the workspace tokenizer (from ``meta``)."""
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    sha = meta.get("tokenizer_sha256")
    return {
        "name": meta.get("tokenizer") or "unknown",
        "sha256": sha if sha and re.fullmatch(r"[0-9a-f]{64}", sha) else None,
    }


# ----------------------------------------------------------------------------- strategies


def token_strategy_weights(
    strategy: str,
    tokens: Mapping[str, float],
    *,
    budget: float | None = None,
    params: Mapping[str, Any] | None = None,
) -> MixtureWeights:
    """Weights of a strategy that needs only the per-group tokens (and the budget):
    :data:`TOKEN_STRATEGIES`, through the one resolver
    (:func:`analytics.mixture.resolve.strategy_weights`).

    ``params``: temperature ``temperature`` (default 2; ``inf`` allowed) and ``cap``; unimax
    ``max_epochs`` (default 4) and ``strict`` (default True) with ``budget``; manual: one entry
    per group (relative weights, normalised to sum to 1; missing groups get 0).
    """
    from .resolve import spec, strategy_weights

    more = [n for n in spec(strategy).needs if n not in ("tokens", "budget")]
    if more:
        raise StrategyInputError(
            f"strategy: {strategy!r} needs more than token counts ({', '.join(more)}); "
            f"expected one of {', '.join(TOKEN_STRATEGIES)}"
        )
    return strategy_weights(strategy, dict(params or {}), tokens=tokens, budget=budget)


def group_text_sample(
    con: Any,
    flt: Any = None,
    *,
    group_by: str,
    per_group: int = 200,
    max_chars: int = 4000,
    seed: int = 0,
) -> pd.DataFrame:
    """A bounded, seeded sample of each group's texts: ``group, doc_id, text``.

    At most ``per_group`` documents per group, ordered by ``md5_number(seed:doc_id)`` (so the
    same inputs give the same sample), each cut to its first ``max_chars`` characters.
    """
    if per_group < 1 or max_chars < 1:
        raise StrategyInputError("per_group and max_chars must be >= 1")
    derived = derived_columns(con)
    expr = group_expression(group_by, columns=table_columns(con, "documents"), derived=derived)
    sql, params = as_where(flt) or ("TRUE", [])
    df = con.execute(
        f"""
        SELECT g AS "group", doc_id, text FROM (
            SELECT g, doc_id, text,
                   row_number() OVER (PARTITION BY g ORDER BY md5_number(? || doc_id), doc_id)
                       AS rn
            FROM (
                SELECT coalesce(CAST(({expr}) AS VARCHAR), '{NULL_GROUP}') AS g, doc_id,
                       substr(text, 1, {int(max_chars)}) AS text
                FROM "documents" JOIN document_text USING (doc_id) WHERE ({sql})
            )
        ) WHERE rn <= {int(per_group)} ORDER BY g, rn
        """,
        [f"{int(seed)}:", *[json_param(p) for p in params]],
    ).df()
    return df


def group_ngram_features(
    con: Any,
    flt: Any = None,
    *,
    group_by: str,
    per_group: int = 200,
    max_chars: int = 4000,
    buckets: int = 10_000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Hashed unigram+bigram counts per group from :func:`group_text_sample`."""
    sample = group_text_sample(
        con, flt, group_by=group_by, per_group=per_group, max_chars=max_chars, seed=seed
    )
    return {
        str(g): hashed_ngram_features(part["text"].tolist(), buckets=buckets)
        for g, part in sample.groupby("group", sort=True)
    }


def _smoothed(counts: np.ndarray, smoothing: float) -> np.ndarray:
    q = np.asarray(counts, dtype=np.float64) + smoothing
    return q / q.sum()


def kl_to_target(
    group_features: Mapping[str, Any],
    target_features: Any,
    weights: Mapping[str, float],
    *,
    smoothing: float = 0.01,
) -> float:
    """KL(target || sum_g w_g q_g) in nats, with q_g smoothed exactly as target matching does.

    Groups without features (or weight) contribute nothing; weights are renormalised over the
    groups that have features.
    """
    p = np.asarray(target_features, dtype=np.float64)
    if p.sum() <= 0:
        raise StrategyInputError("target_features: all counts are zero")
    p = p / p.sum()
    ws = {g: float(w) for g, w in weights.items() if g in group_features and float(w) > 0}
    if not ws:
        raise StrategyInputError("weights: no weighted group has features")
    total = sum(ws.values())
    m = sum((w / total) * _smoothed(group_features[g], smoothing) for g, w in ws.items())
    keep = p > 0
    return float(np.sum(p[keep] * (np.log(p[keep]) - np.log(m[keep]))))


def split_target_texts(text: str, *, name: str | None = None) -> list[str]:
    """Target texts from a file's content: JSONL (``name`` ending .jsonl/.ndjson) takes each
    line's ``text`` field; anything else is split into documents at blank lines."""
    if name and name.lower().endswith((".jsonl", ".ndjson")):
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(str(json.loads(line)["text"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise StrategyInputError(
                    f"{name}: line {i}: expected a JSON object with a 'text' field"
                ) from None
        return out
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def target_matching_from_texts(
    group_features: Mapping[str, Any],
    target_texts: Sequence[str],
    *,
    tokens: Mapping[str, float],
    buckets: int = 10_000,
    sample: Mapping[str, Any] | None = None,
) -> MixtureWeights:
    """Target matching (DSIR-style hashed n-grams) of the groups' samples to target texts.

    Groups absent from ``group_features`` (no documents sampled) get weight 0.
    ``sample`` (how the group features were drawn) is recorded in the method parameters.
    """
    texts = [t for t in target_texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise StrategyInputError("target texts: paste or upload at least one non-empty text")
    target = hashed_ngram_features(texts, buckets=buckets)
    if target.sum() <= 0:
        raise StrategyInputError("target texts: no words found in the target texts")
    feats = {g: group_features[g] for g in tokens if g in group_features}
    res = target_matching_weights(feats, target, tokens={g: tokens[g] for g in feats})
    weights = {g: res.get(g, 0.0) for g in tokens}
    return MixtureWeights(
        weights,
        method=res.method,
        params={
            **res.params,
            "target_texts": len(texts),
            "target_chars": sum(len(t) for t in texts),
            "group_sample": dict(sample or {}),
        },
        diagnostics=res.diagnostics,
        extras={"target_features": target},
    )


def quality_docs(
    con: Any,
    flt: Any = None,
    *,
    group_by: str,
    quality_column: str,
    limit: int = 500_000,
    seed: int = 0,
) -> pd.DataFrame:
    """``group, doc_id, quality, n_tokens`` of the filtered documents (a seeded sample of
    ``limit`` rows when there are more)."""
    derived = derived_columns(con)
    cols = table_columns(con, "documents")
    expr = group_expression(group_by, columns=cols, derived=derived)
    qexpr = group_expression(quality_column, columns=cols, derived=derived)
    sql, params = as_where(flt) or ("TRUE", [])
    return con.execute(
        f"""
        SELECT coalesce(CAST(({expr}) AS VARCHAR), '{NULL_GROUP}') AS "group", doc_id,
               CAST(({qexpr}) AS DOUBLE) AS quality, n_tokens
        FROM "documents" WHERE ({sql})
        ORDER BY md5_number(? || doc_id), doc_id LIMIT {int(limit)}
        """,
        [*[json_param(p) for p in params], f"{int(seed)}:"],
    ).df()


def quality_diversity_for(
    docs: pd.DataFrame,
    groups: Sequence[str],
    *,
    quality_column: str,
    thresholds: float | Mapping[str, float] | None = None,
    group_weights: float | Mapping[str, float] | None = None,
    sharpness: float = 0.0,
) -> MixtureWeights:
    """QuaDMix-style weights over ``groups`` (groups without documents get 0)."""
    res = quality_diversity_weights(
        docs, thresholds=thresholds, group_weights=group_weights, sharpness=sharpness
    )
    params = {**res.params, "quality_column": quality_column}
    return MixtureWeights(
        {g: res.get(g, 0.0) for g in groups},
        method=res.method,
        params=params,
        diagnostics=res.diagnostics,
    )


# ----------------------------------------------------------------------------- proxy runs


def read_proxy_runs(
    data: bytes | str | Path, *, groups: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a CSV of proxy runs into (weights runs x groups, losses runs x domains).

    Columns named like a group hold that run's weight of the group; every other numeric
    column is a validation loss (a non-numeric column such as a run name is ignored). At
    least two group columns and one loss column are required.
    """
    if isinstance(data, Path) or (isinstance(data, str) and "\n" not in data):
        label = str(data)
        try:
            frame = pd.read_csv(data)
        except FileNotFoundError:
            raise StrategyInputError(f"{label}: no such file") from None
        except Exception as exc:
            raise StrategyInputError(f"{label}: not a readable CSV ({exc})") from None
    else:
        label = "proxy runs CSV"
        raw = data if isinstance(data, bytes) else data.encode()
        try:
            frame = pd.read_csv(io.BytesIO(raw))
        except Exception as exc:
            raise StrategyInputError(f"{label}: not a readable CSV ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    known = set(map(str, groups))
    gcols = [c for c in frame.columns if c in known]
    if len(gcols) < 2:
        raise StrategyInputError(
            f"{label}: expected at least 2 columns named after groups ({sorted(known)[:8]}...), "
            f"found {gcols}"
        )
    lcols = [c for c in frame.columns if c not in known and pd.api.types.is_numeric_dtype(frame[c])]
    if not lcols:
        raise StrategyInputError(
            f"{label}: expected at least one numeric validation-loss column besides the groups"
        )
    return frame[gcols].copy(), frame[lcols].copy()


def fit_proxy_runs(
    method: str,
    df_weights: pd.DataFrame,
    losses: pd.DataFrame,
    *,
    groups: Sequence[str],
    seed: int = 0,
    tokens: Mapping[str, float] | None = None,
    **options: Any,
) -> MixtureWeights:
    """RegMix (``regmix``) or Data Mixing Law (``mixing_law``) over all ``groups`` (groups
    absent from the runs get weight 0; they are listed in the diagnostics). ``tokens``
    (group -> available tokens) is RegMix's default Dirichlet prior, the token
    distribution (``options`` ``prior="uniform"``: alpha = 1 per group instead)."""
    if method == "regmix":
        res = fit_regmix(df_weights, losses, seed=seed, tokens=tokens, **options)
    elif method == "mixing_law":
        res = fit_mixing_law(df_weights, losses, seed=seed, **options)
    else:
        raise StrategyInputError(f"method: expected 'regmix' or 'mixing_law', got {method!r}")
    missing = [g for g in groups if g not in res]
    return MixtureWeights(
        {g: res.get(g, 0.0) for g in groups},
        method=res.method,
        params=res.params,
        diagnostics={**res.diagnostics, "groups_not_in_runs": missing},
        extras=res.extras,
    )


# ----------------------------------------------------------------------------- manifest


@dataclass
class PhaseSpec:
    """One phase as an editor describes it: budget, weights (a strategy result or a mapping),
    caps and document order."""

    name: str
    budget: int
    weights: Mapping[str, float]
    order: Order = "shuffled"
    order_column: str | None = None
    max_epochs: float | Mapping[str, float] | None = None
    max_fraction: float | Mapping[str, float] | None = None
    method: Mapping[str, Any] | None = field(default=None)

    def method_block(self) -> dict[str, Any]:
        if self.method is not None:
            return dict(self.method)
        if isinstance(self.weights, MixtureWeights):
            return self.weights.method_block()
        return {"name": "manual", "params": {}, "diagnostics": {}}


def plan_for(counts: pd.DataFrame, spec: PhaseSpec) -> pd.DataFrame:
    """:func:`plan_table` of one phase over the groups of ``counts`` (weights renormalised)."""
    tokens = dict(zip(counts["group"], counts["tokens"]))
    docs = dict(zip(counts["group"], counts["documents"]))
    unknown = sorted(str(g) for g in spec.weights if g not in tokens)
    if unknown:
        raise StrategyInputError(
            f"phase {spec.name!r} weights: unknown group(s) {unknown}; groups are {sorted(tokens)}"
        )
    w = {g: float(spec.weights.get(g, 0.0)) for g in tokens}
    return plan_table(
        tokens,
        docs,
        normalise(w, name=f"phase {spec.name!r} weights"),
        int(spec.budget),
        max_epochs=spec.max_epochs,
        max_fraction=spec.max_fraction,
    )


def locators_for(groups: Sequence[str], template: str | None) -> dict[str, list[str]]:
    """``template`` with ``{group}`` (the group id made path-safe) per group; None: none."""
    if not template:
        return {}
    out = {}
    for g in groups:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(g)).strip("._") or "group"
        out[str(g)] = [template.replace("{group}", safe)]
    return out


def create_manifest(
    con: Any,
    flt: Any = None,
    *,
    group_by: str,
    phases: Sequence[PhaseSpec],
    seed: int = 0,
    tokenizer: Mapping[str, Any] | None = None,
    locator_template: str | None = "{group}",
    created_at: _dt.datetime | None = None,
    table: str = "documents",
) -> Manifest:
    """The manifest of a mixture over the filtered workspace.

    Group counts and selections (SQL + params + hashes) come from one pass of
    :func:`~analytics.mixture.selection.group_selections`; every phase gets its plan
    (:func:`plan_table`: target tokens, epochs, caps) and method block; the corpus snapshot
    hash and the workspace tokenizer are recorded. Raises a ``ValueError`` subclass naming the
    field for any bad input. `table`: a tokenizer's view (analytics.tokenize.documents_table)
    to count budgets in that tokenizer; pass its `tokenizer` record too.
    """
    if not phases:
        raise StrategyInputError("phases: expected at least one phase")
    derived = derived_columns(con)
    counts, sels = group_selections(
        con, group_by=group_by, where=as_where(flt), derived=derived, table=table
    )
    if counts.empty:
        raise SelectionError("the filter selects no documents; nothing to mix")
    if hasattr(flt, "to_params"):
        url = {str(k): str(v) for k, v in flt.to_params().items()}
        sels = {g: s.model_copy(update={"filter": url}) for g, s in sels.items()}
    locs = locators_for(list(counts["group"]), locator_template)
    built = []
    for spec in phases:
        plan = plan_for(counts, spec)
        built.append(
            build_phase(
                plan,
                name=spec.name,
                budget_tokens=int(spec.budget),
                method=_jsonable(spec.method_block()),
                selections=sels,
                locators=locs,
                order=spec.order,
                order_column=spec.order_column,
            )
        )
    return build_manifest(
        phases=built,
        tokenizer=dict(tokenizer or workspace_tokenizer(con)),
        seed=int(seed),
        corpus_snapshot_hash=snapshot_hash(con, table=table),
        corpus_snapshot_id=lake_snapshot_id(con),
        created_at=created_at,
    )


def lake_snapshot_id(con: Any) -> int | None:
    """The workspace lake's snapshot `con` reads (None for a plain DuckDB connection)."""
    try:
        rows = con.execute(
            "SELECT id FROM ducklake_current_snapshot(current_database())"
        ).fetchall()
    except Exception:  # not a DuckLake catalog (a plain DuckDB table in tests)
        return None
    return int(rows[0][0]) if rows and rows[0][0] is not None else None


MANIFEST_FORMATS = ("yaml", "json")


def export_formats() -> list[str]:
    """Everything :func:`export_bundle` can write: the manifest formats, then every exporter."""
    from .exporters import EXPORTERS

    return [*MANIFEST_FORMATS, *EXPORTERS.names()]


def export_bundle(
    manifest: Manifest,
    formats: Sequence[str] | None = None,
    *,
    locator_template: str | None = None,
    phase: str | None = None,
    seq_length: int | None = None,
    tokens_per_step: int | None = None,
    strict: bool = True,
) -> tuple[dict[str, dict[str, str]], list[str]]:
    """``format -> {file name: text}`` for the manifest (``yaml``, ``json``) and exporters.

    ``formats`` defaults to :func:`export_formats`. ``locator_template`` overrides every
    group's locators (``{group}`` = the path-safe group id); ``phase`` restricts the exporters
    that take one; ``seq_length`` goes to Megatron (``--train-samples``), ``tokens_per_step``
    to nanotron (stage start steps, required with several phases). An exporter that cannot
    express the manifest raises :class:`~analytics.mixture.errors.ExportError` naming the
    format, or with ``strict=False`` is left out with a note. Returns the files and the notes
    (each exporter's weight basis and remarks).
    """
    from .errors import ExportError
    from .exporters import export_manifest
    from .manifest import dumps_manifest

    wanted = list(formats) if formats is not None else export_formats()
    known = export_formats()
    unknown = [f for f in wanted if f not in known]
    if unknown:
        raise ExportError(f"format: unknown {unknown}; expected one of {', '.join(known)}")
    groups = sorted({g.id for p in manifest.phases for g in p.groups})
    base: dict[str, Any] = {}
    if locator_template:
        base["locators"] = locators_for(groups, locator_template)
    files: dict[str, dict[str, str]] = {}
    notes: list[str] = []
    for fmt in wanted:
        if fmt in MANIFEST_FORMATS:
            files[fmt] = {f"manifest.{fmt}": dumps_manifest(manifest, fmt=fmt)}  # type: ignore[arg-type]
            continue
        opts = dict(base)
        if phase is not None and fmt != "nanotron":
            opts["phase"] = phase
        if fmt == "megatron" and seq_length:
            opts["seq_length"] = int(seq_length)
        if fmt == "nanotron" and tokens_per_step:
            opts["tokens_per_step"] = int(tokens_per_step)
        try:
            ex = export_manifest(manifest, fmt, **opts)
        except ExportError as exc:
            if strict:
                raise ExportError(f"{fmt}: {exc}") from None
            notes.append(f"{fmt}: not exported: {exc}")
            continue
        files[fmt] = dict(ex.files)
        notes += [f"{fmt}: basis {ex.basis}"] + [f"{fmt}: {n}" for n in ex.notes]
    return files, notes


def check_groups_exist(con: Any, manifest: Manifest) -> list[str]:
    """Groups (with weight > 0) whose stored selection no longer selects any document."""
    from .selection import selection_stats

    missing = []
    seen: dict[tuple, int] = {}
    for ph in manifest.phases:
        for g in ph.groups:
            if g.selection is None or g.weight <= 0:
                continue
            key = (g.selection.sql, tuple(map(repr, g.selection.params)))
            if key not in seen:
                seen[key] = selection_stats(con, g.selection)["documents"]
            if seen[key] == 0:
                missing.append(f"phase {ph.name!r} group {g.id!r}")
    return missing


__all__ = [
    "TOKEN_STRATEGIES",
    "GroupOption",
    "PhaseSpec",
    "as_where",
    "check_group_by",
    "check_groups_exist",
    "create_manifest",
    "derived_columns",
    "export_bundle",
    "export_formats",
    "fit_proxy_runs",
    "group_ngram_features",
    "group_options",
    "group_table",
    "group_text_sample",
    "kl_to_target",
    "latest_map_id",
    "locators_for",
    "plan_for",
    "quality_columns",
    "quality_diversity_for",
    "quality_docs",
    "read_proxy_runs",
    "signal_columns",
    "split_target_texts",
    "suggest_bin_width",
    "target_matching_from_texts",
    "token_strategy_weights",
    "workspace_tokenizer",
]

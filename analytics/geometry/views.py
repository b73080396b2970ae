"""Read-side of stored geometry: small tables for the Geometry page and the CLI.

Every function takes a (read-only) cursor first and keyword arguments that are plain
JSON values, returns a new pandas DataFrame (or dict), and returns empty frames when the
workspace holds no geometry yet. A "config" is one computation setting of a run (probe
set hash + parameter dict, see :func:`analytics.geometry.store.config_id`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .phases import phase_bands, phases
from .spectral import alpha_req
from .store import has_tables

#: metric key (metric/variant as stored) -> how the page names it
METRIC_LABELS: dict[str, str] = {
    "rankme/singular": "RankMe (singular values of Z, uncentred)",
    "rankme/covariance": "RankMe (covariance eigenvalues, centred)",
    "alpha_req/covariance": "alpha-ReQ (eigenspectrum decay)",
    "alpha_req_r2/covariance": "R^2 of the alpha-ReQ fit",
    "participation_ratio/covariance": "participation ratio (covariance)",
    "stable_rank/uncentred": "stable rank of Z",
    "anisotropy/cosine": "anisotropy (mean pairwise cosine)",
    "intrinsic_dimension/twonn": "intrinsic dimension (TwoNN)",
    "intrinsic_dimension/mle": "intrinsic dimension (MLE)",
}


def _empty(*cols: str) -> pd.DataFrame:
    return pd.DataFrame(columns=list(cols))


def runs(cur: Any) -> pd.DataFrame:
    """One row per registered run: checkpoints, steps, model facts, computed configs."""
    cols = (
        "run",
        "n_checkpoints",
        "first_step",
        "last_step",
        "model_type",
        "hidden_size",
        "num_layers",
        "n_results",
        "added_at",
        "specs",
    )
    if not has_tables(cur, "geometry_runs", "geometry_run_checkpoints", "geometry_results"):
        return _empty(*cols)
    return cur.execute(
        """SELECT r.run, count(c.checkpoint) AS n_checkpoints, min(c.step) AS first_step,
                  max(c.step) AS last_step, string_agg(DISTINCT c.model_type, ', ') AS model_type,
                  max(c.hidden_size) AS hidden_size, max(c.num_layers) AS num_layers,
                  (SELECT count(*) FROM geometry_results g WHERE g.run = r.run) AS n_results,
                  r.added_at, r.specs
           FROM geometry_runs r LEFT JOIN geometry_run_checkpoints c USING (run)
           GROUP BY r.run, r.added_at, r.specs ORDER BY r.run"""
    ).df()


def run_checkpoints(cur: Any, *, run: str) -> pd.DataFrame:
    """The registered checkpoints of a run, in step order."""
    if not has_tables(cur, "geometry_run_checkpoints"):
        return _empty("checkpoint", "step")
    return cur.execute(
        """SELECT checkpoint, step, tokens_b, path, revision, model_type, hidden_size,
                  num_layers, fingerprint, tokenizer_path
           FROM geometry_run_checkpoints WHERE run = ? ORDER BY ordinal""",
        [run],
    ).df()


def configs(cur: Any, *, run: str) -> pd.DataFrame:
    """Computation settings stored for a run, newest first: config, probe (hash, size,
    stratification, seed), the parameter JSON, checkpoints computed and when."""
    cols = ("config", "probe_hash", "params", "n_checkpoints", "computed_at")
    if not has_tables(cur, "geometry_results", "geometry_probes"):
        return _empty(*cols)
    return cur.execute(
        """SELECT g.config, any_value(g.probe_hash) AS probe_hash,
                  any_value(g.params)::VARCHAR AS params,
                  count(*) FILTER (WHERE g.kind = 'checkpoint') AS n_checkpoints,
                  max(g.computed_at) AS computed_at,
                  any_value(p.size) AS probe_size, any_value(p.stratify_by) AS stratify_by,
                  any_value(p.seed) AS probe_seed
           FROM geometry_results g LEFT JOIN geometry_probes p USING (probe_hash)
           WHERE g.run = ? GROUP BY g.config ORDER BY computed_at DESC""",
        [run],
    ).df()


def _keys_sql(kind: str | None = None) -> str:
    extra = f" AND kind = '{kind}'" if kind in ("checkpoint", "pair") else ""
    return (
        "cache_key IN (SELECT cache_key FROM geometry_results WHERE run = ? AND config = ?"
        + extra
        + ")"
    )


def _of_setting(
    cur: Any,
    table: str,
    kind: str,
    empty: tuple[str, ...],
    *,
    run: str,
    config: str,
    columns: str,
    order: str,
) -> pd.DataFrame:
    """``columns`` of the rows of ``table`` stored for one computation setting of ``run``
    (results of ``kind`` "checkpoint" or "pair"), in ``order``; while the tables are
    missing, an empty frame with the ``empty`` columns."""
    if not has_tables(cur, table, "geometry_results"):
        return _empty(*empty)
    return cur.execute(
        f"SELECT {columns} FROM {table} WHERE run = ? AND {_keys_sql(kind)} ORDER BY {order}",
        [run, run, config],
    ).df()


def metrics(cur: Any, *, run: str, config: str) -> pd.DataFrame:
    """Long table of representation metrics (checkpoint, step, layer, group, metric,
    variant, value, params, n, d) plus ``key`` = "metric/variant", sorted by step."""
    cols = ("checkpoint", "step", "layer", "group", "metric", "variant", "value", "params")
    if not has_tables(cur, "geometry_metrics", "geometry_results"):
        return _empty(*cols, "key")
    df = _of_setting(
        cur, "geometry_metrics", "checkpoint", (), run=run, config=config,
        columns='checkpoint, step, layer, "group", n, d, metric, variant, value, '
        "params::VARCHAR AS params",
        order='step NULLS LAST, checkpoint, layer, "group", metric, variant',
    )  # fmt: skip
    df["key"] = df["metric"] + "/" + df["variant"]
    return df


def checkpoint_info(cur: Any, *, run: str, config: str) -> pd.DataFrame:
    """Per computed checkpoint: model facts, forward passes, tokens, seconds."""
    return _of_setting(
        cur, "geometry_checkpoints", "checkpoint", ("checkpoint", "step"), run=run, config=config,
        columns="checkpoint, step, tokens_b, model_class, num_layers, hidden_size, is_causal, "
        "dtype, device, forward_passes, n_tokens, seconds, fingerprint",
        order="step NULLS LAST, checkpoint",
    )  # fmt: skip


def spectrum(
    cur: Any, *, run: str, config: str, checkpoint: str, layer: int, group: str = "all"
) -> dict[str, Any]:
    """Covariance eigenvalues (k, eigenvalue) of one (checkpoint, layer, group) and the
    alpha-ReQ line refitted on them with the stored fit range and weighting: a dict with
    ``eigs`` (DataFrame), ``alpha``, ``intercept``, ``r2``, ``fit_range``, ``n_used``."""
    out: dict[str, Any] = {"eigs": _empty("k", "eigenvalue")}
    if not has_tables(cur, "geometry_spectra", "geometry_results"):
        return out
    eigs = cur.execute(
        f"""SELECT k, eigenvalue FROM geometry_spectra
            WHERE run = ? AND {_keys_sql("checkpoint")} AND checkpoint = ? AND layer = ?
              AND "group" = ? ORDER BY k""",
        [run, run, config, checkpoint, int(layer), group],
    ).df()
    out["eigs"] = eigs
    prm = cur.execute(
        "SELECT params::VARCHAR FROM geometry_results WHERE run = ? AND config = ? LIMIT 1",
        [run, config],
    ).fetchall()
    params = json.loads(prm[0][0]) if prm else {}
    fr = tuple(params.get("alpha_fit_range", (11, 100)))
    if len(eigs) >= 2:
        res = alpha_req(
            eigs["eigenvalue"].to_numpy(),
            from_eigs=True,
            fit_range=fr,
            weighting=params.get("alpha_weighting", "1/k"),
        )
        out.update(
            alpha=res.alpha,
            intercept=res.intercept,
            r2=res.r2,
            fit_range=list(res.fit_range),
            n_used=res.n_used,
            weighting=res.weighting,
        )
    return out


def cka(cur: Any, *, run: str, config: str, kind: str) -> pd.DataFrame:
    """CKA rows of ``kind`` "checkpoints" (consecutive checkpoints, same layer) or
    "layers" (layer pairs within each checkpoint), linear and debiased."""
    cols = ("kind", "checkpoint_a", "step_a", "layer_a", "checkpoint_b", "step_b", "layer_b")
    if not has_tables(cur, "geometry_cka", "geometry_results"):
        return _empty(*cols, "linear", "debiased")
    return cur.execute(
        f"""SELECT kind, checkpoint_a, step_a, layer_a, checkpoint_b, step_b, layer_b,
                   linear, debiased
            FROM geometry_cka WHERE run = ? AND kind = ? AND {_keys_sql()}
            ORDER BY step_a NULLS LAST, checkpoint_a, layer_a, layer_b""",
        [run, kind, run, config],
    ).df()


def cka_matrix(
    cur: Any, *, run: str, config: str, kind: str, checkpoint: str | None = None,
    layer: int | None = None, value: str = "linear",
) -> pd.DataFrame:  # fmt: skip
    """A square CKA matrix: for ``kind="layers"`` layer x layer of one checkpoint
    (symmetric, from the stored upper triangle); for ``kind="checkpoints"`` checkpoint x
    checkpoint of one layer with the consecutive pairs filled (diagonal 1, others NaN)."""
    df = cka(cur, run=run, config=config, kind=kind)
    if df.empty:
        return pd.DataFrame()
    if kind == "layers":
        d = df[df["checkpoint_a"] == checkpoint] if checkpoint else df.iloc[0:0]
        idx = sorted(set(d["layer_a"]).union(d["layer_b"]))
        m = pd.DataFrame(np.nan, index=idx, columns=idx)
        for r in d.itertuples():
            m.loc[r.layer_a, r.layer_b] = m.loc[r.layer_b, r.layer_a] = getattr(r, value)
        return m
    d = df[df["layer_a"] == layer] if layer is not None else df.iloc[0:0]
    names = list(dict.fromkeys(list(d["checkpoint_a"]) + list(d["checkpoint_b"])))
    m = pd.DataFrame(np.nan, index=names, columns=names)
    for n in names:
        m.loc[n, n] = 1.0
    for r in d.itertuples():
        m.loc[r.checkpoint_a, r.checkpoint_b] = m.loc[r.checkpoint_b, r.checkpoint_a] = getattr(
            r, value
        )
    return m


def weights(cur: Any, *, run: str, config: str) -> pd.DataFrame:
    """Weight-matrix spectra per checkpoint: stable rank and power-law alpha per matrix."""
    empty = ("checkpoint", "step", "name", "alpha", "stable_rank")
    return _of_setting(
        cur, "geometry_weights", "checkpoint", empty, run=run, config=config,
        columns='checkpoint, step, name, shape, "rows", cols, stable_rank, spectral_norm, '
        "alpha, xmin, ks_distance, n_tail, n_eigs",
        order="step NULLS LAST, name",
    )  # fmt: skip


def intruders(cur: Any, *, run: str, config: str) -> pd.DataFrame:
    """Intruder dimensions per matrix between consecutive checkpoints (top-k, eps)."""
    empty = ("checkpoint_a", "step_a", "checkpoint_b", "step_b", "name", "count")
    return _of_setting(
        cur, "geometry_intruders", "pair", empty, run=run, config=config,
        columns="checkpoint_a, step_a, checkpoint_b, step_b, name, shape, k, eps, count, "
        "max_abs_cos::VARCHAR AS max_abs_cos",
        order="step_b NULLS LAST, name",
    )  # fmt: skip


def loss(cur: Any, *, run: str, config: str) -> pd.DataFrame:
    """Bits per byte per (checkpoint, group) on the probe texts (causal LMs only)."""
    return _of_setting(
        cur, "geometry_loss", "checkpoint", ("checkpoint", "step", "group", "bits_per_byte"),
        run=run, config=config,
        columns='checkpoint, step, "group", bits_per_byte, mean_text_bits_per_byte, n_texts, '
        "n_bytes, n_tokens",
        order='step NULLS LAST, "group"',
    )  # fmt: skip


def train_log(cur: Any, *, run: str) -> pd.DataFrame:
    """Training loss per step from the run's trainer_state.json (empty when absent)."""
    if not has_tables(cur, "geometry_train_log"):
        return _empty("step", "loss", "learning_rate", "grad_norm")
    return cur.execute(
        "SELECT step, loss, learning_rate, grad_norm FROM geometry_train_log WHERE run = ? "
        "ORDER BY step",
        [run],
    ).df()


def probe_docs(cur: Any, *, probe_hash: str) -> pd.DataFrame:
    """The documents of a stored probe set, in order, with their group."""
    if not has_tables(cur, "geometry_probe_docs"):
        return _empty("ordinal", "doc_id", "group")
    return cur.execute(
        """SELECT ordinal, doc_id, "group" FROM geometry_probe_docs WHERE probe_hash = ?
           ORDER BY ordinal""",
        [probe_hash],
    ).df()


def trajectory(
    cur: Any,
    *,
    run: str,
    config: str,
    layer: int,
    group: str = "all",
    rankme_variant: str = "covariance",
    window: int = 3,
    tol: float = 0.0,
) -> dict[str, Any]:
    """RankMe and alpha-ReQ vs step for one (layer, group) with the phase label of each
    step (:func:`analytics.geometry.phases`) and the contiguous bands: a dict with
    ``table`` (step, checkpoint, rankme, alpha, phase) and ``bands``."""
    m = metrics(cur, run=run, config=config)
    m = m[(m["layer"] == int(layer)) & (m["group"] == group) & m["step"].notna()]
    r = m[m["key"] == f"rankme/{rankme_variant}"][["step", "checkpoint", "value"]]
    a = m[m["key"] == "alpha_req/covariance"][["step", "value"]]
    t = r.merge(a, on="step", suffixes=("_r", "_a")).rename(
        columns={"value_r": "rankme", "value_a": "alpha"}
    )
    t = t.sort_values("step").reset_index(drop=True)
    if len(t) < 2:
        return {"table": t.assign(phase=pd.Series(dtype=str)), "bands": []}
    labels = phases(t["step"], t["rankme"], t["alpha"], window=window, tol=tol)
    t["phase"] = labels
    return {"table": t, "bands": phase_bands(t["step"], labels)}


def metric_label(key: str, params: str | dict[str, Any] | None = None) -> str:
    """Human name of a stored metric with the parameters that produced it, e.g.
    "RankMe (singular values, eps=1e-07)" or "alpha-ReQ (covariance, fit ranks 11:100,
    1/k weights)". ``key`` is "metric/variant"; ``params`` the row's params JSON."""
    p = json.loads(params) if isinstance(params, str) else dict(params or {})
    metric, _, variant = key.partition("/")
    if metric == "rankme":
        what = "singular values, uncentred" if variant == "singular" else "covariance eigenvalues"
        extra = f", top {p['max_eigs']}" if variant == "covariance" and "max_eigs" in p else ""
        return f"RankMe ({what}{extra}, eps={p.get('eps', '?'):g})"
    if metric in ("alpha_req", "alpha_req_r2"):
        fr = p.get("fit_range", ["?", "?"])
        w = p.get("weighting", "1/k")
        name = "alpha-ReQ" if metric == "alpha_req" else "R^2 of alpha-ReQ"
        n_used = f", {p['n_used']} points" if "n_used" in p else ""
        return f"{name} (covariance, fit ranks {fr[0]}:{fr[1]}, {w} weights{n_used})"
    if metric == "participation_ratio":
        return "participation ratio (covariance eigenvalues)"
    if metric == "stable_rank":
        return "stable rank of Z (uncentred)"
    if metric == "anisotropy":
        return "anisotropy (mean off-diagonal cosine)"
    if metric == "intrinsic_dimension":
        n = f", {p['n_points']} points" if "n_points" in p else ""
        return f"intrinsic dimension ({variant.upper() if variant == 'mle' else 'TwoNN'}{n})"
    return METRIC_LABELS.get(key, key)


def settings_caption(params: str | dict[str, Any], probe: Mapping[str, Any] | None = None) -> str:
    """One line saying how a config's numbers were produced (probe, pooling, truncation,
    layers, device/dtype rule, RankMe eps, alpha fit range)."""
    p = json.loads(params) if isinstance(params, str) else dict(params)
    parts = []
    if probe:
        strat = probe.get("stratify_by")
        parts.append(
            f"probe of {int(probe['probe_size'])} documents"
            + (f" stratified by {strat}" if strat else "")
            + f" (seed {probe.get('probe_seed')}, {str(probe.get('probe_hash', ''))[:19]})"
        )
    parts.append(
        f"{p.get('pooling', '?')}-token pooling" if p.get("pooling") == "last" else "mean pooling"
    )
    parts.append(f"max {p.get('max_tokens')} tokens")
    parts.append(f"layers {p.get('layers')}")
    dev = p.get("device_kind", "cpu")
    parts.append(f"{dev} ({'bf16' if dev == 'cuda' else 'fp32'})")
    parts.append(f"RankMe eps={p.get('rankme_eps', 1e-7):g}")
    fr = p.get("alpha_fit_range", [11, 100])
    parts.append(f"alpha fit ranks {fr[0]}:{fr[1]} (0-based)")
    parts.append(f"spectra in float64, top {p.get('max_eigs')} eigenvalues kept")
    return "; ".join(parts)

"""Geometry: how each checkpoint of a run represents the probe set, across steps and layers."""

import json

import pandas as pd
import streamlit as st

from analytics.geometry import views
from analytics.geometry.phases import PHASE_RULE
from analytics.geometry.weights import POWERLAW_MIN_TAIL
from dashboard import state
from dashboard.components import geometry_charts as charts
from dashboard.components.geometry_jobs import (
    active_jobs,
    compute_run_box,
    demo_series_box,
    follow_geometry_jobs,
)
from dashboard.components.geometry_mixtures import compare_by_mixture
from dashboard.components.geometry_select import url_select
from dashboard.components.text import md

METRIC_ORDER = [
    "rankme/covariance",
    "rankme/singular",
    "alpha_req/covariance",
    "alpha_req_r2/covariance",
    "participation_ratio/covariance",
    "stable_rank/uncentred",
    "anisotropy/cosine",
    "intrinsic_dimension/twonn",
    "intrinsic_dimension/mle",
]
st.title("Geometry")
st.caption(
    "How a series of checkpoints represents the corpus: effective rank (RankMe), eigenspectrum "
    "decay (alpha-ReQ), spectra, CKA between checkpoints and layers, per-source loss, weight "
    "spectra and intruder dimensions. Computed by jobs (`mixscope geometry RUN`), read here."
)

jobs = active_jobs()
if jobs:
    follow_geometry_jobs(jobs)

runs = state.cached(views.runs)
computed = runs[runs["n_results"] > 0] if len(runs) else runs
if computed.empty:
    if jobs:
        st.info(
            "A geometry job is queued or running (progress above): results appear here "
            "checkpoint by checkpoint as it publishes them."
        )
    elif runs.empty:
        st.info("No checkpoint run in this workspace yet. Register checkpoints, then compute:")
    else:
        st.info(f"Registered but not computed yet: {md(', '.join(runs['run']))}.")
        compute_run_box(list(runs["run"]))
        st.markdown("Register more:")
    st.code(
        "mixscope checkpoints add my-run path/to/run_dir      # checkpoint-{step}/ dirs\n"
        "mixscope checkpoints add pythia EleutherAI/pythia-70m@step1000,step2000\n"
        "mixscope geometry my-run --probe-size 256 --stratify-by source",
        "bash",
    )
    st.markdown(
        "Or build the demo series: a small causal LM trained from scratch on this corpus "
        "(checkpoints at log-spaced steps) and the packaged all-MiniLM-L6-v2 as a pretrained "
        "model for layer-wise views."
    )
    demo_series_box()
    st.stop()

# ------------------------------------------------------------------ what to look at
c_run, c_cfg = st.columns([1, 2])
run = url_select("Run", list(computed["run"]), key="geo_run", param="run", container=c_run)
# The selectors below are keyed by run, so switching run shows fresh widgets with that run's
# options and labels (a kept widget showed the previous run's, e.g. "4 (final)" for a 6-layer
# model); their URL choices belonged to the previous run and are dropped with it.
if st.session_state.get("geo_run_shown", run) != run:
    for stale in ("cfg", "layer", "ckpt", "group"):
        st.query_params.pop(stale, None)
st.session_state["geo_run_shown"] = run
cfgs = state.cached(views.configs, run=run)
cfg_rows = {r["config"]: r for r in cfgs.to_dict(orient="records")}


def _cfg_label(c: str) -> str:
    p = json.loads(cfg_rows[c]["params"])
    return (
        f"{c} · probe {cfg_rows[c].get('probe_size')} · {p.get('pooling')} pooling · "
        f"max {p.get('max_tokens')} tokens · {cfg_rows[c]['n_checkpoints']} checkpoint(s)"
    )


config = url_select(
    "Computation setting",
    list(cfg_rows),
    key=f"geo_config:{run}",
    param="cfg",
    format_func=_cfg_label,
    container=c_cfg,
    help="Results are stored per (checkpoint, probe set, parameters); newest first.",
)
cfg = cfg_rows[config]
st.caption("Settings: " + views.settings_caption(cfg["params"], cfg))

m = state.cached(views.metrics, run=run, config=config)
if m.empty:
    st.warning("This setting has no stored metrics.")
    st.stop()
keys = [k for k in METRIC_ORDER if k in set(m["key"])] + sorted(set(m["key"]) - set(METRIC_ORDER))
labels = {k: views.metric_label(k, m.loc[m["key"] == k, "params"].iloc[0]) for k in keys}
layers = sorted(int(x) for x in m["layer"].unique())
ck_order = m.drop_duplicates("checkpoint")[["checkpoint", "step"]]
checkpoints = list(ck_order["checkpoint"])
has_steps = ck_order["step"].notna().sum() >= 2
groups = ["all"] + sorted(set(m["group"]) - {"all"})

c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
metric = url_select(
    "Metric", keys, key=f"geo_metric:{run}", param="metric", format_func=labels.get, container=c1
)
layer = url_select(
    "Layer",
    layers,
    key=f"geo_layer:{run}",
    param="layer",
    default=layers[-1],
    format_func=lambda v: (
        f"{v} (embeddings)" if v == 0 else f"{v}" + (" (final)" if v == layers[-1] else "")
    ),
    container=c2,
)
checkpoint = url_select(
    "Checkpoint",
    checkpoints,
    key=f"geo_ckpt:{run}",
    param="ckpt",
    default=checkpoints[-1],
    container=c3,
)
group = url_select("Probe group", groups, key=f"geo_group:{run}", param="group", container=c4)

# ------------------------------------------------------------------ numbers at the selection
sel = m[(m["checkpoint"] == checkpoint) & (m["layer"] == layer) & (m["group"] == group)]
st.subheader(f"{md(checkpoint)} · layer {layer} · group {md(group)}")
if sel.empty:
    st.info(
        "No metrics for this group here (groups with fewer probe texts than the minimum get "
        "no spectral metrics)."
    )
else:
    n_d = sel.iloc[0]
    rows = [
        {
            "metric": views.metric_label(k, sel[sel["key"] == k].iloc[0]["params"]),
            "value": float(sel[sel["key"] == k].iloc[0]["value"]),
        }
        for k in keys
        if k in set(sel["key"])
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        key="geo_numbers",
        column_config={
            "metric": st.column_config.TextColumn("metric (variant, parameters)", width="large"),
            "value": st.column_config.NumberColumn(format="%.4f"),
        },
    )
    st.caption(
        f"Z = {int(n_d['n'])} probe texts x {int(n_d['d'])} dimensions (pooled hidden states "
        f"of layer {layer}); every spectrum in float64."
    )

tab_traj, tab_spec, tab_cka, tab_src, tab_w, tab_info = st.tabs(
    ["Trajectories", "Eigenspectrum", "CKA", "Per source", "Weights", "Checkpoints & probe"]
)

with tab_traj:
    sub = m[(m["key"] == metric) & (m["group"] == group)]
    if has_steps:
        bands = []
        traj = None
        if metric.split("/")[0] in ("rankme", "alpha_req"):
            variant = metric.split("/")[1] if metric.startswith("rankme/") else "covariance"
            traj = state.cached(
                views.trajectory,
                run=run,
                config=config,
                layer=layer,
                group=group,
                rankme_variant=variant,
            )
            bands = traj["bands"]
        tlog = state.cached(views.train_log, run=run)
        st.plotly_chart(
            charts.metric_vs_step(
                sub, label=labels[metric], bands=bands, train_loss=tlog, highlight_layer=layer
            ),
            key="geo_lines",
        )
        if bands:
            st.caption(
                f"Phases (analytics.geometry.phases) of layer {layer} (highlighted): "
                + PHASE_RULE.format(window=3)
            )
            st.dataframe(traj["table"], hide_index=True, key="geo_phases", width="stretch")
        if len(tlog):
            st.caption("Dotted: training loss per step from trainer_state.json (right axis).")
        st.plotly_chart(charts.heatmap(sub, label=labels[metric]), key="geo_heatmap")
        st.caption(f"{labels[metric]}: layer x step, group {md(group)}.")
    else:
        st.plotly_chart(charts.metric_vs_layer(sub, label=labels[metric]), key="geo_lines")
        st.plotly_chart(
            charts.heatmap(sub, label=labels[metric], x="checkpoint"), key="geo_heatmap"
        )
        st.caption("A single checkpoint (no training steps): the views are per layer.")

with tab_spec:
    spec = state.cached(
        views.spectrum, run=run, config=config, checkpoint=checkpoint, layer=layer, group=group
    )
    if spec["eigs"].empty:
        st.info("No stored spectrum for this selection.")
    else:
        st.plotly_chart(
            charts.spectrum_figure(spec, title=f"{checkpoint}, layer {layer}, group {group}"),
            key="geo_spectrum",
        )
        if "alpha" in spec:
            lo, hi = spec["fit_range"]
            st.caption(
                f"Covariance eigenvalues of the centred Z (float64). alpha-ReQ = "
                f"{spec['alpha']:.3f} (R^2 {spec['r2']:.3f}): least squares of log lambda_k "
                f"on log k with {spec['weighting']} weights over 0-based indices {lo}:{hi} "
                f"(ranks {lo + 1}..{hi}), {spec['n_used']} points used. R^2 is the ordinary "
                "(unweighted) R^2 of that same line over the same points, so it describes the "
                "fitted index range only, not the whole spectrum."
            )

with tab_cka:
    c_kind, c_val = st.columns(2)
    kind = c_kind.radio(
        "Compare",
        ["checkpoints", "layers"],
        horizontal=True,
        key="geo_cka_kind",
        format_func=lambda k: (
            "consecutive checkpoints (same layer)"
            if k == "checkpoints"
            else "layers within a checkpoint"
        ),
    )
    value = c_val.radio("CKA", ["linear", "debiased"], horizontal=True, key="geo_cka_value")
    if kind == "layers":
        mat = state.cached(
            views.cka_matrix, run=run, config=config, kind="layers", checkpoint=checkpoint,
            value=value,
        )  # fmt: skip
        title = f"{value} CKA between layers of {checkpoint}"
    else:
        mat = state.cached(
            views.cka_matrix, run=run, config=config, kind="checkpoints", layer=layer,
            value=value,
        )  # fmt: skip
        title = f"{value} CKA between consecutive checkpoints, layer {layer}"
    if mat.empty or mat.shape[0] < 2:
        st.info("Nothing to compare here (one checkpoint has no neighbour).")
    else:
        st.plotly_chart(charts.cka_heatmap(mat, title=title, label=value), key="geo_cka")
        if kind == "checkpoints":
            pairs = state.cached(views.cka, run=run, config=config, kind="checkpoints")
            st.plotly_chart(charts.cka_vs_step(pairs, value=value), key="geo_cka_steps")
    st.caption(
        "Linear CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on column-centred X, Y; "
        "debiased replaces HSIC with its unbiased estimator. Checkpoint pairs are stored only "
        "between consecutive checkpoints (empty cells are pairs not computed); CKA also "
        "compares checkpoints of different hidden sizes."
    )

with tab_src:
    loss = state.cached(views.loss, run=run, config=config)
    at = m[(m["checkpoint"] == checkpoint) & (m["layer"] == layer) & (m["key"] == metric)]
    table = at[["group", "n", "value"]]
    if len(loss):
        ls = loss[loss["checkpoint"] == checkpoint][["group", "bits_per_byte", "n_texts"]]
        table = ls.merge(table, on="group", how="left")
        per = table[(table["group"] != "all") & table["value"].notna()]
        if len(per) >= 2:
            st.plotly_chart(
                charts.per_source_figure(per, metric_label=labels[metric]), key="geo_src"
            )
        st.plotly_chart(charts.bpb_vs_step(loss), key="geo_bpb")
        st.caption(
            "Bits per byte = summed next-token loss (nats) of each group's probe texts / ln 2 / "
            "their UTF-8 bytes, so tokenizers compare (the demo series is trained without the "
            "probe documents). No EOS token is prepended, so a text's first token is not "
            "predicted: its loss and its bytes are both left out (lm-eval prepends EOS and "
            "counts every byte, so its values differ slightly)."
        )
    else:
        st.caption("No loss: this model is not a causal LM.")
    st.dataframe(
        table.rename(columns={"value": labels[metric]}),
        hide_index=True,
        width="stretch",
        key="geo_src_table",
    )

with tab_w:
    w = state.cached(views.weights, run=run, config=config)
    if w.empty:
        st.info("No weight spectra stored (computed with --no-weights?).")
    else:
        names = sorted(w["name"].unique())
        pick = st.multiselect(
            "Matrices", names, default=names[: min(len(names), 12)], key="geo_w_names"
        )
        wsel = w[w["name"].isin(pick)]
        if has_steps:
            st.plotly_chart(charts.weights_alpha_figure(wsel, y="alpha"), key="geo_w_alpha")
            st.plotly_chart(charts.weights_alpha_figure(wsel, y="stable_rank"), key="geo_w_srank")
        st.caption(
            "Power-law alpha: Clauset MLE fit of p(x) ~ x^-alpha to the eigenvalues of W^T W "
            "above x_min chosen by the smallest KS distance (WeightWatcher); x_min candidates "
            f"keep at least {POWERLAW_MIN_TAIL} eigenvalues in the tail (min_tail), so a "
            "matrix with fewer gets no alpha. Reading: 2-4 well trained, 4-6 weakly trained, "
            "> 6 random-like. "
            "Stable rank = ||W||_F^2 / ||W||_2^2."
        )
        st.dataframe(
            w[w["checkpoint"] == checkpoint], hide_index=True, width="stretch", key="geo_w_table"
        )
        it = state.cached(views.intruders, run=run, config=config)
        if len(it):
            st.plotly_chart(charts.intruders_figure(it), key="geo_intruders")
            k0, e0 = int(it["k"].iloc[0]), float(it["eps"].iloc[0])
            st.caption(
                f"Intruder dimensions (Shuttleworth et al. 2024): of the top {k0} left singular "
                f"vectors of W at a step, those whose largest |cosine| with every singular "
                f"vector of W at the previous checkpoint is below {e0:g}. W is read out x in "
                "(GPT-2's Conv1D weights, stored in x out, are transposed first)."
            )

with tab_info:
    info = state.cached(views.checkpoint_info, run=run, config=config)
    st.dataframe(info, hide_index=True, width="stretch", key="geo_info")
    st.caption(
        "One forward pass per batch returns every layer; forward_passes counts them, seconds is "
        "the time of the batches. Layer 0 = embeddings, the last = after the final norm."
    )
    tlog = state.cached(views.train_log, run=run)
    if len(tlog):
        st.line_chart(tlog, x="step", y="loss", height=220)
    docs = state.cached(views.probe_docs, probe_hash=cfg["probe_hash"])
    st.caption(f"Probe set {cfg['probe_hash']}: {len(docs)} documents (open them in Explore).")
    st.dataframe(docs, hide_index=True, width="stretch", key="geo_probe_docs")
    regs = state.cached(views.run_checkpoints, run=run)
    with st.expander("Registered checkpoints"):
        st.dataframe(regs, hide_index=True, width="stretch", key="geo_regs")

st.divider()
compare_by_mixture()

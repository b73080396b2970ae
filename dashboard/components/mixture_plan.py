"""The always-visible plan of a phase: tokens, documents and epochs per group, warnings past
about 4 epochs with the effective-data estimate, before/after composition, diversity, KL."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics.mixture import R_STAR, weight_diversity
from analytics.mixture import builder as mb
from analytics.mixture.plan import WARN_EPOCHS
from dashboard.components.numbers import human
from dashboard.components.text import md

HEIGHT = 320


def plain(text: object) -> str:
    """``text`` with every Markdown character escaped: corpus values (group names, filter
    values) and messages quoting them are shown literally, never rendered."""
    return md(text)


def composition_figure(plan: pd.DataFrame) -> go.Figure:
    """Share of tokens per group: in the filtered corpus (before) and in the phase (after)."""
    before = plan["available_tokens"] / plan["available_tokens"].sum()
    fig = go.Figure()
    fig.add_bar(x=plan["group"], y=before, name="corpus (before)", marker_color="#9aa5b1")
    fig.add_bar(x=plan["group"], y=plan["weight"], name="mixture (after)", marker_color="#3b82f6")
    fig.update_layout(
        barmode="group",
        height=HEIGHT,
        margin=dict(t=30, l=0, r=0, b=0),
        title="Share of tokens per group",
        yaxis_tickformat=".0%",
        legend=dict(orientation="h", y=1.12, x=1, xanchor="right"),
    )
    return fig


def epochs_figure(plan: pd.DataFrame) -> go.Figure:
    colors = ["#dc2626" if e > WARN_EPOCHS else "#3b82f6" for e in plan["epochs"]]
    fig = go.Figure(go.Bar(x=plan["group"], y=plan["epochs"], marker_color=colors))
    fig.add_hline(y=WARN_EPOCHS, line_dash="dash", line_color="#dc2626")
    fig.add_hline(y=1, line_dash="dot", line_color="#9aa5b1")
    fig.update_layout(
        height=HEIGHT,
        margin=dict(t=30, l=0, r=0, b=0),
        title=f"Epochs per group (red: more than {WARN_EPOCHS:g})",
    )
    return fig


def plan_view(p: str, plan: pd.DataFrame, *, kl: float | None = None) -> None:
    """Table, warnings, charts and diversity of one phase's plan."""
    total_eff = float(plan["effective_tokens"].sum())
    budget = int(plan["target_tokens"].sum())
    weights = dict(zip(plan["group"], plan["weight"]))
    div = weight_diversity(weights)
    natural = dict(zip(plan["group"], plan["available_tokens"] / plan["available_tokens"].sum()))
    div0 = weight_diversity(natural)
    cols = st.columns(5)
    cols[0].metric("Budget", human(budget), help=f"{budget:,} tokens")
    cols[1].metric(
        "Effective data",
        f"{total_eff / budget:.1%}" if budget else "n/a",
        help="Data-constrained scaling law (Muennighoff et al. 2023): repeated tokens are "
        f"worth U + U·R*·(1 − exp(−R/R*)) fresh tokens, R* = {R_STAR}.",
    )
    cols[2].metric(
        "Diversity (weight entropy)",
        f"{div['entropy']:.3f} nats",
        f"{div['entropy'] - div0['entropy']:+.3f} vs corpus",
    )
    cols[3].metric("Effective groups", f"{div['effective_groups']:.1f}", help="exp(entropy)")
    cols[4].metric("KL to target", "not set" if kl is None else f"{kl:.4f} nats")
    warn = plan[plan["warning"] != ""]
    for r in warn.itertuples(index=False):
        st.warning(f"**{plain(r.group)}**: {plain(r.warning)}", icon=":material/repeat:")
    shown = plan[
        [
            "group",
            "weight",
            "target_tokens",
            "available_tokens",
            "available_docs",
            "epochs",
            "effective_tokens",
            "warning",
        ]
    ].assign(effective_tokens=plan["effective_tokens"].round().astype("int64"))
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        key=f"{p}plan",
        column_config={
            "weight": st.column_config.NumberColumn("weight", format="%.4f"),
            "target_tokens": st.column_config.NumberColumn("target tokens", format="localized"),
            "available_tokens": st.column_config.NumberColumn(
                "available tokens", format="localized"
            ),
            "available_docs": st.column_config.NumberColumn("documents", format="localized"),
            "epochs": st.column_config.NumberColumn("epochs", format="%.3f"),
            "effective_tokens": st.column_config.NumberColumn(
                "effective tokens", format="localized"
            ),
            "warning": st.column_config.TextColumn("warning", width="large"),
        },
    )
    c1, c2 = st.columns(2)
    c1.plotly_chart(composition_figure(plan), key=f"{p}composition")
    c2.plotly_chart(epochs_figure(plan), key=f"{p}epochs_chart")


def kl_for(target: dict | None, weights: dict[str, float]) -> float | None:
    """KL(target || mixture) for the current weights when target features are set."""
    if not target:
        return None
    try:
        kl = mb.kl_to_target(target["groups"], target["target"], weights)
    except ValueError:
        return None
    return kl if math.isfinite(kl) else None

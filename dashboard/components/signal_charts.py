"""Plotly figures for the Signals, Concepts and Contamination pages (no queries here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dashboard.components.charts import HEIGHT
from dashboard.components.charts import layout as _layout


def impact_figure(impact: pd.DataFrame, *, basis: str = "tokens") -> go.Figure:
    """Grouped bars: share of each source's `basis` removed, one bar per filter."""
    if impact.empty:
        return go.Figure()
    y = f"{basis}_removed_frac"
    fig = px.bar(
        impact,
        x="source",
        y=y,
        color="filter",
        barmode="group",
        hover_data=["docs_removed", "tokens_removed", "docs", "tokens"],
        labels={y: f"share of {basis} removed", "source": ""},
    )
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return _layout(fig, title=f"Share of {basis} removed per source")


def duplicate_figure(dups: pd.DataFrame) -> go.Figure:
    """Grouped bars of the exact and near duplicate rate per source."""
    long = dups.melt(
        id_vars=["source"],
        value_vars=[c for c in ("exact_dup_rate", "near_dup_rate") if c in dups],
        var_name="kind",
        value_name="rate",
    ).dropna(subset=["rate"])
    long["kind"] = long["kind"].map({"exact_dup_rate": "exact", "near_dup_rate": "near"})
    fig = px.bar(long, x="source", y="rate", color="kind", barmode="group", labels={"source": ""})
    fig.update_yaxes(tickformat=".0%", title="documents dedup would drop")
    return _layout(fig, height=HEIGHT - 60, title="Duplicate rate per source")


def scatter_figure(sample: pd.DataFrame, *, x: str, y: str) -> go.Figure:
    if sample.empty:
        return go.Figure()
    fig = px.scatter(
        sample,
        x=x,
        y=y,
        color="source",
        hover_data=["doc_id", "n_tokens"],
        opacity=0.7,
        labels={x: x.replace("_", " "), y: y.replace("_", " ")},
    )
    fig.update_traces(marker=dict(size=6))
    return _layout(fig, height=HEIGHT + 60)


def age_figure(age: pd.DataFrame) -> go.Figure:
    """100% stacked bars per source: tokens before / after the cutoff, undated."""
    parts = {
        "tokens_before": "before cutoff",
        "tokens_after": "on/after cutoff",
        "tokens_undated": "undated",
    }
    long = age.melt(id_vars=["source"], value_vars=list(parts), var_name="part", value_name="tok")
    long["part"] = long["part"].map(parts)
    tot = long.groupby("source")["tok"].transform("sum").replace(0, np.nan)
    long["share"] = long["tok"] / tot
    fig = px.bar(
        long,
        x="source",
        y="share",
        color="part",
        hover_data=["tok"],
        labels={"source": "", "share": "share of tokens", "tok": "tokens"},
        color_discrete_map={
            "before cutoff": "#4C78A8",
            "on/after cutoff": "#E45756",
            "undated": "#BAB0AC",
        },
    )
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return _layout(fig, title="Tokens dated before / after the evaluation cutoff")


def rank_frequency_figure(ranked: pd.DataFrame) -> go.Figure:
    """Log-log rank-frequency plot of concepts with a non-zero count."""
    nz = ranked[ranked["count"] > 0]
    if nz.empty:
        return go.Figure()
    fig = px.line(
        nz,
        x="rank",
        y="count",
        markers=True,
        log_x=True,
        log_y=True,
        hover_data=["concept"],
        labels={"rank": "rank (1 = most frequent)", "count": "occurrences"},
    )
    return _layout(fig, height=HEIGHT - 40, title="Long tail: rank vs frequency (log-log)")


def fit_figure(data: pd.DataFrame, *, slope: float, intercept: float, r2: float) -> go.Figure:
    """Accuracy against log10 frequency with the least-squares line."""
    fig = px.scatter(
        data,
        x="frequency",
        y="accuracy",
        hover_data=["concept"],
        log_x=True,
        labels={"frequency": "concept frequency in the corpus (log)"},
    )
    xs = np.logspace(np.log10(data["frequency"].min()), np.log10(data["frequency"].max()), 50)
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=slope * np.log10(xs) + intercept,
            mode="lines",
            name=f"fit: slope {slope:.3f} per decade, R² {r2:.3f}",
        )
    )
    return _layout(fig, height=HEIGHT - 40, title="Accuracy vs log frequency")


def contamination_figure(per_source: pd.DataFrame) -> go.Figure:
    fig = px.bar(
        per_source,
        x="source",
        y="flagged_docs",
        hover_data=["docs", "flagged_frac"],
        labels={"flagged_docs": "flagged documents", "source": ""},
    )
    return _layout(fig, height=HEIGHT - 80, title="Documents sharing an n-gram with the eval set")

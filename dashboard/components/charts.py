"""Plotly figures built from analytics' tables (no queries here)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

HEIGHT = 420


def layout(fig: go.Figure, *, height: int = HEIGHT, title: str = "") -> go.Figure:
    """The house layout of a figure: tight margins (room for a title when there is one),
    ``height`` pixels, no legend title."""
    fig.update_layout(
        margin=dict(t=40 if title else 10, l=0, r=0, b=0),
        height=height,
        title=title or None,
        legend_title_text="",
    )
    return fig


def composition_figure(df: pd.DataFrame, *, basis: str, kind: str, path: list[str]) -> go.Figure:
    """Treemap or sunburst of `basis` (tokens/documents/bytes) along `path`."""
    if df.empty:
        return go.Figure()
    fn = px.treemap if kind == "treemap" else px.sunburst
    fig = fn(df, path=path, values=basis, hover_data=["documents", "tokens", "bytes"])
    fig.update_traces(textinfo="label+percent root")
    fig.update_layout(margin=dict(t=10, l=0, r=0, b=0), height=HEIGHT + 80)
    return fig


def length_box_figure(q: pd.DataFrame) -> go.Figure:
    """Box plot per group from precomputed quantiles (whiskers at p05/p95).

    With precomputed quantiles plotly places every box at x=0 unless each trace is given its
    own category, so each box gets `x=[group]` (and a category axis) to stand under its name.
    """
    fig = go.Figure()
    for row in q.itertuples():
        fig.add_trace(
            go.Box(
                name=str(row.grp),
                x=[str(row.grp)],
                q1=[row.q1],
                median=[row.median],
                q3=[row.q3],
                lowerfence=[row.p05],
                upperfence=[row.p95],
                mean=[row.mean],
                boxpoints=False,
                showlegend=False,
            )
        )
    fig.update_xaxes(
        type="category", categoryorder="array", categoryarray=[str(g) for g in q["grp"]]
    )
    fig.update_yaxes(type="log", title="tokens per document (log; whiskers p05–p95)")
    fig.update_layout(margin=dict(t=10, l=0, r=0, b=0), height=HEIGHT)
    return fig


def date_figure(df: pd.DataFrame, *, basis: str) -> go.Figure:
    if df.empty:
        return go.Figure()
    fig = px.bar(df, x="bucket", y=basis, color="grp", labels={"grp": "", "bucket": "date"})
    fig.update_layout(margin=dict(t=10, l=0, r=0, b=0), height=HEIGHT, bargap=0.05)
    return fig


def bar_by_group(df: pd.DataFrame, *, x: str, y: str, title: str = "") -> go.Figure:
    fig = px.bar(df, x=x, y=y, title=title or None)
    fig.update_layout(margin=dict(t=30 if title else 10, l=0, r=0, b=0), height=HEIGHT - 60)
    return fig


def length_histogram_figure(df: pd.DataFrame) -> go.Figure:
    """Documents per log-spaced token-length bin, one line per group."""
    if df.empty:
        return go.Figure()
    df = df.assign(mid=(df["lo"] * df["hi"]) ** 0.5)
    fig = px.line(
        df,
        x="mid",
        y="documents",
        color="grp",
        markers=True,
        log_x=True,
        labels={"mid": "tokens per document", "grp": ""},
        title="Length distribution",
    )
    fig.update_layout(margin=dict(t=30, l=0, r=0, b=0), height=HEIGHT - 60)
    return fig

"""Plotly figures for the Geometry page (tables in, figures out; no queries here)."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.components.charts import layout

HEIGHT = 400
PHASE_COLORS = {
    "warmup-collapse": "rgba(150,150,150,0.18)",
    "entropy-seeking": "rgba(31,119,180,0.14)",
    "compression-seeking": "rgba(214,39,40,0.14)",
    "mixed": "rgba(148,103,189,0.12)",
}
#: WeightWatcher's reading of the power-law exponent of W^T W's eigenvalues
ALPHA_BANDS = (
    (2.0, 4.0, "rgba(44,160,44,0.12)", "2–4 well trained"),
    (4.0, 6.0, "rgba(255,187,0,0.14)", "4–6 weakly trained"),
    (6.0, None, "rgba(214,39,40,0.10)", "> 6 random-like"),
)


_layout = partial(layout, height=HEIGHT)  # this page's figures are a little lower


def _log_steps(steps: pd.Series) -> bool:
    s = pd.to_numeric(steps, errors="coerce").dropna()
    return bool(len(s) > 1 and s.min() > 0 and s.max() / s.min() >= 20)


def metric_vs_step(
    df: pd.DataFrame,
    *,
    label: str,
    bands: list[dict[str, Any]] | None = None,
    train_loss: pd.DataFrame | None = None,
    highlight_layer: int | None = None,
) -> go.Figure:
    """One line per layer of ``value`` vs step; phase bands shaded behind; the training
    loss on a second axis when given."""
    fig = make_subplots(specs=[[{"secondary_y": train_loss is not None and len(train_loss) > 0}]])
    for layer, d in df.sort_values("step").groupby("layer", sort=True):
        hl = highlight_layer is not None and int(layer) == int(highlight_layer)
        fig.add_trace(
            go.Scatter(
                x=d["step"],
                y=d["value"],
                mode="lines+markers",
                name=f"layer {int(layer)}",
                line=dict(width=3.5 if hl else 1.6),
                customdata=d[["checkpoint"]],
                hovertemplate="step %{x}<br>%{y:.4g}<br>%{customdata[0]}",
            ),
            secondary_y=False,
        )
    if train_loss is not None and len(train_loss):
        fig.add_trace(
            go.Scatter(
                x=train_loss["step"],
                y=train_loss["loss"],
                mode="lines",
                name="training loss",
                line=dict(color="rgba(90,90,90,0.55)", dash="dot", width=1.2),
                hovertemplate="step %{x}<br>loss %{y:.3f}",
            ),
            secondary_y=True,
        )
        fig.update_yaxes(title_text="training loss (nats/token)", secondary_y=True)
    log_x = _log_steps(df["step"])
    for b in bands or []:
        if b["end_step"] > b["start_step"]:
            fig.add_vrect(  # shapes take data coordinates, also on a log axis
                x0=b["start_step"],
                x1=b["end_step"],
                fillcolor=PHASE_COLORS.get(b["phase"], "rgba(0,0,0,0.05)"),
                line_width=0,
                layer="below",
            )
            # ... annotations take log10 coordinates on a log axis
            x = float(np.log10(b["start_step"])) if log_x else b["start_step"]
            fig.add_annotation(
                x=x,
                y=1,
                yref="paper",
                text=b["phase"],
                showarrow=False,
                xanchor="left",
                yanchor="top",
                font=dict(size=10),
            )
    fig.update_xaxes(title_text="step", type="log" if log_x else "linear")
    fig.update_yaxes(title_text=label, secondary_y=False)
    return _layout(fig)


def metric_vs_layer(df: pd.DataFrame, *, label: str) -> go.Figure:
    """Metric by layer for models without steps (one line per checkpoint)."""
    fig = px.line(
        df.sort_values("layer"),
        x="layer",
        y="value",
        color="checkpoint",
        markers=True,
        labels={"value": label},
    )
    fig.update_xaxes(dtick=1)
    return _layout(fig)


def heatmap(df: pd.DataFrame, *, label: str, x: str = "step") -> go.Figure:
    """Layer (rows) x step (columns) heatmap of ``value``."""
    piv = df.pivot_table(index="layer", columns=x, values="value", aggfunc="first")
    piv = piv.sort_index()
    fig = go.Figure(
        go.Heatmap(
            z=piv.to_numpy(),
            x=[
                str(int(c)) if isinstance(c, (int, float, np.integer)) else str(c)
                for c in piv.columns
            ],
            y=[f"layer {int(r)}" for r in piv.index],
            colorscale="Viridis",
            colorbar=dict(title=dict(text=label.split(" (")[0], side="right")),
            hovertemplate=f"{x} %{{x}}<br>%{{y}}<br>%{{z:.4g}}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text=x, type="category")
    return _layout(fig, height=max(220, 40 * len(piv) + 120))


def spectrum_figure(spec: dict[str, Any], *, title: str = "") -> go.Figure:
    """Covariance eigenvalues vs rank on log-log axes, the fitted alpha-ReQ line over its
    fit range, the fit range shaded."""
    eigs = spec["eigs"]
    fig = go.Figure()
    pos = eigs[eigs["eigenvalue"] > 0]
    fig.add_trace(
        go.Scatter(
            x=pos["k"],
            y=pos["eigenvalue"],
            mode="lines+markers",
            marker=dict(size=4),
            name="eigenvalues",
            hovertemplate="rank %{x}<br>lambda %{y:.4g}<extra></extra>",
        )
    )
    if spec.get("alpha") is not None and np.isfinite(spec.get("alpha", np.nan)):
        lo, hi = spec["fit_range"]
        k = np.arange(lo + 1, min(hi, len(eigs)) + 1, dtype=float)
        if k.size:
            fig.add_trace(
                go.Scatter(
                    x=k,
                    y=np.exp(spec["intercept"]) * k ** (-spec["alpha"]),
                    mode="lines",
                    line=dict(color="crimson", width=2.5, dash="dash"),
                    name=f"fit: alpha = {spec['alpha']:.3f}, R^2 = {spec['r2']:.3f}",
                )
            )
            fig.add_vrect(
                x0=lo + 1,
                x1=k[-1],
                fillcolor="rgba(214,39,40,0.07)",
                line_width=0,
                layer="below",
            )
    fig.update_xaxes(type="log", title_text="rank k (1-based)")
    fig.update_yaxes(type="log", title_text="covariance eigenvalue")
    fig = _layout(fig, title=title, height=HEIGHT + 40)
    fig.update_layout(legend=dict(orientation="h", y=-0.22, yanchor="top", x=0))
    return fig


def cka_heatmap(m: pd.DataFrame, *, title: str, label: str = "CKA") -> go.Figure:
    """A square CKA matrix (0..1)."""
    fig = go.Figure(
        go.Heatmap(
            z=m.to_numpy(dtype=float),
            x=[str(c) for c in m.columns],
            y=[str(r) for r in m.index],
            zmin=0,
            zmax=1,
            colorscale="Blues",
            colorbar=dict(title=dict(text=label, side="right")),
            hovertemplate="%{y} vs %{x}<br>%{z:.4f}<extra></extra>",
        )
    )
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category", autorange="reversed")
    return _layout(fig, title=title, height=max(320, 32 * len(m) + 140))


def cka_vs_step(df: pd.DataFrame, *, value: str) -> go.Figure:
    """CKA between consecutive checkpoints (at the later step) per layer."""
    fig = px.line(
        df.assign(layer=df["layer_a"].map(lambda v: f"layer {int(v)}")).sort_values("step_b"),
        x="step_b",
        y=value,
        color="layer",
        markers=True,
        labels={"step_b": "step (vs the previous checkpoint)", value: f"{value} CKA"},
    )
    fig.update_yaxes(range=[min(0.0, float(df[value].min())), 1.02])
    fig.update_xaxes(type="log" if _log_steps(df["step_b"]) else "linear")
    return _layout(fig)


def per_source_figure(df: pd.DataFrame, *, metric_label: str) -> go.Figure:
    """Per source: the metric against bits per byte (one point per source)."""
    fig = px.scatter(
        df,
        x="bits_per_byte",
        y="value",
        text="group",
        labels={"bits_per_byte": "bits per byte on held-out probe text", "value": metric_label},
    )
    fig.update_traces(textposition="top center", marker=dict(size=10))
    return _layout(fig)


def bpb_vs_step(loss: pd.DataFrame) -> go.Figure:
    """Bits per byte per source (and all) vs step."""
    d = loss.sort_values("step")
    fig = px.line(
        d,
        x="step",
        y="bits_per_byte",
        color="group",
        markers=True,
        labels={"bits_per_byte": "bits per byte (probe)", "group": ""},
    )
    for tr in fig.data:
        if tr.name == "all":
            tr.line.width = 4
            tr.line.color = "black"
    fig.update_xaxes(type="log" if _log_steps(d["step"]) else "linear")
    return _layout(fig)


def weights_alpha_figure(w: pd.DataFrame, *, y: str = "alpha") -> go.Figure:
    """Per-matrix power-law alpha (or stable rank) vs step, with WeightWatcher's reading
    bands shaded for alpha."""
    d = w.dropna(subset=[y]).sort_values("step")
    fig = px.line(d, x="step", y=y, color="name", markers=True, labels={"name": ""})
    if y == "alpha":
        top = float(max(8.0, d[y].max() if len(d) else 8.0))
        for lo, hi, color, text in ALPHA_BANDS:
            fig.add_hrect(
                y0=lo,
                y1=hi if hi is not None else top,
                fillcolor=color,
                line_width=0,
                layer="below",
                annotation_text=text,
                annotation_position="top left",
                annotation_font_size=10,
            )
        fig.update_yaxes(title_text="power-law alpha of W^T W eigenvalues")
    else:
        fig.update_yaxes(title_text="stable rank ||W||_F^2 / ||W||_2^2")
    fig.update_xaxes(type="log" if _log_steps(d["step"]) else "linear")
    fig.update_layout(showlegend=len(d["name"].unique()) <= 24)
    return _layout(fig, height=HEIGHT + 40)


def intruders_figure(it: pd.DataFrame) -> go.Figure:
    """Matrix (rows) x later step (columns): number of intruder dimensions."""
    piv = it.pivot_table(index="name", columns="step_b", values="count", aggfunc="first")
    fig = go.Figure(
        go.Heatmap(
            z=piv.to_numpy(dtype=float),
            x=[str(int(c)) for c in piv.columns],
            y=list(piv.index),
            colorscale="OrRd",
            zmin=0,
            colorbar=dict(title=dict(text="intruders", side="right")),
            hovertemplate="%{y}<br>step %{x}<br>%{z} intruder(s)<extra></extra>",
        )
    )
    fig.update_xaxes(type="category", title_text="step (vs the previous checkpoint)")
    return _layout(fig, height=max(300, 18 * len(piv) + 120))

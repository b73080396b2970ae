"""The map's WebGL scatter: points coloured by a column, cluster labels at the clusters'
centres, hover with a plain-text snippet, lasso/box selection returning doc ids.

Document text reaches Plotly only HTML-escaped (Plotly's hover labels understand a few tags
such as <b> and <a>; escaped, a corpus's markup shows as the characters it is).
"""

from __future__ import annotations

import html
import textwrap
from typing import Any

import numpy as np
import pandas as pd
import plotly.colors as pc
import plotly.graph_objects as go

MAX_GROUPS = 20  # categorical colours: the largest groups, the rest as "other"
#: 24 well separated colours (Plotly's Dark24), cycled beyond
PALETTE = pc.qualitative.Dark24
OTHER_COLOUR = "#c7c7c7"
MAX_LABELS = 40
LABEL_HEIGHT = 0.035  # a label's height as a share of the plot's y range (~640 px)


def plain(text: Any, width: int = 60, max_lines: int = 4) -> str:
    """Text safe for a Plotly label: HTML-escaped, wrapped with <br> line breaks."""
    s = " ".join(str(text if text is not None else "").split())
    lines = textwrap.wrap(s, width=width)[:max_lines] or [""]
    return "<br>".join(html.escape(line, quote=False) for line in lines)


def cluster_names(clusters: pd.DataFrame, n_terms: int = 3) -> dict[int, str]:
    """cluster -> 'N · term, term, term' (from the c-TF-IDF terms)."""
    out = {}
    for r in clusters.itertuples(index=False):
        terms = list(r.terms)[:n_terms] if len(r.terms) else [str(r.label)]
        out[int(r.cluster)] = f"{int(r.cluster)} · {', '.join(terms)}"
    return out


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _groups(values: pd.Series) -> tuple[pd.Series, list[str]]:
    """Values as labels, the largest MAX_GROUPS - 1 kept and the rest called 'other'."""
    labels = values.astype(object).where(values.notna(), "(none)").astype(str)
    counts = labels.value_counts()
    if len(counts) > MAX_GROUPS:
        keep = set(counts.index[: MAX_GROUPS - 1])
        labels = labels.where(labels.isin(keep), "other")
        counts = labels.value_counts()
    order = [g for g in counts.index if g != "other"] + (["other"] if "other" in counts else [])
    return labels, order


def scatter_figure(
    df: pd.DataFrame,
    *,
    color: str,
    color_label: str,
    clusters: pd.DataFrame,
    show_labels: bool = True,
    height: int = 640,
) -> go.Figure:
    """A Scattergl figure of `df` (doc_id, x, y, cluster, source, color, snippet)."""
    names = cluster_names(clusters)
    hover_cluster = df["cluster"].map(lambda c: names.get(int(c), str(c)))
    hover = (
        "<b>" + df["source"].astype(str).map(html.escape) + "</b> · cluster "
        + hover_cluster.map(html.escape) + "<br>" + df["snippet"].map(plain)
    )  # fmt: skip
    fig = go.Figure()
    marker = {"size": 5, "opacity": 0.75}
    if color != "cluster" and is_numeric(df["color"]):
        vals = pd.to_numeric(df["color"], errors="coerce")
        has = vals.notna().to_numpy()
        if (~has).any():
            fig.add_trace(_trace(df[~has], hover[~has], "(not scored)", OTHER_COLOUR, marker))
        fig.add_trace(
            go.Scattergl(
                x=df["x"][has], y=df["y"][has], mode="markers", name=color_label,
                customdata=df["doc_id"][has], hovertext=hover[has], hoverinfo="text",
                marker={**marker, "color": vals[has], "colorscale": "Viridis", "showscale": True,
                        "colorbar": {"title": {"text": html.escape(color_label)}}},
                showlegend=False,
            )
        )  # fmt: skip
    else:
        if color == "cluster":
            labels = df["cluster"].map(lambda c: names.get(int(c), str(c)))
            sizes = labels.value_counts()
            order = sorted(sizes.index, key=lambda s: int(s.split(" ")[0]))
        else:
            labels, order = _groups(df["color"])
        for i, g in enumerate(order):
            mask = (labels == g).to_numpy()
            colour = OTHER_COLOUR if g in ("other", "(none)") else PALETTE[i % len(PALETTE)]
            if color == "cluster" and g.startswith("-1 "):
                colour = OTHER_COLOUR
            fig.add_trace(_trace(df[mask], hover[mask], g, colour, marker))
    if show_labels and len(df):
        _label_centroids(fig, df, names)
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        dragmode="lasso",
        legend={"title": {"text": html.escape(color_label)}, "itemsizing": "constant"},
        showlegend=len(fig.data) <= MAX_GROUPS + 1,
        hoverlabel={"align": "left"},
        xaxis={"visible": False},
        yaxis={"visible": False},
        plot_bgcolor="white",
        uirevision="map",
    )
    return fig


def _trace(part: pd.DataFrame, hover: pd.Series, name: str, colour: str, marker: dict):
    return go.Scattergl(
        x=part["x"], y=part["y"], mode="markers", name=html.escape(name),
        customdata=part["doc_id"], hovertext=hover, hoverinfo="text",
        marker={**marker, "color": colour},
    )  # fmt: skip


def label_positions(
    df: pd.DataFrame, names: dict[int, str], *, max_labels: int = MAX_LABELS
) -> list[tuple[int, float, float]]:
    """(cluster, x, y) of the labels to draw: each cluster's median point, largest clusters
    first, skipping noise, clusters of fewer than 3 points and any label whose box (estimated
    from its length, in units of the plot's range) would overlap one already placed."""
    if df.empty:
        return []
    x0, x1 = float(df["x"].min()), float(df["x"].max())
    y0, y1 = float(df["y"].min()), float(df["y"].max())
    sx, sy = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    placed: list[tuple[float, float, float]] = []  # centre x, centre y, half width (normalised)
    out = []
    sizes = df.groupby("cluster").size().sort_values(ascending=False, kind="stable")
    for c, n in sizes.items():
        if int(c) < 0 or n < 3 or len(out) >= max_labels:
            continue
        part = df[df["cluster"] == c]
        x, y = float(np.median(part["x"])), float(np.median(part["y"]))
        u, v = (x - x0) / sx, (y - y0) / sy
        half = 0.0045 * len(names.get(int(c), str(c))) + 0.01
        if any(abs(u - pu) < half + ph and abs(v - pv) < LABEL_HEIGHT for pu, pv, ph in placed):
            continue
        placed.append((u, v, half))
        out.append((int(c), x, y))
    return out


def _label_centroids(fig: go.Figure, df: pd.DataFrame, names: dict[int, str]) -> None:
    """Cluster labels at their clusters' centres (see `label_positions`)."""
    for c, x, y in label_positions(df, names):
        fig.add_annotation(
            x=x, y=y, text=html.escape(names.get(c, str(c))), showarrow=False,
            font={"size": 11, "color": "#222"}, bgcolor="rgba(255,255,255,0.7)",
        )  # fmt: skip


def selected_doc_ids(event: Any, df: pd.DataFrame, fig: go.Figure | None = None) -> list[str]:
    """Doc ids of a plotly_chart selection event (from each point's customdata; else from
    its trace and index in `fig`)."""
    sel = getattr(event, "selection", None)
    if sel is None and isinstance(event, dict):
        sel = event.get("selection")
    if not sel:
        return []
    points = sel.get("points", []) if isinstance(sel, dict) else getattr(sel, "points", [])
    out: list[str] = []
    for p in points or []:
        cd = p.get("customdata")
        if isinstance(cd, list | tuple):
            cd = cd[0] if cd else None
        if cd is None and fig is not None:
            try:
                cd = fig.data[int(p["curve_number"])].customdata[int(p["point_index"])]
            except (KeyError, IndexError, TypeError, ValueError):
                cd = None
        if cd is not None:
            out.append(str(cd))
    seen: set[str] = set()
    return [d for d in out if not (d in seen or seen.add(d))]

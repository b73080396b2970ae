"""The map figure on tiny frames: numeric colours, groups beyond the palette, escaping, and
doc ids back from a selection event."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.components.map_scatter import MAX_GROUPS, scatter_figure, selected_doc_ids

CLUSTERS = pd.DataFrame(
    {"cluster": [0, 1], "label": ["a, b", "c, d"], "terms": [["a", "b"], ["c", "d"]],
     "size": [3, 3]}
)  # fmt: skip


def frame(color):
    n = len(color)
    return pd.DataFrame(
        {
            "doc_id": [f"d{i}" for i in range(n)],
            "x": np.arange(n, dtype=float),
            "y": np.arange(n, dtype=float) ** 2,
            "cluster": [i % 2 for i in range(n)],
            "source": ["web"] * n,
            "color": color,
            "snippet": ["<script>alert(1)</script> <b>bold</b> & more"] * n,
        }
    )


def test_numeric_colour_uses_a_scale_and_keeps_unscored_points():
    df = frame([0.1, 0.5, None, 0.9, 0.3, None])
    fig = scatter_figure(df, color="compression_ratio", color_label="ratio", clusters=CLUSTERS)
    unscored, scored = fig.data
    assert unscored.name == "(not scored)" and list(unscored.customdata) == ["d2", "d5"]
    assert list(scored.customdata) == ["d0", "d1", "d3", "d4"]
    assert list(scored.marker.color) == [0.1, 0.5, 0.9, 0.3] and scored.marker.showscale
    assert {a.text for a in fig.layout.annotations} == {"0 · a, b", "1 · c, d"}


def test_many_groups_fold_into_other_and_text_is_escaped():
    df = frame([f"s{i % (MAX_GROUPS + 5)}" for i in range(200)])
    fig = scatter_figure(df, color="source", color_label="Source", clusters=CLUSTERS)
    assert len(fig.data) == MAX_GROUPS and fig.data[-1].name == "other"
    assert sum(len(t.customdata) for t in fig.data) == 200
    hover = fig.data[0].hovertext[0]
    assert "<script>" not in hover and "&lt;script&gt;" in hover and "&lt;b&gt;bold" in hover


def test_selected_doc_ids_from_customdata_or_indices():
    df = frame(["a", "a", "a", "b"])  # trace 0 = group a (the largest): d0, d1, d2
    fig = scatter_figure(df, color="source", color_label="Source", clusters=CLUSTERS)
    assert list(fig.data[0].customdata) == ["d0", "d1", "d2"]
    points = [
        {"customdata": "d3"},
        {"customdata": ["d1"]},
        {"curve_number": 0, "point_index": 2},  # no customdata: found through the figure
        {"customdata": "d3"},  # repeated: kept once
    ]
    assert selected_doc_ids({"selection": {"points": points}}, df, fig) == ["d3", "d1", "d2"]
    assert selected_doc_ids({"selection": {"points": []}}, df, fig) == []


def test_labels_skip_noise_small_and_overlapping_clusters():
    from dashboard.components.map_scatter import label_positions

    rng = np.random.default_rng(0)
    parts = []
    for c, (cx, cy), n in [(0, (0, 0), 50), (1, (0.01, 0.0), 20), (2, (10, 10), 30),
                           (-1, (5, 5), 40), (3, (10, 0), 2)]:  # fmt: skip
        parts.append(pd.DataFrame({"x": cx + rng.normal(0, 0.01, n),
                                   "y": cy + rng.normal(0, 0.01, n), "cluster": c}))  # fmt: skip
    df = pd.concat(parts, ignore_index=True)
    names = {c: f"{c} · some, label" for c in range(-1, 4)}
    placed = label_positions(df, names)
    # 1 overlaps the larger 0, -1 is noise, 3 has two points
    assert [c for c, _, _ in placed] == [0, 2]
    assert placed[1][1] == pytest.approx(10, abs=0.05) and placed[1][2] == pytest.approx(
        10, abs=0.05
    )

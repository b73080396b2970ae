"""Geometry page: compare the runs of two mixture versions (lineage) side by side."""

from __future__ import annotations

import streamlit as st

from analytics.mixture import MixtureError, lineage
from dashboard import state
from dashboard.components.geometry_select import url_select
from dashboard.components.text import md


def compare_by_mixture() -> None:
    """Two linked mixture versions -> RankMe, alpha-ReQ and per-source bits per byte of
    their runs, from each run's newest geometry setting."""
    st.subheader("Compare runs by mixture")
    refs = state.cached(lineage.linked_versions)
    if not refs:
        st.caption(
            "No run is linked to a mixture yet: `mixscope checkpoints add RUN PATH --mixture "
            "NAME@VERSION` records which mixture a run was trained on."
        )
        return
    c1, c2 = st.columns(2)
    a = url_select("Mixture A", refs, key="geo_mix_a", param="mixa", container=c1)
    b = url_select("Mixture B", refs, key="geo_mix_b", param="mixb", default=refs[-1], container=c2)
    try:
        res = state.cached(lineage.compare_mixtures, a=a, b=b)
    except MixtureError as exc:
        st.error(md(str(exc)))
        return
    st.caption(
        "Each run at its last computed checkpoint, final layer, all probe texts, from its "
        "newest computation setting: RankMe on covariance eigenvalues, alpha-ReQ on the "
        "covariance spectrum; bits per byte per probe group (causal LMs only)."
    )
    st.dataframe(res["summary"], hide_index=True, width="stretch", key="geo_mix_summary")
    bpb = res["bpb"]
    if len(bpb):
        st.dataframe(bpb, hide_index=True, width="stretch", key="geo_mix_bpb")
        st.bar_chart(bpb.set_index("group"), stack=False, height=260)
    else:
        st.caption("No per-source bits per byte stored for these runs.")

"""Panels of the Map page: the selection (as a filter for every page), the clusters, and
diversity and similarity measures (definitions in analytics.maps.diversity)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics.errors import MixscopeError
from analytics.filters import DocFilter
from analytics.maps import views as map_views
from analytics.maps.filtering import (
    cluster_condition,
    describe_map_condition,
    keep_selection,
    selection_condition,
    selection_info,
    store_selection,
    with_condition,
)
from dashboard import state
from dashboard.components import map_data
from dashboard.components.auth import can_edit
from dashboard.components.text import md, show_error, show_warning

MAX_SELECTION = 200_000
PAGES_WITH_FILTER = [
    ("app_pages/explore.py", "Explore", ":material/filter_alt:"),
    ("app_pages/overview.py", "Overview", ":material/donut_large:"),
    ("app_pages/search.py", "Search", ":material/search:"),
]


def apply_filter(flt: DocFilter) -> None:
    """Put `flt` in the URL (every page reads it) and rerun."""
    state.set_filter(flt)
    st.rerun()


MAP_KINDS = ("selection", "cluster")


def valid_filter(flt: DocFilter) -> DocFilter:
    """`flt` without the conditions that cannot be resolved (each reported once)."""
    kept = []
    for c in flt.conditions:
        try:
            DocFilter(conditions=(c,)).where()
        except MixscopeError as exc:
            show_warning(f"Ignoring a condition from the link: {exc}")
            continue
        kept.append(c)
    return flt if len(kept) == len(flt.conditions) else flt.with_(conditions=tuple(kept))


def without_map_conditions(flt: DocFilter) -> DocFilter:
    return flt.with_(conditions=tuple(c for c in flt.conditions if c.kind not in MAP_KINDS))


def describe_filter(flt: DocFilter) -> str:
    """One line for the shared filter, with selections and clusters in words."""
    if flt.is_empty():
        return "Showing the whole corpus."
    rest = without_map_conditions(flt)
    parts = [] if rest.is_empty() else [rest.describe()]
    cur = state.workspace().cursor()
    for c in flt.conditions:
        if c.kind == "selection":
            info = selection_info(cur, c.name)
            text = describe_map_condition(c, info["n_docs"] if info else None)
            parts.append(text if info else f"{text} (not stored here: matches nothing)")
        elif c.kind == "cluster":
            parts.append(describe_map_condition(c))
    return "Filtered: " + md("; ".join(parts)) + "."


def filter_links(flt: DocFilter) -> None:
    """Links to pages that use the shared filter, carrying it."""
    cols = st.columns(len(PAGES_WITH_FILTER))
    for col, (path, label, icon) in zip(cols, PAGES_WITH_FILTER):
        col.page_link(path, label=f"Open in {label}", icon=icon, query_params=flt.to_params())


def selection_panel(map_id: str, doc_ids: list[str], flt: DocFilter) -> None:
    """The documents picked with the lasso or box: their diversity, a peek at them, and the
    button that makes them a filter of every page."""
    n = len(doc_ids)
    st.markdown(f"**{n:,} documents selected** on the map")
    if n > MAX_SELECTION:
        st.warning(f"Select at most {MAX_SELECTION:,} documents to use them as a filter.")
        return
    try:
        div = map_data.selection_diversity(map_id, doc_ids)
    except MixscopeError as exc:  # e.g. the embeddings were removed
        show_warning(f"Diversity of the selection unavailable: {exc}")
        div = {"cluster_entropy": float("nan"), "cluster_entropy_norm": float("nan"),
               "mean_cosine_distance": float("nan")}  # fmt: skip
    c1, c2, c3 = st.columns(3)
    c1.metric("Selected documents", f"{n:,}")
    c2.metric(
        "Cluster entropy (normalised)",
        f"{div['cluster_entropy_norm']:.3f}",
        help=f"{div['cluster_entropy']:.3f} nats over the map's clusters; 1 = spread evenly.",
    )
    mcd = div["mean_cosine_distance"]
    c3.metric(
        "Mean pairwise cosine distance",
        "-" if pd.isna(mcd) else f"{mcd:.3f}",
        help="1 - mean cosine similarity over all pairs of selected documents.",
    )
    if st.button("Use selection as filter", key="map_use_selection", type="primary"):
        try:  # viewers' selections stay in this server process: they never write
            sel = (
                store_selection(
                    state.workspace(), doc_ids, origin={"map_id": map_id, "page": "map"},
                    timeout=10,
                )
                if can_edit()
                else keep_selection(doc_ids)
            )  # fmt: skip
        except MixscopeError as exc:
            show_error(f"Could not store the selection: {exc}")
            return
        apply_filter(with_condition(flt, selection_condition(sel.selection_id)))
    peek = state.cached(map_views.documents_brief, doc_ids=sorted(doc_ids)[:200])
    st.caption(
        f"The first {len(peek):,} selected documents (by id); pick one to read it."
        if n > len(peek) else "Pick a document to read it."
    )  # fmt: skip
    ev = st.dataframe(
        peek, hide_index=True, width="stretch", key="map_selection_table",
        on_select="rerun", selection_mode="single-row",
        column_config={"snippet": st.column_config.TextColumn(width="large")},
    )  # fmt: skip
    rows = ev.selection.rows if ev and ev.selection else []
    if rows:
        doc = str(peek.iloc[rows[0]]["doc_id"])
        if st.query_params.get("doc") != doc:
            st.query_params["doc"] = doc


def clusters_panel(map_id: str, clusters: pd.DataFrame, frame: pd.DataFrame, flt: DocFilter):
    """The clusters with sizes and terms; picking some makes them a filter."""
    shown = frame.groupby("cluster").size().rename("on the map now")
    table = clusters[["cluster", "label", "size"]].copy()
    table["terms"] = clusters["terms"].map(lambda t: ", ".join(list(t)))
    table = table.merge(shown, left_on="cluster", right_index=True, how="left").fillna(
        {"on the map now": 0}
    )
    table["on the map now"] = table["on the map now"].astype(int)
    st.dataframe(
        table.sort_values("cluster"), hide_index=True, width="stretch", key="map_clusters_table",
        column_config={"terms": st.column_config.TextColumn(width="large")},
    )  # fmt: skip
    options = table["cluster"].astype(int).tolist()
    labels = dict(zip(table["cluster"].astype(int), table["label"].astype(str)))
    c1, c2 = st.columns([3, 1])
    picked = c1.multiselect(
        "Clusters", options, key="map_pick_clusters",
        format_func=lambda c: f"{c} · {labels.get(c, '')}",
        placeholder="choose clusters to filter by",
    )  # fmt: skip
    c2.write("")
    if c2.button("Use clusters as filter", key="map_use_clusters", disabled=not picked):
        apply_filter(with_condition(flt, cluster_condition(map_id, picked)))


def diversity_panel(map_id: str, model_key: str, frame: pd.DataFrame) -> None:
    """Tabs: diversity per group, semantic near-duplicates, similarity to target texts."""
    t1, t2, t3 = st.tabs(["Diversity", "Near-duplicates", "Similarity to a target"])
    for tab, draw in ((t1, lambda: _diversity_tab(map_id)),
                      (t2, lambda: _duplicates_tab(map_id)),
                      (t3, lambda: _target_tab(model_key, frame))):  # fmt: skip
        with tab:
            try:
                draw()
            except MixscopeError as exc:  # e.g. the embeddings of the map were removed
                show_warning(exc)


def _diversity_tab(map_id: str) -> None:
    by = st.selectbox(
        "Per", ["source", "domain", "lang"], key="map_div_by",
        format_func={"source": "source", "domain": "domain", "lang": "language"}.get,
    )  # fmt: skip
    df = map_data.diversity(map_id, by).rename(
        columns={
            "group": by,
            "n": "documents on the map",
            "cluster_entropy": "cluster entropy (nats)",
            "cluster_entropy_norm": "cluster entropy (normalised)",
            "mean_cosine_distance": "mean pairwise cosine distance",
        }
    )
    st.dataframe(df, hide_index=True, width="stretch", key="map_div_table")
    st.caption(
        "Cluster entropy: -Σ p ln p over the shares of the map's clusters (normalised by ln K, "
        "K = clusters of the map; 1 = spread evenly). Mean pairwise cosine distance: 1 - mean "
        "cosine similarity over all pairs (exact). Computed over the documents on the map."
    )


def _duplicates_tab(map_id: str) -> None:
    thr = st.slider(
        "Cosine threshold", min_value=0.80, max_value=1.00, value=0.95, step=0.01,
        key="map_dup_threshold",
    )  # fmt: skip
    dups = map_data.near_duplicates(map_id, float(thr))
    n_dup = int((~dups["keep"]).sum())
    st.metric("Semantic near-duplicates", f"{n_dup:,} of {len(dups):,} documents")
    st.caption(
        "SemDeDup within each cluster: members ordered farthest from the cluster centre "
        "first; a document is a duplicate when its cosine to an earlier member is at least "
        "the threshold (it would be dropped, the earlier one kept)."
    )
    if n_dup:
        per = dups.groupby("cluster").agg(documents=("keep", "size"), duplicates=("keep", "sum"))
        per["duplicates"] = per["documents"] - per["duplicates"]
        per = per[per["duplicates"] > 0].sort_values("duplicates", ascending=False)
        st.dataframe(per.reset_index(), hide_index=True, key="map_dup_per_cluster")
        pairs = dups[~dups["keep"]].sort_values("similarity", ascending=False).head(100)
        ids = pairs["doc_id"].tolist() + pairs["duplicate_of"].tolist()
        brief = state.cached(map_views.documents_brief, doc_ids=sorted(set(ids)))
        snip = dict(zip(brief["doc_id"], brief["snippet"]))
        out = pd.DataFrame(
            {
                "doc_id": pairs["doc_id"],
                "duplicate_of": pairs["duplicate_of"],
                "cosine": pairs["similarity"].round(4),
                "text": pairs["doc_id"].map(snip),
                "text of duplicate_of": pairs["duplicate_of"].map(snip),
            }
        )
        st.dataframe(out, hide_index=True, width="stretch", key="map_dup_pairs")


def _target_tab(model_key: str, frame: pd.DataFrame) -> None:
    from analytics.mixture.builder import split_target_texts

    st.caption(
        "Paste or upload texts that stand for what you want to train for (documents separated "
        "by a blank line, or a .jsonl file with a 'text' field). They are embedded with the "
        "map's model; each group is compared by the cosine of the centroids and the squared "
        "maximum mean discrepancy (MMD², RBF kernel, median-heuristic bandwidth; ~0 = same "
        "distribution)."
    )
    up = st.file_uploader("Target texts", type=["txt", "md", "jsonl"], key="map_target_file")
    pasted = st.text_area("or paste them here", key="map_target_text", height=120)
    by = st.selectbox("Per", ["source", "domain", "lang"], key="map_target_by")
    texts: list[str] = []
    try:
        if up is not None:
            texts = split_target_texts(up.getvalue().decode("utf-8", "replace"), name=up.name)
        elif pasted.strip():
            texts = split_target_texts(pasted)
    except MixscopeError as exc:
        show_error(exc)
        return
    texts = texts[:500]
    if st.button("Compare", key="map_target_go", disabled=len(texts) < 2):
        st.session_state["map_target_request"] = (texts, by)
    req = st.session_state.get("map_target_request")
    if not req:
        st.caption("Give at least two texts, then Compare.")
        return
    try:
        res = map_data.target_similarity(model_key, req[0], req[1], frame["doc_id"].tolist())
    except MixscopeError as exc:
        show_error(exc)
        return
    res = res.sort_values("centroid_cosine", ascending=False)
    st.dataframe(
        res.rename(columns={"group": req[1], "n": "documents", "mmd2": "MMD²"}),
        hide_index=True, width="stretch", key="map_target_table",
    )  # fmt: skip
    st.caption(f"{len(req[0])} target texts; documents on the map only.")

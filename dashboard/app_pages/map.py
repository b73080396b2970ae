"""Map: the corpus projected to 2-D, coloured by any column, with clusters, a lasso that
becomes a filter of every page, and diversity and similarity measures."""

import json

import streamlit as st

from analytics import overview
from analytics.errors import MixscopeError
from analytics.maps import views as map_views
from dashboard import state
from dashboard.components import map_data, map_jobs, map_panels
from dashboard.components.docview import document_viewer
from dashboard.components.map_scatter import scatter_figure, selected_doc_ids
from dashboard.components.text import show_error

st.title("Map")
ws = state.workspace()
n_corpus = int(state.cached(overview.totals)["documents"])
maps = state.cached(map_views.published_maps)
if maps.empty:
    map_jobs.no_map_box(n_docs=n_corpus, has_embeddings=bool(map_views.embedding_sets(ws)))
    st.stop()

# ---- which map
ids = maps["map_id"].tolist()
if st.query_params.get("map") in ids and "map_pick" not in st.session_state:
    st.session_state["map_pick"] = st.query_params["map"]
row = maps.iloc[0]
if len(ids) > 1:
    describe = {
        r.map_id: f"{r.map_id[:8]} · {r.model_key} · {int(r.n_points):,} points · "
        f"{str(r.created_at)[:16]}"
        for r in maps.itertuples(index=False)
    }
    map_id = st.selectbox("Map", ids, key="map_pick", format_func=describe.get)
    row = maps[maps["map_id"] == map_id].iloc[0]
map_id = str(row["map_id"])
if len(ids) > 1 and st.query_params.get("map") != map_id:
    st.query_params["map"] = map_id
try:
    m = map_data.load_map(map_id)
except MixscopeError as exc:  # published, but its files were removed
    show_error(f"Map {map_id} cannot be read: {exc}")
    map_jobs.no_map_box(n_docs=n_corpus, has_embeddings=bool(map_views.embedding_sets(ws)))
    st.stop()
params = json.loads(row["params"]) if isinstance(row["params"], str) else dict(row["params"])
st.caption(
    f"**{map_data.coverage(m.n_points, n_corpus)}** · embeddings {m.model_key} · "
    f"UMAP n_neighbors {params.get('n_neighbors')}, min_dist {params.get('min_dist')} · "
    f"{params.get('cluster_method')} with {m.clusters['cluster'].ge(0).sum()} clusters · "
    f"seed {params.get('random_state')} · map {map_id}"
)

# ---- colour, filter
flt = map_panels.valid_filter(state.current_filter())
options = state.cached(map_views.colour_options)
if st.query_params.get("color") in options and "map_color" not in st.session_state:
    st.session_state["map_color"] = st.query_params["color"]
c1, c2, c3 = st.columns([2, 2, 1])
color = c1.selectbox("Colour by", list(options), key="map_color", format_func=options.get)
if st.query_params.get("color", "cluster") != color:
    st.query_params["color"] = color
only = False
if not flt.is_empty():
    only = c2.toggle("Only documents matching the filter", value=True, key="map_only_filter")
    c2.caption(map_panels.describe_filter(flt))
show_labels = c3.toggle("Cluster labels", value=True, key="map_labels")

frame = map_data.map_frame(map_id, color, flt if only else None)
drawn = map_data.draw_subset(frame)
if len(drawn) < len(frame):
    st.caption(f"Drawing a seeded subset of {len(drawn):,} of the {len(frame):,} points.")
elif only:
    st.caption(f"{len(frame):,} of the map's {m.n_points:,} documents match the filter.")

# ---- the scatter
fig = scatter_figure(
    drawn, color=color, color_label=options[color], clusters=m.clusters, show_labels=show_labels
)
event = st.plotly_chart(
    fig, key="map_scatter", on_select="rerun", selection_mode=("lasso", "box"), width="stretch"
)
picked = selected_doc_ids(event, drawn, fig)
if picked:
    map_panels.selection_panel(map_id, picked, flt)
else:
    st.caption(
        "Draw a lasso or a box on the map to select documents; the selection can become a "
        "filter of every page."
    )
if any(c.kind in map_panels.MAP_KINDS for c in flt.conditions):
    map_panels.filter_links(flt)
    if st.button("Remove the selection / cluster filter", key="map_clear_filter"):
        map_panels.apply_filter(map_panels.without_map_conditions(flt))

# ---- clusters, diversity
st.subheader("Clusters")
map_panels.clusters_panel(map_id, m.clusters, frame, flt)
st.subheader("Diversity and similarity")
map_panels.diversity_panel(map_id, m.model_key, frame)
map_jobs.new_map_box(model_key=m.model_key)
map_jobs.follow_jobs_box()

doc_id = st.query_params.get("doc")
if doc_id:
    document_viewer(doc_id)
    st.page_link(
        "app_pages/search.py",
        label="More like this",
        icon=":material/search:",
        query_params={"like": doc_id, "model": m.model_key},
    )

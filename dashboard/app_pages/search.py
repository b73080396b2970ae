"""Search: the documents nearest to a query (or to a document) in embedding space."""

import streamlit as st

from analytics.errors import MixscopeError
from analytics.maps import views as map_views
from analytics.maps.filtering import (
    keep_selection,
    selection_condition,
    store_selection,
    with_condition,
)
from dashboard import state
from dashboard.components import map_data
from dashboard.components.auth import can_edit
from dashboard.components.docview import document_viewer
from dashboard.components.map_panels import apply_filter, describe_filter, valid_filter
from dashboard.components.text import md, show_error

st.title("Search")
ws = state.workspace()
sets = map_views.embedding_sets(ws)
if not sets:
    st.info(
        "No embeddings yet: search compares a query with the documents' embeddings. Embed the "
        "corpus (or a sample) first, from a terminal or from the Map page."
    )
    st.code("mixscope embed --sample 5000\nmixscope map", language="bash")
    st.page_link("app_pages/map.py", label="Go to the Map page", icon=":material/scatter_plot:")
    st.stop()

# ---- which embedding set
keys = [s["model_key"] for s in sets]
if "search_model" not in st.session_state:
    wanted = st.query_params.get("model")
    st.session_state["search_model"] = wanted if wanted in keys else (
        map_views.default_model_key(ws) or keys[0]
    )  # fmt: skip
counts = {s["model_key"]: int(s["count"]) for s in sets}
model_key = st.selectbox(
    "Embeddings", keys, key="search_model",
    format_func=lambda k: f"{k} ({counts[k]:,} documents)",
)  # fmt: skip
man = map_data.model_of(model_key)
st.caption(
    f"Model {man.get('model', '?')} · {man.get('dim', '?')} dimensions · max_seq_length "
    f"{man.get('max_seq_length')} · cosine similarity, exact search over {counts[model_key]:,} "
    "embedded documents"
)

# ---- the query (or a document: "more like this")
like = st.query_params.get("like")
if "search_q" not in st.session_state:
    st.session_state["search_q"] = st.query_params.get("sq", "")
c1, c2 = st.columns([5, 1])
query = c1.text_input("Query", key="search_q", placeholder="words, a sentence, a question ...")
k = c2.number_input("Results", min_value=1, max_value=200, value=10, step=5, key="search_k")
if query.strip() and st.query_params.get("sq") != query.strip():
    st.query_params["sq"] = query.strip()
    if like:  # typing a new query leaves "more like this"
        del st.query_params["like"]
        like = None
flt = valid_filter(state.current_filter())
use_filter = False
if not flt.is_empty():
    use_filter = st.toggle("Only documents matching the filter", value=True, key="search_in_filter")
    st.caption(describe_filter(flt))


def results_table(query: str | None, like: str | None) -> None:
    """The nearest documents as a table; picking a row opens it below."""
    try:
        with st.spinner("Searching ..."):
            res = map_data.search_results(
                model_key, query=query, like=like, k=int(k), flt=flt if use_filter else None
            )
    except MixscopeError as exc:
        show_error(exc)
        return
    st.subheader(f"{len(res):,} nearest documents")
    event = st.dataframe(
        res[["rank", "score", "doc_id", "source", "lang", "n_tokens", "snippet"]],
        hide_index=True,
        width="stretch",
        # keyed by what was searched: a new table (e.g. "More like this") starts with no row
        # selected, instead of inheriting the old table's selected row number
        key=f"search_table:{'like:' + like if like else 'q:' + (query or '')}",
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "score": st.column_config.NumberColumn("cosine", format="%.3f"),
            "snippet": st.column_config.TextColumn(width="large"),
        },
    )
    if len(res) and st.button("Use these results as a filter", key="search_use_results"):
        try:  # viewers' selections stay in this server process: they never write
            sel = store_selection(
                ws, res["doc_id"].tolist(), origin={"page": "search", "model_key": model_key},
                timeout=10,
            ) if can_edit() else keep_selection(res["doc_id"].tolist())  # fmt: skip
        except MixscopeError as exc:
            show_error(f"Could not store the selection: {exc}")
        else:
            apply_filter(with_condition(flt, selection_condition(sel.selection_id)))
    picked = event.selection.rows if event and event.selection else []
    if picked:
        doc = str(res.iloc[picked[0]]["doc_id"])
        if st.query_params.get("doc") != doc:
            st.query_params["doc"] = doc


if like:
    st.markdown(f"Documents most like {md(like)}")
    if st.button("Back to the query", key="search_back"):
        del st.query_params["like"]
        st.rerun()
    results_table(None, like)
elif query.strip():
    results_table(query.strip(), None)
else:
    st.caption("Type a query; results are the documents whose embeddings are nearest to it.")

doc_id = st.query_params.get("doc")
if doc_id:
    if st.button("More like this", key="search_more_like", icon=":material/manage_search:"):
        st.query_params["like"] = doc_id
        st.rerun()
    document_viewer(doc_id, highlight=flt.text_contains)
elif like or query.strip():
    st.caption("Select a row to read the whole document, then find more like it.")

"""Explore: narrow the corpus with facets, page through documents, read any one in full."""

import streamlit as st

from analytics import overview
from dashboard import state
from dashboard.components import charts
from dashboard.components.docview import document_viewer
from dashboard.components.filterbar import filter_bar
from dashboard.components.numbers import totals_row
from dashboard.components.text import md
from dashboard.components.tokenizer_pick import tokenizer_picker

st.title("Explore")
flt = filter_bar()
tok, tok_rec = tokenizer_picker("ex_tok")
where, params = flt.where()
tot = state.cached(overview.totals, flt, tokenizer=tok)
all_tot = state.cached(overview.totals, tokenizer=tok)
totals_row(tot)
share = tot["tokens"] / all_tot["tokens"] if all_tot["tokens"] else 0
st.caption(
    f"{share:.1%} of the corpus's tokens (counted with `{tok_rec['source']}`) match: "
    f"{md(flt.describe())}."
)
if any(c.kind == "signal" for c in flt.conditions):
    st.page_link(
        "app_pages/signals.py",
        label="What each signal filter removes, per source",
        icon=":material/rule:",
        query_params=flt.to_params(),
    )
with st.expander("This filter as SQL (reused by other pages)"):
    st.code(f"SELECT * FROM documents WHERE {where}\n-- parameters: {params!r}", language="sql")

left, right = st.columns([1, 1])
with left:
    comp = state.cached(overview.composition, flt, by=["source"], tokenizer=tok)
    st.plotly_chart(
        charts.bar_by_group(comp, x="source", y="tokens", title="Tokens per source"),
        key="ex_by_source",
    )
with right:
    hist = state.cached(overview.length_histogram, flt, by="source")
    st.plotly_chart(charts.length_histogram_figure(hist), key="ex_lengths")

st.subheader("Documents")
n_docs = int(tot["documents"])
page_size = 50
n_pages = max(1, -(-n_docs // page_size))
c1, c2, _ = st.columns([1, 1, 3])
order = c1.selectbox(
    "Order by", ["doc_id", "n_tokens DESC", "n_tokens", "date", "source"], key="ex_order"
)
page = (
    c2.number_input(f"Page (of {n_pages:,})", min_value=1, max_value=n_pages, step=1, key="ex_page")
    - 1
)
rows = state.cached(
    overview.documents_page, flt, page=int(page), page_size=page_size, order_by=order
)
event = st.dataframe(
    rows,
    hide_index=True,
    width="stretch",
    key="ex_table",
    on_select="rerun",
    selection_mode="single-row",
    column_config={"snippet": st.column_config.TextColumn(width="large")},
)
picked = event.selection.rows if event and event.selection else []
if picked:
    st.query_params["doc"] = str(rows.iloc[picked[0]]["doc_id"])
doc_id = st.query_params.get("doc")
if doc_id:
    document_viewer(doc_id, highlight=flt.text_contains)
else:
    st.caption("Select a row to read the whole document.")

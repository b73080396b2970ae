"""Overview: what is in this corpus, at a glance, counted in real tokens."""

import streamlit as st

from analytics import overview
from dashboard import state
from dashboard.components import charts
from dashboard.components.filterbar import filter_caption
from dashboard.components.numbers import totals_row
from dashboard.components.tokenize_jobs import add_tokenizer_box
from dashboard.components.tokenizer_pick import tokenizer_picker

flt = state.current_filter()

st.title("Overview")
tok, tok_rec = tokenizer_picker("ov_tok")
st.caption(
    f"Tokens counted with `{tok_rec['source']}` "
    f"(sha256 `{(tok_rec['sha256'] or '?')[:12]}`). {filter_caption(flt)}"
)
totals_row(state.cached(overview.totals, flt, tokenizer=tok))
with st.expander("Count tokens in another tokenizer (your training tokenizer)"):
    add_tokenizer_box("ov_add_tok")

left, right = st.columns([3, 1])
with right:
    basis = st.radio("Basis", ["tokens", "documents", "bytes"], key="ov_basis", horizontal=True)
    kind = st.radio("Chart", ["treemap", "sunburst"], key="ov_kind", horizontal=True)
    order = st.multiselect(
        "Hierarchy",
        ["domain", "source", "lang"],
        default=["domain", "source", "lang"],
        key="ov_path",
    )
    order = order or ["source"]
    comp = state.cached(overview.composition, flt, by=order, tokenizer=tok)
    shares = comp.groupby(order[0], as_index=False)[basis].sum().sort_values(basis, ascending=False)
    shares["share"] = shares[basis] / shares[basis].sum()
    st.dataframe(
        shares,
        hide_index=True,
        width="stretch",
        column_config={"share": st.column_config.ProgressColumn(format="percent")},
    )
with left:
    st.subheader(f"Composition by {basis}")
    st.plotly_chart(
        charts.composition_figure(comp, basis=basis, kind=kind, path=order), key="ov_composition"
    )

st.subheader("Document length per source")
st.plotly_chart(
    charts.length_box_figure(state.cached(overview.length_quantiles, flt, by="source")),
    key="ov_lengths",
)

st.subheader("Dates")
dates = state.cached(overview.date_histogram, flt, by="source", unit="decade")
if dates.empty:
    st.info("No document under the current filter has a date.")
else:
    undated = state.cached(overview.totals, flt)["documents"] - int(dates["documents"].sum())
    st.caption(f"Documents per decade by source; {undated:,} documents have no date.")
    st.plotly_chart(charts.date_figure(dates, basis="documents"), key="ov_dates")

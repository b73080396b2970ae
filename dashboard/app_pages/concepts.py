"""Concepts: how often each concept occurs per source, its long tail, and accuracy vs frequency."""

import hashlib
import io

import pandas as pd
import streamlit as st

from analytics.demo import demo_concepts
from analytics.signals.concepts import (
    FREQUENCY_BASES,
    ConceptError,
    concept_counts,
    default_rare_threshold,
    fit_concept_accuracy,
    parse_concepts,
    rank_frequency,
    rare_concepts,
    read_accuracy_csv,
)
from dashboard import state
from dashboard.components import signal_charts as charts
from dashboard.components.text import show_error

st.title("Concepts")
st.caption(
    "Whole-token, case-insensitive occurrences over the whole corpus: text and concepts are "
    "lower-cased and split into words of letters and digits and single punctuation marks, so "
    '`cat` counts in "Cat!" but not in "category", and `C++` counts "C++" but not every "c". '
    "With a per-concept accuracy table, accuracy is fitted against log10(frequency), the "
    "frequency being the number of documents that contain the concept (as in Udandarao et "
    "al., 2024, \"No 'Zero-Shot' Without Exponential Data\") or, optionally, its occurrences."
)

left, right = st.columns(2)
pasted = left.text_area(
    "Concepts, one per line", key="cc_text", height=220, placeholder="dog\nnew york\nmitochondria"
)
upload = right.file_uploader("…or upload a text file (one concept per line)", key="cc_file")
acc_file = right.file_uploader("Per-concept accuracy CSV (optional)", key="cc_acc_file")
with st.expander("Accuracy table: paste it or name its columns"):
    acc_text = st.text_area(
        "CSV with a header row", key="cc_acc_text", placeholder="concept,accuracy\ndog,0.91"
    )
    c1, c2, c3 = st.columns(3)
    concept_col = c1.text_input("Concept column", "concept", key="cc_concept_col")
    accuracy_col = c2.text_input("Accuracy column", "accuracy", key="cc_accuracy_col")
    basis = c3.radio(
        "Frequency",
        list(FREQUENCY_BASES),
        key="cc_freq_basis",
        horizontal=True,
        help="documents: how many documents contain the concept (the paper's measure); "
        "occurrences: how many times it occurs in all.",
    )

if st.button("Count concepts", type="primary", key="cc_run"):
    try:
        if upload is not None:
            st.session_state["cc_concepts"] = parse_concepts(upload.getvalue(), source=upload.name)
        else:
            st.session_state["cc_concepts"] = parse_concepts(pasted, source="the pasted list")
    except ConceptError as exc:
        st.session_state.pop("cc_concepts", None)
        show_error(exc)

concepts = st.session_state.get("cc_concepts")
if not concepts and not pasted.strip() and upload is None and state.is_demo():
    concepts = demo_concepts()
    if concepts:
        st.caption(
            f"Showing the demo's shipped list of {len(concepts)} concepts "
            "(data/demo_concepts.txt); paste or upload your own to replace it."
        )
if not concepts:
    st.info("Paste or upload concepts, then press **Count concepts**.")
    st.stop()

counts = state.cached(concept_counts, concepts=concepts)  # once per (snapshot, list)
ranked = rank_frequency(counts)
wide = counts.pivot_table(index="concept", columns="source", values="count", aggfunc="sum")
docs = counts.groupby("concept")["n_docs"].sum()
table = ranked.set_index("concept").join(docs.rename("documents")).join(wide).reset_index()

st.subheader(f"Counts for {len(ranked):,} concepts")
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    key="cc_table",
    column_config={"share": st.column_config.NumberColumn(format="percent")},
)
n_zero = int((ranked["count"] == 0).sum())
st.plotly_chart(charts.rank_frequency_figure(ranked), key="cc_rankfreq")
if n_zero:
    st.caption(
        f"{n_zero:,} concept{' never occurs' if n_zero == 1 else 's never occur'} "
        "and cannot appear on log axes."
    )

st.subheader("Accuracy vs frequency")
acc_df = None
try:
    if acc_file is not None:
        acc_df = read_accuracy_csv(
            io.BytesIO(acc_file.getvalue()), concept_col=concept_col, accuracy_col=accuracy_col
        )
    elif acc_text.strip():
        acc_df = read_accuracy_csv(
            io.StringIO(acc_text), concept_col=concept_col, accuracy_col=accuracy_col
        )
    if acc_df is not None:
        fit = fit_concept_accuracy(
            counts, acc_df, concept_col=concept_col, accuracy_col=accuracy_col, frequency=basis
        )
except ConceptError as exc:
    show_error(exc)
    acc_df = None
if acc_df is None:
    st.caption("Give an accuracy table (upload or paste) to fit accuracy against log frequency.")
else:
    m1, m2, m3 = st.columns(3)
    m1.metric("Slope (accuracy per 10x frequency)", f"{fit.slope:.4f}")
    m2.metric("R²", f"{fit.r2:.3f}")
    m3.metric("Concepts in the fit", f"{fit.n:,}")
    st.plotly_chart(
        charts.fit_figure(fit.data, slope=fit.slope, intercept=fit.intercept, r2=fit.r2),
        key="cc_fit",
    )
    notes = []
    if fit.excluded_zero:
        notes.append(f"{len(fit.excluded_zero)} with frequency 0 excluded (no logarithm)")
    if fit.unmatched:
        notes.append(f"{len(fit.unmatched)} accuracy rows not in the concept list")
    st.caption(
        f"accuracy = {fit.slope:.4f} · log10(frequency) + {fit.intercept:.4f}, frequency = "
        + ("documents containing the concept" if fit.basis == "documents" else "occurrences")
        + (f"; {'; '.join(notes)}." if notes else ".")
    )

st.subheader("Rare concepts")
rare_default = default_rare_threshold(counts)
# a new list starts from its own default threshold (a kept widget would keep the old list's)
list_key = hashlib.sha256("\n".join(concepts).encode()).hexdigest()[:12]
max_count = st.number_input(
    "At most this many occurrences",
    min_value=0,
    value=rare_default,
    step=1,
    key=f"cc_rare_max:{list_key}",
    help=f"Default {rare_default:,}: the lower quartile of this list's counts (its long tail).",
)
rare = rare_concepts(counts, max_count=int(max_count))
st.dataframe(
    pd.DataFrame({"rare concept": rare}),
    hide_index=True,
    width="stretch",
    key="cc_rare",
)
st.download_button(
    f"Download {len(rare):,} rare concepts",
    "".join(f"{c}\n" for c in rare),
    file_name="rare_concepts.txt",
    mime="text/plain",
    key="cc_rare_dl",
    disabled=not rare,
)

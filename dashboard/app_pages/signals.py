"""Signals: what is computed, and what each filter removes from each source, in tokens."""

import datetime as dt

import streamlit as st

from analytics.signals import duplicate_rates, list_signals, views
from analytics.signals.filtering import (
    DEFAULT_QUALITY,
    condition_impact,
    condition_presets,
    describe_condition,
    signal_conditions,
)
from dashboard import state
from dashboard.components import signal_charts as charts
from dashboard.components.signal_external import external_signals_section, throughput_table
from dashboard.components.signal_jobs import run_signals_box
from dashboard.components.tokenizer_pick import tokenizer_picker

st.title("Signals")
flt = state.current_filter()
population = flt.with_(conditions=tuple(c for c in flt.conditions if c.kind != "signal"))
computed = state.cached(views.computed_signals)
have = set(computed["name"])

if not have:
    st.info(
        "No signals are computed for this workspace yet. Score every document (quality rules, "
        "language, toxicity, compression ratio, exact and near duplicates, URL domains):"
    )
    run_signals_box("sg_run", pick=True)
    external_signals_section()
    st.stop()

st.subheader("Coverage")
st.caption(
    "Each signal is stored per (document, version); a version is the code version plus a hash "
    "of the parameters, so new parameters never overwrite old results. The current version "
    "(used by filters) is the one computed last."
)
listing = state.cached(list_signals)
current = dict(zip(computed["name"], computed["version"], strict=True))
listing = listing.assign(
    current=[current.get(n) == v for n, v in zip(listing["name"], listing["version"], strict=True)]
)
st.dataframe(
    listing[
        ["name", "version", "n_docs", "coverage", "current", "is_default", "computed_at", "params"]
    ],
    hide_index=True,
    width="stretch",
    key="sg_coverage",
    column_config={
        "coverage": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1),
        "n_docs": st.column_config.NumberColumn("scored documents", format="localized"),
        "is_default": st.column_config.CheckboxColumn("default params"),
    },
)
with st.expander("Compute signals for documents not yet scored"):
    run_signals_box("sg_run", pick=True)
external_signals_section()

st.subheader("Throughput and projected cost")
throughput_table()

tab_impact, tab_scatter, tab_age = st.tabs(["Filter impact", "Quality vs toxicity", "Data age"])

with tab_impact:
    presets = condition_presets(have)
    from_url = {describe_condition(c): c for c in signal_conditions(flt)}
    options = {**presets, **from_url}
    default = list(from_url) or [describe_condition(c) for c in DEFAULT_QUALITY if c.name in have]
    picked = st.multiselect(
        "Filters (from Explore's Signals panel, or the default quality rules)",
        list(options),
        default=[d for d in default if d in options],
        key="sg_filters",
    )
    basis = st.radio(
        "Basis",
        ["tokens", "docs"],
        horizontal=True,
        key="sg_basis",
        format_func=lambda b: "tokens" if b == "tokens" else "documents",
    )
    tok, tok_rec = tokenizer_picker("sg_tok")
    st.caption(
        f"Tokens counted with `{tok_rec['source']}`. "
        f"Population: {population.describe()}. Each filter alone, then all together (a document "
        "is removed when any filter removes it). Unscored documents count as removed, as in "
        "Explore."
    )
    if picked:
        impact = state.cached(
            condition_impact,
            population,
            conditions=[options[p].token() for p in picked],
            tokenizer=tok,
        )
        st.plotly_chart(
            charts.impact_figure(impact[impact["source"] != "(all sources)"], basis=basis),
            key="sg_impact_chart",
        )
        st.dataframe(
            impact,
            hide_index=True,
            width="stretch",
            key="sg_impact_table",
            column_config={
                "docs_removed_frac": st.column_config.NumberColumn(
                    "docs removed %", format="percent"
                ),
                "tokens_removed_frac": st.column_config.NumberColumn(
                    "tokens removed %", format="percent"
                ),
                "tokens": st.column_config.NumberColumn(format="localized"),
                "tokens_removed": st.column_config.NumberColumn(format="localized"),
            },
        )
    else:
        st.info("Pick at least one filter.")
    if have & {"exact_dup", "near_dup"}:
        dups = state.cached(duplicate_rates)
        st.plotly_chart(charts.duplicate_figure(dups), key="sg_dup_chart")
        st.dataframe(
            dups,
            hide_index=True,
            width="stretch",
            key="sg_dups",
            column_config={
                "exact_dup_rate": st.column_config.NumberColumn(
                    "exact duplicate rate", format="percent"
                ),
                "near_dup_rate": st.column_config.NumberColumn(
                    "near duplicate rate", format="percent"
                ),
            },
        )
        st.caption(
            "Duplicate rate = share of a source's documents that are not their duplicate "
            "cluster's representative (what deduplication would drop), over the whole corpus."
        )
        lsh = state.cached(views.near_dup_lsh)
        if lsh is not None:
            st.caption(
                f"Near duplicates: MinHash ({lsh['num_perm']} permutations) with LSH of "
                f"{lsh['bands']} bands x {lsh['rows']} rows, chosen for the threshold "
                f"{lsh['threshold']:g}. The threshold is not a cut-off: a pair of Jaccard "
                f"similarity J becomes a candidate with probability 1 - (1 - J^{lsh['rows']})"
                f"^{lsh['bands']}, half the time at J = {lsh['j50']:.2f} (the S-curve's "
                f"midpoint), {lsh['p_threshold']:.0%} at J = {lsh['threshold']:g}, "
                f"{lsh['p_hi']:.0%} at J = {lsh['hi']:g}, and {lsh['p_mean']:.0%} on average "
                f"for pairs with J between {lsh['threshold']:g} and {lsh['hi']:g}."
            )

with tab_scatter:
    stats = state.cached(views.column_stats)
    numeric = stats.loc[stats["n"] > 0, "column"].tolist()
    if len(numeric) < 1:
        st.info("Compute a numeric signal first (e.g. `mixscope signals run --only toxicity`).")
    else:
        c1, c2, c3 = st.columns(3)
        x_default = "compression_ratio" if "compression_ratio" in numeric else numeric[0]
        y_default = "toxicity_max" if "toxicity_max" in numeric else numeric[-1]
        x = c1.selectbox("x (quality)", numeric, index=numeric.index(x_default), key="sg_x")
        y = c2.selectbox("y (toxicity)", numeric, index=numeric.index(y_default), key="sg_y")
        n = c3.select_slider("Points", [500, 1000, 2000, 5000, 10000], value=2000, key="sg_n")
        sample, total = state.cached(views.signal_sample, population, x=x, y=y, n=n)
        st.caption(
            f"Sample of {len(sample):,} of {total:,} documents with both values "
            f"({population.describe()}); the sample is a fixed hash of the document id, so the "
            "same points come back every time. Compression ratio = compressed bytes / raw "
            "UTF-8 bytes (lower = more redundant)."
        )
        st.plotly_chart(charts.scatter_figure(sample, x=x, y=y), key="sg_scatter")

with tab_age:
    cutoff = st.date_input(
        "Evaluation cutoff date",
        value=dt.date(2024, 1, 1),
        min_value=dt.date(1, 1, 1),
        key="sg_cutoff",
    )
    age = state.cached(views.data_age, population, cutoff=cutoff.isoformat())
    st.plotly_chart(charts.age_figure(age[age["source"] != "(all sources)"]), key="sg_age_chart")
    shares = ("share_before", "share_after", "share_undated")
    st.dataframe(
        # a source with no dated token has no before/after share: say so instead of "None"
        age.style.format(
            {
                **{c: "{:,}" for c in age.columns if c.startswith("tokens") or c == "docs"},
                **{c: "{:.1%}" for c in shares},
            },
            na_rep="no dated tokens",
        ),
        hide_index=True,
        width="stretch",
        key="sg_age",
    )
    st.caption(
        "Shares before/after are of each source's dated tokens; a document dated on the cutoff "
        "counts as after. Undated documents cannot be placed and are shown apart "
        '("no dated tokens" where a source has none).'
    )

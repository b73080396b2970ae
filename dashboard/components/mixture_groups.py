"""What a mixture mixes over: the shared filter from Explore, the grouping, the group counts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics.errors import MixscopeError
from analytics.filters import DocFilter
from analytics.mixture import MixtureError
from analytics.mixture import builder as mb
from dashboard import state
from dashboard.components.mixture_plan import plain

OTHER = "__other__"


def filter_banner() -> DocFilter:
    """The shared filter (from the URL, written by Explore), shown with a link back."""
    flt = state.current_filter()
    try:
        flt.where()
    except MixscopeError as exc:  # e.g. a condition whose capability is not installed
        st.warning(f"Ignoring the filter's extra conditions: {plain(exc)}")
        flt = flt.with_(conditions=())
    c1, c2 = st.columns([4, 1])
    c1.markdown(
        "**Mixing over:** "
        + ("the whole corpus" if flt.is_empty() else f"documents where {plain(flt.describe())}")
    )
    c2.page_link(
        "app_pages/explore.py",
        label="Change in Explore",
        icon=":material/filter_alt:",
        query_params=flt.to_params() or None,
    )
    return flt


def _options() -> list[mb.GroupOption]:
    return state.cached(mb.group_options)


def group_picker() -> str:
    """Selectbox of what to mix over (plus a quality bucket width or any expression)."""
    options = _options()
    labels = {o.spec: o.label for o in options}
    labels[OTHER] = "Any column or expression…"
    current = st.session_state.get("mx_group_by")
    if current is not None and current not in labels:
        st.session_state["mx_group_expr"] = current
        st.session_state["mx_group_by"] = OTHER
    c1, c2 = st.columns([2, 3])
    choice = c1.selectbox(
        "Mix over",
        list(labels),
        format_func=labels.get,
        key="mx_group_by",
        help="Each distinct value becomes one group of the mixture.",
    )
    kinds = {o.spec: o.kind for o in options}
    if choice == OTHER:
        expr = c2.text_input(
            "Column or expression",
            key="mx_group_expr",
            placeholder="e.g. year(date), json(metadata, license), bin(n_tokens, 500)",
            help="A column of documents, a derived value (cluster, a signal column) or "
            "year(col), month(col), lower(col), json(col, key), bin(col, width).",
        )
        return expr.strip() or "source"
    if kinds.get(choice) == "quality":
        key = f"mx_bin_{choice}"
        if key not in st.session_state:
            st.session_state[key] = state.cached(mb.suggest_bin_width, column=choice)
        width = c2.number_input(
            f"Bucket width of {choice}", min_value=0.0, format="%g", key=key,
            help="Quality buckets: floor(score / width) * width.",
        )  # fmt: skip
        return f"bin({choice}, {float(width)!r})" if width > 0 else choice
    return choice


def group_counts(
    flt: DocFilter, group_by: str, *, tokenizer: str | None = None
) -> pd.DataFrame | None:
    """Per-group documents and tokens (in `tokenizer`, default the ingest one) under the
    filter (cached per snapshot); None on error."""
    try:
        table = "documents"
        if tokenizer:
            from analytics.tokenize import documents_table

            table = state.cached(documents_table, name=tokenizer)
        counts = state.cached(mb.group_table, flt, group_by=group_by, table=table)
    except (MixtureError, MixscopeError) as exc:
        st.error(plain(exc))
        return None
    if counts.empty:
        st.warning("The filter selects no documents: nothing to mix.")
        return None
    if len(counts) > 200:
        st.error(
            f"{plain(group_by)} has {len(counts):,} distinct values: too many groups for a mixture "
            "(at most 200 here). Pick a coarser grouping or a bucket width."
        )
        return None
    return counts

"""Mixtures: compose a mixture of the (filtered) corpus, see its plan, save, export, materialise."""

import streamlit as st

from analytics.mixture import builder as mb
from dashboard import state
from dashboard.components import (
    mixture_dsir,
    mixture_export,
    mixture_groups,
    mixture_phase,
    mixture_saved,
    mixture_strategies,
    mixture_swarm,
)
from dashboard.components.tokenizer_pick import tokenizer_picker

st.title("Mixtures")
tok, tok_rec = tokenizer_picker("mx_tok")
st.caption(
    f"Weights are shares of each phase's token budget, counted in tokens of "
    f"`{tok_rec['source']}` (recorded in the manifest). "
    "Epochs = target tokens / available tokens."
)
opened = mixture_saved.open_from_url()  # ?mix=NAME@VERSION fills the editor once

flt = mixture_groups.filter_banner()
c1, c2 = st.columns([5, 1])
with c1:
    group_by = mixture_groups.group_picker()
st.session_state.setdefault("mx_seed", 0)
seed = c2.number_input("Seed", min_value=0, step=1, key="mx_seed", help="Recorded in the manifest.")
counts = mixture_groups.group_counts(flt, group_by, tokenizer=tok)

draft = None
if counts is not None:
    st.caption(
        f"{len(counts)} groups by `{group_by}`: {int(counts['documents'].sum()):,} documents, "
        f"{int(counts['tokens'].sum()):,} tokens."
    )
    quality = state.cached(mb.quality_columns)
    target = mixture_strategies.target_panel(flt, group_by, counts)
    phases = mixture_phase.phases_editor(
        counts, flt=flt, group_by=group_by, target=target, quality=quality
    )
    if phases is not None:
        draft = mixture_saved.Draft(
            flt=flt, group_by=group_by, phases=phases, seed=int(seed), tokenizer=tok
        )

mixture_dsir.dsir_panel(flt)

st.divider()
mixture_saved.save_panel(draft)
mixture_export.export_panel(draft)
saved_ref = st.session_state.get("mx_loaded_ref") if opened or st.query_params.get("mix") else None
mixture_export.materialize_panel(saved_ref)
st.divider()
mixture_saved.library_panel(opened)
mixture_dsir.runs_panel(opened[0] if opened else None)
st.divider()
mixture_swarm.swarm_panel(
    ", ".join(map(str, counts["group"].head(30))) if counts is not None else ""
)

"""Mixtures page: DSIR (select documents like a target, as a job) and the runs trained on a
saved version (lineage), with a link to compare them on the Geometry page."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from analytics.errors import MixscopeError
from analytics.filters import DocFilter
from analytics.mixture import lineage
from analytics.uploads import save_upload
from dashboard import state
from dashboard.components.auth import require_editor
from dashboard.components.jobs import follow, submit
from dashboard.components.mixture_plan import plain

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,127}$")


def dsir_panel(flt: DocFilter) -> None:
    """Target file (upload or server path), budget, seed -> queue `mix create --strategy dsir`."""
    with st.expander("Select documents like a target (DSIR)", expanded=False):
        st.caption(
            "DSIR (Xie et al. 2023) selects *documents*, not group weights: every document of "
            "the filter gets a log importance weight from hashed unigram+bigram counts (the "
            "`data-selection` package's features: 10,000 buckets, SHA-256), and documents are "
            "drawn without replacement by Gumbel top-k until their tokens reach the budget. "
            "The selection is saved as a mixture (one phase, or appended as a phase of another "
            "mixture) that records the target file's SHA-256, the seed and the buckets; "
            "`mixscope mix reproduce` re-draws it. Runs as a job."
        )
        if not require_editor("run DSIR"):
            return
        up = st.file_uploader(
            "Target texts (.jsonl with a text field)",
            type=["jsonl", "ndjson", "json"],
            key="mx_dsir_file",
        )
        path = st.text_input(
            "…or a target file on the server (.jsonl, or .txt with blank lines between texts)",
            key="mx_dsir_path",
        )
        c1, c2, c3, c4 = st.columns(4)
        name = c1.text_input("Save as", key="mx_dsir_name", placeholder="e.g. python-like")
        budget = c2.number_input(
            "Token budget", min_value=1, value=1_000_000, step=100_000, key="mx_dsir_budget"
        )
        seed = c3.number_input("Seed", min_value=0, value=0, step=1, key="mx_dsir_seed")
        min_words = c4.number_input(
            "Min words per document", min_value=0, value=100, step=10, key="mx_dsir_min_words",
            help="The reference's min_example_length: shorter documents are never selected.",
        )  # fmt: skip
        refs = [f"{r.name}@{r.version}" for r in _saved().itertuples(index=False)]
        append = st.selectbox(
            "Append as a phase of", ["(a mixture of its own)", *refs], key="mx_dsir_append"
        )
        if st.button("Run DSIR and save", key="mx_dsir_go", type="primary"):
            try:
                if not _NAME.match(name.strip()):
                    raise MixscopeError("Save as: 1-128 letters, digits, space, '_', '.', '-'")
                if up is not None:
                    target = str(save_upload(state.workspace().path, up.name, up))
                elif path.strip():
                    target = path.strip()
                else:
                    raise MixscopeError("Upload a target file or give its path on the server.")
            except MixscopeError as exc:
                st.error(plain(exc))
                return
            args = [
                "mix", "create", name.strip(), "--strategy", "dsir", "--target", target,
                "--budget", str(int(budget)), "--seed", str(int(seed)),
                "--min-words", str(int(min_words)),
            ]  # fmt: skip
            if not flt.is_empty():
                args += ["--where-from-url", urlencode(flt.to_params())]
            if append in refs:
                args += ["--append-to", append, "--phase-name", "dsir"]
            job = submit("mix-dsir", args)
            st.session_state.setdefault("mx_dsir_jobs", []).append(job.id)
            st.success(f"Queued job {job.id}: DSIR selection saved as {name.strip()} when done.")
        if st.session_state.get("mx_dsir_jobs"):
            follow(st.session_state["mx_dsir_jobs"][-3:])


def _saved() -> pd.DataFrame:
    from dashboard.components.mixture_saved import saved_list

    return state.cached(saved_list)


def runs_panel(ref: str | None) -> None:
    """The runs and checkpoints trained on the opened version, and where to compare them."""
    st.subheader("Runs trained on this mixture")
    if ref is None:
        st.caption("Open a saved version to see the runs trained on it.")
        return
    name, version = lineage.parse_ref(ref)
    runs = state.cached(lineage.runs_of, name=name, version=version)
    if runs.empty:
        st.caption(
            plain(
                f"No run linked to {ref} yet. Register one with `mixscope checkpoints add RUN "
                f"PATH --mixture {ref}` (or `mixscope checkpoints link RUN --mixture {ref}`)."
            )
        )
        return
    st.dataframe(
        runs[["run", "kind", "checkpoints", "checkpoint_path", "note", "linked_at"]],
        hide_index=True,
        width="stretch",
        key="mx_runs_table",
    )
    st.page_link(
        "app_pages/geometry.py",
        label=f"Compare the runs of {ref} on the Geometry page",
        icon=":material/compare:",
        query_params={"mixa": ref},
    )

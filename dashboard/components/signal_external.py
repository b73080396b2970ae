"""Signals page parts: throughput / projected cost per signal, and starting `signals import`
and `signals classify` jobs."""

from __future__ import annotations

import shlex

import streamlit as st

from analytics.signals.external import PROJECT_DOCS, throughput
from analytics.signals.importer import FORMATS, REDUCERS
from dashboard import state
from dashboard.components.auth import can_edit
from dashboard.components.jobs import submit
from dashboard.components.signal_jobs import follow_signal_jobs

_JOBS = "signal_external_jobs"


def import_command(path: str, fmt: str, name: str, key: str = "", reduce: str = "weighted",
                   strict: bool = False) -> list[str]:  # fmt: skip
    """CLI arguments of `signals import` (empty fields left to their defaults)."""
    args = ["signals", "import", path, "--format", fmt]
    if name:
        args += ["--name", name]
    if key:
        args += ["--key", key]
    if reduce != "weighted":
        args += ["--reduce", reduce]
    if strict:
        args.append("--strict")
    return args


def classify_command(model: str, name: str, device: str = "cpu") -> list[str]:
    return ["signals", "classify", "--model", model, "--name", name, "--device", device]


def _start(args: list[str], key: str) -> None:
    st.code("mixscope " + shlex.join(args), language="bash")
    if not can_edit():
        st.caption("Viewers cannot start jobs; ask an editor or run the command.")
        return
    if st.button("Start (queues a job)", key=key, type="primary"):
        job = submit("signals", args)
        st.session_state.setdefault(_JOBS, []).append(job.id)
        st.success(f"Queued job {job.id}; progress below and on the Jobs page.")


def throughput_table() -> None:
    """Docs/s of each signal's last run and the projected compute for this workspace and
    for 100M documents."""
    df = state.cached(throughput)
    if df.empty:
        st.caption("No run has been timed yet: throughput appears after `signals run`, "
                   "`signals classify` or `signals import`.")  # fmt: skip
        return
    st.dataframe(
        df[
            [
                "signal",
                "device",
                "docs_per_s",
                "docs_per_cpu_s",
                "hours_workspace",
                "hours_100m",
                "docs",
                "n_jobs",
                "measured_at",
            ]
        ],  # fmt: skip
        hide_index=True,
        width="stretch",
        key="sg_throughput",
        column_config={
            "docs_per_s": st.column_config.NumberColumn("docs/s", format="%.1f"),
            "docs_per_cpu_s": st.column_config.NumberColumn("docs/s per process", format="%.1f"),
            "hours_workspace": st.column_config.NumberColumn(
                "hours for this workspace", format="%.4f"
            ),
            "hours_100m": st.column_config.NumberColumn(
                f"hours for {PROJECT_DOCS / 1e6:.0f}M docs", format="%.1f"
            ),
            "docs": st.column_config.NumberColumn("docs in the measured run", format="localized"),
        },
    )
    st.caption(
        "Measured on each signal's last run: docs/s = documents / seconds of compute; per "
        "process divides by the worker processes. Hours = documents / (docs/s per process) / "
        "3600: CPU-hours on this machine's cores (device-hours for a classifier on a GPU; for "
        "an import, hours of reading)."
    )


def import_box() -> None:
    """Import a file of per-document values (Dolma attributes, RedPajama-V2, datatrove,
    Parquet) as a signal."""
    c1, c2 = st.columns([3, 1])
    path = c1.text_input("File or glob (local, s3://, gs://, hf://, https://)", key="sg_imp_path")
    fmt = c2.selectbox("Format", FORMATS, key="sg_imp_format")
    c3, c4, c5 = st.columns(3)
    name = c3.text_input("Signal name", key="sg_imp_name", placeholder="from the file name")
    key = c4.text_input("Key field(s)", key="sg_imp_key", placeholder="id (doc_id for parquet)")
    reduce = c5.selectbox("Spans -> value", REDUCERS, key="sg_imp_reduce")
    strict = st.checkbox("Refuse if any key matches no document", key="sg_imp_strict")
    if path.strip():
        _start(import_command(path.strip(), fmt, name.strip(), key.strip(), reduce, strict),
               "sg_imp_go")  # fmt: skip
    else:
        st.caption("Enter a path to see the command.")


def classify_box() -> None:
    """Score every document with a classifier model (Hugging Face or fastText)."""
    c1, c2, c3 = st.columns([3, 1, 1])
    model = c1.text_input(
        "Model: Hugging Face classifier directory or hub id, or fastText .bin/.ftz",
        key="sg_clf_model",
    )
    name = c2.text_input("Signal name", key="sg_clf_name", value="edu")
    device = c3.selectbox("Device", ["cpu", "cuda", "auto"], key="sg_clf_device")
    if model.strip() and name.strip():
        _start(classify_command(model.strip(), name.strip(), device), "sg_clf_go")
    else:
        st.caption("Enter a model and a name to see the command.")


def external_signals_section() -> None:
    with st.expander("Import signals computed elsewhere (Dolma, datatrove, RedPajama-V2, Parquet)"):
        import_box()
    with st.expander("Classifier signal (FineWeb-Edu style; Hugging Face or fastText model)"):
        classify_box()
    if st.session_state.get(_JOBS):
        follow_signal_jobs(st.session_state[_JOBS][-3:])

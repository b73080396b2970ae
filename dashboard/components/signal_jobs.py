"""Starting `mixscope signals run` from a page (editors) and following it live."""

from __future__ import annotations

import streamlit as st

from analytics.signals import signal_names
from dashboard.components.auth import can_edit
from dashboard.components.jobs import progress_line, store, submit

_JOBS = "signal_jobs"


def run_command(only: list[str] | None = None) -> list[str]:
    """The CLI arguments of a signals run (all signals when `only` is empty)."""
    args = ["signals", "run"]
    for name in only or []:
        args += ["--only", name]
    return args


def run_signals_box(key: str, *, pick: bool = False) -> None:
    """The command to run, and for editors a button that queues it as a job.

    With `pick`, a multiselect chooses the signals (key `<key>_only`; empty = all).
    """
    only: list[str] = []
    if pick:
        only = st.multiselect(
            "Signals to compute", signal_names(), key=f"{key}_only", placeholder="all signals"
        )
    st.code("mixscope " + " ".join(run_command(only)), language="bash")
    if can_edit():
        if st.button("Compute now (queues a job)", key=key, type="primary"):
            job = submit("signals", run_command(only))
            st.session_state.setdefault(_JOBS, []).append(job.id)
            st.success(f"Queued job {job.id}; progress below and on the Jobs page.")
    else:
        st.caption("Viewers cannot start jobs; ask an editor or run the command.")
    if st.session_state.get(_JOBS):
        follow_signal_jobs(st.session_state[_JOBS][-3:])


@st.fragment(run_every=2)
def follow_signal_jobs(job_ids: list[str]) -> None:
    """Live progress; reruns the whole page once when a followed job has finished, so the
    new signals show up without a manual reload."""
    s = store()
    jobs = [s.refresh(s.get(j)) for j in job_ids]
    for job in jobs:
        progress_line(job)
    seen = st.session_state.setdefault("signal_jobs_seen", [])
    finished = [j.id for j in jobs if j.status in ("done", "failed", "cancelled")]
    fresh = [j for j in finished if j not in seen]
    if fresh:
        seen.extend(fresh)
        st.rerun(scope="app")

"""Starting `mixscope signals run` from a page (editors) and following it live."""

from __future__ import annotations

import streamlit as st

from analytics.signals import signal_names
from dashboard.components.jobs import follow_and_refresh, queue_button

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
    queue_button(
        "Compute now (queues a job)", "signals", run_command(only), jobs_key=_JOBS, key=key
    )
    if st.session_state.get(_JOBS):
        follow_signal_jobs(st.session_state[_JOBS][-3:])


def follow_signal_jobs(job_ids: list[str]) -> None:
    """Live progress; reruns the whole page once when a followed job has finished, so the
    new signals show up without a manual reload."""
    follow_and_refresh(job_ids, "signal_jobs_seen")

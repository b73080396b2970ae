"""Geometry jobs on the page: queue the demo series (editors), follow running jobs live."""

from __future__ import annotations

import streamlit as st

from analytics.geometry.demo import pending_demo_job
from dashboard.components.auth import can_edit
from dashboard.components.jobs import follow_and_refresh, store, submit

_JOBS = "geometry_jobs"
GEOMETRY_COMMANDS = ("demo-series", "geometry", "checkpoints")


def active_jobs() -> list[str]:
    """Ids of queued/running geometry jobs of this workspace (from anyone, e.g. the one
    `mixscope demo` queued), plus the ones this session started."""
    s = store()
    ids = [
        j.id
        for j in s.list(limit=50)
        if j.args[:1] and j.args[0] in GEOMETRY_COMMANDS and j.status in ("queued", "running")
    ]
    mine = st.session_state.get(_JOBS, [])[-3:]
    return list(dict.fromkeys(ids + mine))


def demo_series_box(key: str = "geo_demo_queue") -> None:
    """The command that builds the demo series, and for editors a button that queues it."""
    st.code("mixscope demo-series          # train demo-lm, add minilm, compute both", "bash")
    if not can_edit():
        st.caption("Viewers cannot start jobs; ask an editor or run the command.")
        return
    pending = pending_demo_job(store())
    if pending is not None:
        st.caption(f"The demo series job {pending.id} is {pending.status}; progress at the top.")
        return
    if st.button("Build the demo series now (queues a job)", key=key, type="primary"):
        job = submit("geometry", ["demo-series"])
        st.session_state.setdefault(_JOBS, []).append(job.id)
        st.success(f"Queued job {job.id}; progress below and on the Jobs page.")


def compute_run_box(runs: list[str]) -> None:
    """For runs registered but not computed: the command, and for editors a button each
    that queues `mixscope geometry RUN` with the default settings."""
    for run in runs:
        st.code(f"mixscope geometry {run}", "bash")
        if can_edit() and st.button(
            f"Compute {run} now (queues a job)", key=f"geo_compute_{run}", type="primary"
        ):
            job = submit("geometry", ["geometry", run])
            st.session_state.setdefault(_JOBS, []).append(job.id)
            st.success(f"Queued job {job.id}; progress at the top and on the Jobs page.")


def follow_geometry_jobs(job_ids: list[str]) -> None:
    """Live progress; reruns the page once when a followed job finishes, so new results
    appear without a reload."""
    follow_and_refresh(job_ids, "geometry_jobs_seen")

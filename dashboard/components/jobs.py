"""Submitting jobs from a page and following their progress."""

from __future__ import annotations

import streamlit as st

from analytics.jobs import Job, JobStore
from dashboard import state
from dashboard.components.auth import acting_user
from dashboard.components.text import md, show_error, show_info, show_success


def store() -> JobStore:
    return JobStore(state.workspace().path)


def submit(kind: str, args: list[str], *, after: list[str] | None = None) -> Job:
    """Queue a CLI job for this workspace (after the jobs `after`, if any) and make sure a
    worker runs it."""
    s = store()
    job = s.submit(kind, args, submitted_by=acting_user(), after=after)
    s.ensure_worker()
    st.session_state.setdefault("my_jobs", []).append(job.id)
    return job


def progress_line(job: Job) -> None:
    p = job.progress or {}
    total = p.get("total") or 0
    done = p.get("done") or 0
    label = f"{job.command} — {job.status}"
    if p:
        label += f" · {p.get('stage')} {done:,}/{total:,}" if total else f" · {p.get('stage')}"
    if job.status == "running" and total:
        st.progress(min(1.0, done / total), text=md(label))
    elif job.status == "failed":
        show_error(f"{label}: {job.error}")
    elif job.status == "done":
        show_success(label)
    else:
        show_info(label)


@st.fragment(run_every=2)
def follow(job_ids: list[str]) -> None:
    """Live progress of the given jobs (refreshes every 2 s while any is unfinished)."""
    s = store()
    for jid in job_ids:
        progress_line(s.refresh(s.get(jid)))


def queue_button(label: str, kind: str, args: list[str], *, jobs_key: str, key: str) -> None:
    """For editors: a button that queues `mixscope ARGS` as a job and remembers its id under
    `jobs_key` in the session; viewers are told why there is no button."""
    from dashboard.components.auth import can_edit

    if not can_edit():
        st.caption("Viewers cannot start jobs; ask an editor or run the command.")
        return
    if st.button(label, key=key, type="primary"):
        job = submit(kind, args)
        st.session_state.setdefault(jobs_key, []).append(job.id)
        st.success(f"Queued job {job.id}; progress below and on the Jobs page.")


@st.fragment(run_every=2)
def follow_and_refresh(job_ids: list[str], seen_key: str, *, when: str = "each") -> None:
    """Live progress of the jobs; reruns the whole page once when a followed job finishes
    (``when="each"``) or once they all have (``"all"``), so what they made shows up
    without a reload."""
    s = store()
    jobs = [s.refresh(s.get(j)) for j in job_ids]
    for job in jobs:
        progress_line(job)
    seen = st.session_state.setdefault(seen_key, [])
    ended = [j.id for j in jobs if j.status in ("done", "failed", "cancelled")]
    fresh = [j for j in ended if j not in seen]
    if when == "all":
        fresh = fresh[-1:] if len(ended) == len(jobs) and job_ids[-1] in fresh else []
    if fresh:
        seen.extend(fresh)
        st.rerun(scope="app")

"""Adding a tokenizer's counts from a page (editors): queues `mixscope tokenize` as a job and
follows its progress (shards, documents, docs/s, ETA)."""

from __future__ import annotations

import streamlit as st

from analytics.errors import MixscopeError
from analytics.tokenize import check_name, default_name
from dashboard.components.jobs import follow_and_refresh, queue_button

_JOBS = "tokenize_jobs"


def tokenize_command(source: str, name: str) -> list[str]:
    return ["tokenize", "--tokenizer", source, "--name", name]


def add_tokenizer_box(key: str) -> None:
    """Source + name inputs, the command, and for editors a button that queues it."""
    source = st.text_input(
        "Tokenizer (a directory with tokenizer.json, a tokenizer.json, a .gguf file or a hub id)",
        key=f"{key}_src",
    ).strip()
    name = st.text_input("Name", key=f"{key}_name", placeholder="from the file or id").strip()
    if not source:
        st.caption("Counts in your training tokenizer make budgets exact; see the README.")
        return
    try:
        name = check_name(name or default_name(source))
    except MixscopeError as exc:
        st.error(str(exc))
        return
    args = tokenize_command(source, name)
    st.code("mixscope " + " ".join(args), language="bash")
    queue_button("Count now (queues a job)", "tokenize", args, jobs_key=_JOBS, key=f"{key}_go")
    if st.session_state.get(_JOBS):
        follow_tokenize_jobs(st.session_state[_JOBS][-3:])


def follow_tokenize_jobs(job_ids: list[str]) -> None:
    """Live progress; reruns the page once a followed job has finished (the new tokenizer
    then shows up in the picker)."""
    follow_and_refresh(job_ids, "tokenize_jobs_seen")

"""Jobs: queued, running, finished and failed jobs with progress, logs and cancel."""

import pandas as pd
import streamlit as st

from analytics.engine import progress_columns
from dashboard.components.auth import can_edit
from dashboard.components.jobs import store
from dashboard.components.text import show_error

st.title("Jobs")
st.caption(
    "Every heavy job (ingest, signals, contamination, embeddings, maps, geometry, materialise) "
    "runs through "
    "one queue with one writer. Readers keep working while a job writes; a job's result "
    "appears when it finishes. Start jobs from the CLI (`mixscope ...`) or from the pages."
)


@st.fragment(run_every=2)
def job_table() -> None:
    jobs = store().list()
    if not jobs:
        st.info("No jobs yet. They appear here when started from a page or queued by the CLI.")
        return
    rows = [
        {
            "id": j.id,
            "status": j.status,
            "command": j.command,
            "stage": (j.progress or {}).get("stage"),
            "progress": ((j.progress or {}).get("done", 0) / j.progress["total"])
            if (j.progress or {}).get("total")
            else None,
            **progress_columns(j.progress or {}),
            "created": j.created,
            "finished": j.finished,
            "error": j.error,
        }
        for j in jobs
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        key="jobs_table",
        column_config={"progress": st.column_config.ProgressColumn(format="percent")},
    )


job_table()
jobs = store().list()
if jobs:
    choice = st.selectbox(
        "Job",
        [j.id for j in jobs],
        key="jobs_pick",
        format_func=lambda i: next(f"{j.id} · {j.status} · {j.command}" for j in jobs if j.id == i),
    )
    job = store().get(choice)
    if job.status in ("queued", "running") and can_edit():
        if st.button("Cancel job", key="jobs_cancel"):
            if can_edit():  # checked again when acting: a viewer's session never cancels
                store().cancel(choice)
                st.rerun()
            else:
                st.error("Viewers cannot cancel jobs; sign in with an editor token.")
    if job.error:
        show_error(job.error)
    st.code(store().log(choice) or "(no output yet)", language=None)

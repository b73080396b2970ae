"""Add data: upload files or name server paths; ingestion runs as a queued job."""

import streamlit as st

from analytics.errors import MixscopeError
from analytics.paths import check_input_paths
from analytics.uploads import MAX_UPLOAD_BYTES, save_upload
from dashboard import state
from dashboard.components.auth import require_editor
from dashboard.components.jobs import follow, submit
from dashboard.components.text import show_error

st.title("Add data")
st.caption(
    "Ingestion is atomic and idempotent: re-adding the same documents adds nothing, and a "
    "file with an error adds nothing at all. It runs as a job (see Jobs); the other pages "
    "keep working and show the new documents when it finishes."
)
if require_editor("add data"):
    source = st.text_input("Source name", key="add_source", placeholder="e.g. web-crawl-2024")
    tab_upload, tab_path = st.tabs(["Upload files", "Files on the server"])
    with tab_upload:
        files = st.file_uploader(
            f"JSONL (.gz/.zst), Parquet or CSV, up to {MAX_UPLOAD_BYTES // 1024**2} MB each",
            accept_multiple_files=True,
            key="add_files",
        )
    with tab_path:
        paths = st.text_area(
            "Paths or globs, one per line", key="add_paths", placeholder="/data/shards/*.jsonl.zst"
        )
    with st.expander("Field names (when they differ from text / id / date / url)"):
        c1, c2, c3, c4 = st.columns(4)
        text_field = c1.text_input("Text field", "text", key="add_text_field")
        id_field = c2.text_input("Id field", "", key="add_id_field")
        date_field = c3.text_input("Date field", "", key="add_date_field")
        url_field = c4.text_input("URL field", "", key="add_url_field")
    if st.button("Ingest", type="primary", key="add_go"):
        try:
            if not source.strip():
                raise MixscopeError("give a source name.")
            targets = check_input_paths(paths.splitlines())  # existing files or globs
            for f in files or []:
                targets.append(str(save_upload(state.workspace().path, f.name, f)))
            if not targets:
                raise MixscopeError("upload a file or name a path on the server.")
            args = ["ingest", "--source", source.strip(), "--text-field", text_field]
            for flag, value in (
                ("--id-field", id_field),
                ("--date-field", date_field),
                ("--url-field", url_field),
            ):
                if value.strip():
                    args += [flag, value.strip()]
            job = submit("ingest", [*args, "--", *targets])  # paths after `--`: never options
            st.success(f"Queued job {job.id}.")
        except MixscopeError as exc:
            show_error(exc)
    if st.session_state.get("my_jobs"):
        st.subheader("Your jobs")
        follow(st.session_state["my_jobs"][-5:])

"""Export: the manifest as YAML/JSON, each training framework's config, and materialisation of
a saved version as a queued job (editors) with live progress."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

import streamlit as st

from analytics.errors import MixscopeError
from analytics.mixture import MixtureError
from analytics.mixture import builder as mb
from analytics.paths import EXPORTS_DIR, check_output_dir
from dashboard import state
from dashboard.components.auth import require_editor
from dashboard.components.jobs import follow, submit
from dashboard.components.mixture_plan import plain
from dashboard.components.mixture_saved import Draft


def _zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in sorted(files.items()):
            z.writestr(name, text)
    return buf.getvalue()


def export_panel(draft: Draft | None) -> None:
    """Downloads of the current draft (prepared on a click) and materialisation."""
    st.subheader("Export")
    c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
    template = c1.text_input(
        "Where trainers find each group's data ({group} = the group id)",
        value="{group}",
        key="mx_locator_template",
        help="Written as each group's locator (Megatron prefix, OLMo-core path, stream ...).",
    )
    seq = c2.number_input(
        "Sequence length", 0, 1_000_000, 0, key="mx_seq_length",
        help="Megatron: adds --train-samples (0 = leave out).",
    )  # fmt: skip
    step = c3.number_input(
        "Tokens per step", 0, 10**12, 0, key="mx_tokens_per_step",
        help="nanotron: where each phase's stage starts (needed with several phases).",
    )  # fmt: skip
    c4.write("")
    settings = f"|{template}|{seq}|{step}"
    if c4.button("Prepare downloads", key="mx_prepare", disabled=draft is None):
        try:
            files, notes = mb.export_bundle(
                draft.manifest(),
                locator_template=template,
                seq_length=int(seq) or None,
                tokens_per_step=int(step) or None,
                strict=False,
            )
            st.session_state["mx_exports"] = {
                "key": draft.key() + settings,
                "files": files,
                "notes": notes,
            }
        except (MixtureError, MixscopeError) as exc:
            st.error(plain(exc))
    got = st.session_state.get("mx_exports")
    if got and draft is not None and got["key"] != draft.key() + settings:
        st.info("The mixture changed since the downloads were prepared: prepare them again.")
    elif got:
        files = got["files"]
        cols = st.columns(4)
        for i, (fmt, fs) in enumerate(files.items()):
            if len(fs) == 1:
                (name, text), = fs.items()  # fmt: skip
                data, fname, mime = text, name, "text/plain"
            else:
                data, fname, mime = _zip(fs), f"{fmt}.zip", "application/zip"
            cols[i % 4].download_button(
                fmt, data, file_name=fname, mime=mime, key=f"mx_dl_{fmt}",
                icon=":material/download:",
            )  # fmt: skip
        everything = {f"{fmt}/{n}": t for fmt, fs in files.items() for n, t in fs.items()}
        st.download_button(
            "Everything (zip)", _zip(everything), "mixture-exports.zip", "application/zip",
            key="mx_dl_all", type="primary",
        )  # fmt: skip
        with st.expander("Weight bases and notes"):
            st.code("\n".join(got["notes"]) or "no notes", language=None)
    else:
        st.caption("Press **Prepare downloads** to build the manifest and every format.")


def materialize_panel(saved_ref: str | None) -> None:
    """Queue `mixscope mix materialize` for a saved version (editors)."""
    st.subheader("Materialise")
    st.caption(
        "Writes the selected documents (repeated for epochs > 1, deterministic from the seed) "
        "as JSONL or Parquet shards plus a sample list, under the workspace's exports/ folder. "
        "Runs as a job; the page keeps working."
    )
    if saved_ref is None:
        st.caption("Save the mixture first: a saved version is what gets materialised.")
        return
    if not require_editor("materialise mixtures"):
        return
    c1, c2, c3 = st.columns([1, 1, 2])
    fmt = c1.selectbox("Format", ["jsonl", "parquet"], key="mx_mat_fmt")
    rows = c2.number_input("Rows per shard", 1, 10_000_000, 100_000, step=10_000, key="mx_mat_rows")
    c3.write("")
    if c3.button(f"Materialise {saved_ref}", key="mx_mat_go", type="primary"):
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", saved_ref.replace("@", "-v")).strip("._")
        ws_path = state.workspace().path
        try:  # the same check as `mix materialize --out` (and the job's CLI runs it again)
            out = check_output_dir(
                ws_path / EXPORTS_DIR / f"{safe}-{fmt}-{stamp}", workspaces=[ws_path]
            )
        except MixscopeError as exc:
            st.error(plain(exc))
            return
        job = submit(
            "mix-materialize",
            ["mix", "materialize", saved_ref, "--out", str(out), "--format", fmt,
             "--shard-rows", str(int(rows))],
        )  # fmt: skip
        st.session_state.setdefault("mx_jobs", []).append(job.id)
        st.success(f"Queued job {job.id}: writing to {out}")
    if st.session_state.get("mx_jobs"):
        follow(st.session_state["mx_jobs"][-3:])

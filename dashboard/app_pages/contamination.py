"""Contamination: documents that share a word n-gram (13 by default) with an evaluation set."""

import datetime as dt
import io
import json
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from analytics import overview
from analytics.errors import MixscopeError
from analytics.signals.contamination import (
    find_contamination,
    read_eval_texts,
    result_from_dict,
    span_parts,
)
from analytics.uploads import save_upload
from dashboard import state
from dashboard.components import signal_charts as charts
from dashboard.components.auth import can_edit
from dashboard.components.jobs import follow, submit
from dashboard.components.text import show_error, show_warning

INLINE_MAX_DOCS = 200_000  # above this, the scan runs as a job (mixscope contamination)
ws = state.workspace()
REPORTS = ws.path / "contamination"

st.title("Contamination")
st.caption(
    "Every word n-gram of every evaluation text (lower-cased words of letters and digits) is "
    "looked up in every document, GPT-3 style; a document sharing at least one is flagged and "
    "the shared spans are shown. Evaluation texts shorter than n words can never match."
)

left, right = st.columns([3, 2])
upload = left.file_uploader(
    "Evaluation set: JSONL or CSV", type=["jsonl", "json", "csv"], key="ct_file"
)
pasted = left.text_area("…or paste evaluation texts, one per line", key="ct_text", height=140)
field = right.text_input("Text field / column", "text", key="ct_field")
n = int(right.number_input("n (words per n-gram)", min_value=1, max_value=64, value=13, key="ct_n"))
n_docs = int(state.cached(overview.totals)["documents"])


def eval_texts() -> list[str]:
    """The evaluation texts from the upload (validated by the library) or the text area."""
    if upload is not None:
        suffix = Path(upload.name).suffix.lower()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"eval{suffix}"
            path.write_bytes(upload.getvalue())
            try:
                return read_eval_texts(path, field=field)
            except MixscopeError as exc:
                raise MixscopeError(str(exc).replace(str(path), upload.name)) from None
    texts = [t.strip() for t in pasted.splitlines() if t.strip()]
    if not texts:
        raise MixscopeError("upload an evaluation file or paste at least one text.")
    return texts


b1, b2 = right.columns(2)
inline_ok = n_docs <= INLINE_MAX_DOCS
if b1.button("Scan now", type="primary", key="ct_run", disabled=not inline_ok):
    try:
        st.session_state["ct_inline"] = {"texts": eval_texts(), "n": n}
        st.session_state["ct_show"] = "this session's scan"
    except MixscopeError as exc:
        show_error(exc)
if not inline_ok:
    right.caption(f"{n_docs:,} documents: run the scan as a job.")
if can_edit() and b2.button("Run as a job", key="ct_job"):
    try:
        texts = eval_texts()
        if upload is not None:
            src = save_upload(ws.path, upload.name, upload)
        else:
            lines = "".join(json.dumps({"text": t}) + "\n" for t in texts)
            src = save_upload(ws.path, "pasted.jsonl", io.BytesIO(lines.encode()))
            field = "text"
        REPORTS.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        report = REPORTS / f"{stamp}-{Path(src).stem}-n{n}.json"
        job = submit(
            "contamination",
            ["contamination", str(src), "--text-field", field, "--n", str(n),
             "--report", str(report)],
        )  # fmt: skip
        st.session_state.setdefault("ct_jobs", []).append(job.id)
        st.success(f"Queued job {job.id}; its report appears under 'Show' when it finishes.")
    except MixscopeError as exc:
        show_error(exc)
if st.session_state.get("ct_jobs"):
    follow(st.session_state["ct_jobs"][-3:])

reports = sorted(REPORTS.glob("*.json"), reverse=True) if REPORTS.is_dir() else []
choices = (["this session's scan"] if "ct_inline" in st.session_state else []) + [
    p.name for p in reports
]
if not choices:
    st.info("Upload or paste an evaluation set, then **Scan now** (or run it as a job).")
    st.stop()
if st.session_state.get("ct_show") not in choices:
    st.session_state["ct_show"] = choices[0]
shown = st.selectbox("Show", choices, key="ct_show")
eval_list: list[str] | None = None
if shown == "this session's scan":
    inline = st.session_state["ct_inline"]
    eval_list = inline["texts"]
    result = state.cached(find_contamination, eval_texts=eval_list, n=inline["n"])
else:
    try:
        result = result_from_dict(json.loads((REPORTS / shown).read_text()))
    except (OSError, ValueError) as exc:
        show_error(f"{shown}: cannot read this report ({exc}).")
        st.stop()

m = st.columns(4)
m[0].metric("Evaluation texts", f"{result.eval_texts:,}")
m[1].metric(f"Shorter than {result.n} words", f"{result.eval_too_short:,}")
m[2].metric("Eval texts found in the corpus", f"{len(result.eval_matched):,}")
m[3].metric("Flagged documents", f"{len(result.flagged):,}")

per_source = result.per_source.sort_values(
    ["flagged_docs", "source"], ascending=[False, True], ignore_index=True
)
st.plotly_chart(charts.contamination_figure(per_source), key="ct_chart")
st.dataframe(
    per_source,
    hide_index=True,
    width="stretch",
    key="ct_per_source",
    column_config={"flagged_frac": st.column_config.NumberColumn("flagged %", format="percent")},
)

flagged = result.flagged
if flagged.empty:
    st.success(f"No document shares a {result.n}-gram with the evaluation set.")
    st.stop()

st.subheader("Flagged documents")
st.download_button(
    f"Download {len(flagged):,} flagged ids",
    "".join(f"{i}\n" for i in flagged["doc_id"]),
    file_name="flagged_ids.txt",
    mime="text/plain",
    key="ct_dl",
)
st.dataframe(
    flagged[["doc_id", "source", "n_matched_ngrams", "matched_chars"]],
    hide_index=True,
    width="stretch",
    key="ct_flagged",
)
doc_id = st.selectbox("Inspect a flagged document", flagged["doc_id"].tolist(), key="ct_doc")
row = flagged[flagged["doc_id"] == doc_id].iloc[0]
doc = overview.document(ws.cursor(), doc_id)
if doc is None:
    show_warning(f"{doc_id!r} is no longer in the workspace.")
    st.stop()
text = doc["text"]
# the match is shown as plain text in a table cell (never rendered as HTML or Markdown)
parts = [span_parts(text, s) for s in row["spans"]]
spans = pd.DataFrame(
    {
        "chars": [f"{s}–{e}" for s, e in row["spans"]],
        "before": [p[0] for p in parts],
        "match": [p[1] for p in parts],
        "after": [p[2] for p in parts],
    }
)
st.dataframe(
    spans.style.set_properties(subset=["match"], **{"background-color": "#ffe08a"}),
    hide_index=True,
    width="stretch",
    key="ct_spans",
    column_config={
        "before": st.column_config.TextColumn(width="medium"),
        "match": st.column_config.TextColumn("matching span", width="large"),
        "after": st.column_config.TextColumn(width="medium"),
    },
)
if eval_list is not None:
    with st.expander("Matching evaluation texts"):
        for i in row["eval_ids"][:10]:
            st.caption(f"evaluation text #{i + 1}")
            st.code(eval_list[i], language=None, wrap_lines=True)
with st.expander("Whole document (plain text)"):
    st.code(text, language=None, wrap_lines=True, height=400)

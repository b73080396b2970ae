"""The document viewer: full text (always shown as plain text, never rendered) + metadata +
the document's own signal scores."""

from __future__ import annotations

import html
import json

import streamlit as st

from analytics import overview
from analytics.signals import views as signal_views
from dashboard import state
from dashboard.components.text import show_warning


def document_viewer(doc_id: str, *, highlight: str | None = None) -> None:
    """Show one document. `highlight`: a term (the "Text contains" filter) whose occurrences
    are listed with their context, the term marked; every piece of text is HTML-escaped, so
    neither the document nor the term is ever rendered as Markdown or HTML."""
    cur = state.workspace().cursor()
    doc = overview.document(cur, doc_id)
    if doc is None:
        show_warning(f"No document with id {doc_id!r} in this workspace.")
        return
    st.subheader("Document")
    st.text(doc_id)
    text = doc.pop("text")
    meta_raw = doc.pop("metadata")
    left, right = st.columns([3, 1])
    with left:
        if highlight:
            _term_matches(text, highlight)
        st.code(text, language=None, wrap_lines=True, height=480)
    with right:
        st.json(overview.json_fields(doc))
        if isinstance(meta_raw, str) and meta_raw:
            st.caption("metadata")
            try:
                st.json(json.loads(meta_raw))
            except (TypeError, ValueError):
                st.code(str(meta_raw), language=None)
        _signals(cur, doc_id)


def _term_matches(text: str, term: str) -> None:
    found = overview.term_matches(text, term)
    if found.empty:
        st.caption("The filter's text term does not occur in this document.")
        return
    more = "+" if len(found) >= 50 else ""
    st.caption(f"{len(found)}{more} occurrence(s) of the filter's text term, in context:")
    lines = [
        f"…{html.escape(r.before)}<mark>{html.escape(r.match)}</mark>{html.escape(r.after)}…"
        for r in found.itertuples()
    ]
    st.html(
        '<div style="white-space: pre-wrap; font-family: monospace; font-size: 0.85em; '
        'max-height: 12em; overflow-y: auto">' + "<br>".join(lines) + "</div>"
    )


def _signals(cur, doc_id: str) -> None:
    """The document's own signal scores, as plain text (st.text) and a table."""
    values = signal_views.document_signals(cur, doc_id)
    st.caption("signals (current version of each)")
    if values.empty:
        st.text("No signal has scored this document (mixscope signals).")
        return
    s = signal_views.document_signal_summary(values)
    lines = []
    for r in s["filters"].itertuples():
        if r.passed is None:
            lines.append(f"{r.signal}: not decided")
        elif r.passed:
            lines.append(f"{r.signal}: pass")
        else:
            lines.append(f"{r.signal}: FAIL ({r.failing_rule})")
    if s["language"] is not None:
        lang, conf = s["language"]
        lines.append(
            f"language: {lang}" + (f" (confidence {conf:.2f})" if conf is not None else "")
        )
    for r in s["duplicates"].itertuples():
        if r.size is None or r.size <= 1:
            lines.append(f"{r.signal}: no duplicate")
        else:
            kept = "kept copy" if r.is_representative else f"copy of {r.representative}"
            lines.append(f"{r.signal}: cluster {r.cluster}, {r.size} documents ({kept})")
    st.text("\n".join(lines))
    nums = s["numbers"].assign(value=lambda d: d["value"].map(_plain))
    st.dataframe(nums, hide_index=True, width="stretch", key=f"doc_signals:{doc_id}")


def _plain(v) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)

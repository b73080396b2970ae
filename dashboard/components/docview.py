"""The document viewer: full text (always shown as plain text, never rendered) + metadata."""

from __future__ import annotations

import json

import streamlit as st

from analytics import overview
from dashboard import state
from dashboard.components.text import md, show_warning


def document_viewer(doc_id: str) -> None:
    doc = overview.document(state.workspace().cursor(), doc_id)
    if doc is None:
        show_warning(f"No document with id {doc_id!r} in this workspace.")
        return
    st.subheader(f"Document {md(doc_id)}")
    text = doc.pop("text")
    meta_raw = doc.pop("metadata")
    left, right = st.columns([3, 1])
    with left:
        st.code(text, language=None, wrap_lines=True, height=480)
    with right:
        fields = {k: (str(v) if v is not None else None) for k, v in doc.items()}
        st.json(fields)
        if isinstance(meta_raw, str) and meta_raw:
            st.caption("metadata")
            try:
                st.json(json.loads(meta_raw))
            except (TypeError, ValueError):
                st.code(str(meta_raw), language=None)

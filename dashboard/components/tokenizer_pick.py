"""Pick the tokenizer budgets are counted in (the workspace's tokenizers, `mixscope tokenize`)."""

from __future__ import annotations

import streamlit as st

from analytics.tokenize import INGEST, list_tokenizers
from dashboard import state


def _label(rec: dict) -> str:
    if rec["name"] == INGEST:
        return f"{rec['source']} (ingest)"
    return f"{rec['name']} ({rec['kind']}, sha256 {(rec['sha256'] or '?')[:12]})"


def tokenizer_picker(key: str) -> tuple[str | None, dict]:
    """A select box of the tokenizers whose counts cover every document (shown only when
    there is more than the ingest tokenizer); the choice is kept in the URL as `tok=`.
    Returns (name to pass to analytics, or None for the ingest tokenizer; its record)."""
    toks = state.cached(list_tokenizers)
    n_docs = toks[0]["documents"]
    usable = [t for t in toks if t["documents"] >= n_docs]
    by_name = {t["name"]: t for t in usable}
    if len(usable) < 2:
        return None, toks[0]
    if key not in st.session_state:
        want = st.query_params.get("tok", INGEST)
        st.session_state[key] = want if want in by_name else INGEST
    partial = len(toks) - len(usable)
    name = st.selectbox(
        "Count tokens in",
        list(by_name),
        key=key,
        format_func=lambda n: _label(by_name[n]),
        help="Tokenizers added with `mixscope tokenize`; budgets and token totals use the one "
        "picked here"
        + (f" ({partial} more still being counted are not offered)." if partial else "."),
    )
    if name == INGEST:
        if "tok" in st.query_params:
            del st.query_params["tok"]
    elif st.query_params.get("tok") != name:
        st.query_params["tok"] = name
    return (None if name == INGEST else name), by_name[name]

"""Selectors whose choice lives in the URL, so a Geometry view can be shared by link."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st


def url_select(
    label: str,
    options: Sequence[Any],
    *,
    key: str,
    param: str,
    default: Any = None,
    format_func: Callable[[Any], str] = str,
    container: Any = None,
    help: str | None = None,
) -> Any:
    """A selectbox (widget ``key``) initialised from ``st.query_params[param]`` (matched
    on ``str(option)``), else ``default``, else the first option; the choice is written
    back to the URL. Returns the chosen option (None when there are no options)."""
    opts = list(options)
    if not opts:
        return None
    by_text = {str(o): o for o in opts}
    want = st.query_params.get(param)
    if key in st.session_state and st.session_state[key] not in opts:
        del st.session_state[key]  # options changed under it (another run picked)
    if key not in st.session_state:
        if want in by_text:
            st.session_state[key] = by_text[want]
        elif default is not None and default in opts:
            st.session_state[key] = default
    box = container or st
    value = box.selectbox(label, opts, key=key, format_func=format_func, help=help)
    if st.query_params.get(param) != str(value):
        st.query_params[param] = str(value)
    return value

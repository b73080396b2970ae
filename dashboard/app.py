"""The mixscope dashboard: `streamlit run dashboard/app.py` (or `mixscope serve`)."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run` puts dashboard/ first on sys.path
    sys.path.insert(0, str(ROOT))

from analytics.errors import MixscopeError  # noqa: E402
from dashboard import state  # noqa: E402

st.set_page_config(page_title="mixscope", page_icon=":material/query_stats:", layout="wide")

try:
    ws = state.workspace()
except MixscopeError as exc:
    st.error(str(exc))
    st.stop()

nav = st.navigation(
    {
        "Corpus": [
            st.Page(
                "app_pages/overview.py",
                title="Overview",
                icon=":material/donut_large:",
                default=True,
                url_path="overview",
            ),
            st.Page(
                "app_pages/explore.py",
                title="Explore",
                icon=":material/filter_alt:",
                url_path="explore",
            ),
            st.Page("app_pages/sql.py", title="SQL", icon=":material/terminal:", url_path="sql"),
        ],
        "Workspace": [
            st.Page(
                "app_pages/jobs.py", title="Jobs", icon=":material/work_history:", url_path="jobs"
            ),
        ],
    }
)
with st.sidebar:
    st.caption(f"workspace `{ws.path}`")
nav.run()

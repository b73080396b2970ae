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
from dashboard.components.auth import gate, restore_deep_link  # noqa: E402

PAGES_DIR = Path(__file__).parent / "app_pages"
# (section, file stem, title, material icon). A page is listed once its file exists, so each
# capability adds its screen by adding one file here and one in app_pages/.
PAGES = [
    ("Corpus", "overview", "Overview", "donut_large"),
    ("Corpus", "explore", "Explore", "filter_alt"),
    ("Corpus", "signals", "Signals", "rule"),
    ("Corpus", "concepts", "Concepts", "tag"),
    ("Corpus", "contamination", "Contamination", "policy"),
    ("Corpus", "map", "Map", "scatter_plot"),
    ("Corpus", "search", "Search", "search"),
    ("Corpus", "sql", "SQL", "terminal"),
    ("Checkpoints", "geometry", "Geometry", "ssid_chart"),
    ("Mixtures", "mixtures", "Mixtures", "tune"),
    ("Workspace", "add_data", "Add data", "upload_file"),
    ("Workspace", "jobs", "Jobs", "work_history"),
]

st.set_page_config(page_title="mixscope", page_icon=":material/query_stats:", layout="wide")

role = gate()
try:
    ws = state.workspace()
except MixscopeError as exc:
    st.error(str(exc))
    st.stop()

DEFAULT = "overview"
sections: dict[str, list] = {}
for section, stem, title, icon in PAGES:
    if (PAGES_DIR / f"{stem}.py").exists():
        sections.setdefault(section, []).append(
            st.Page(
                f"app_pages/{stem}.py",
                title=title,
                icon=f":material/{icon}:",
                # the default page is served at "/"; its own name stays free for the alias
                url_path="home" if stem == DEFAULT else stem,
                default=stem == DEFAULT,
            )
        )
if (PAGES_DIR / f"{DEFAULT}.py").exists():
    # "/overview" (a link someone shared, the name in the menu) opens the landing page too,
    # instead of "Page not found": a hidden second entry for the same file
    sections.setdefault("Corpus", []).append(
        st.Page(
            f"app_pages/{DEFAULT}.py",
            title="Overview",
            icon=":material/donut_large:",
            url_path=DEFAULT,
            visibility="hidden",
        )
    )
nav = st.navigation(sections)
restore_deep_link({stem: f"app_pages/{stem}.py" for _, stem, *_ in PAGES if stem != "overview"})
with st.sidebar:
    from dashboard.components.text import md

    user = st.session_state.get("user")
    who = f"{md(user)} ({role})" if user else f"**{role}**"
    st.caption(f"workspace `{ws.path}` · signed in as {who}")
    if st.session_state.get("auth_via") == "oidc":
        st.button("Sign out", on_click=st.logout, key="oidc_logout")
nav.run()

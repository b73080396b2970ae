"""SQL: read-only queries over the workspace, with a download."""

import streamlit as st

from analytics.errors import MixscopeError
from analytics.query import DEFAULT_MAX_BYTES, run_user_query, truncation_note
from dashboard import state
from dashboard.components.text import show_error

EXAMPLE = (
    "SELECT source, count(*) AS documents, sum(n_tokens) AS tokens\n"
    "FROM documents GROUP BY source ORDER BY tokens DESC"
)

st.title("SQL")
st.caption(
    "One read-only SELECT per query over the workspace tables (`documents`, `ingests`, "
    "`meta`, ...). Writes, file access, ATTACH, INSTALL/LOAD and settings are refused; "
    "results are capped and queries are stopped after a time limit."
)
if "sql_text" not in st.session_state:
    st.session_state["sql_text"] = st.query_params.get("sql", EXAMPLE)
text = st.text_area("Query", key="sql_text", height=160)
c1, c2, c3 = st.columns([1, 1, 4])
max_rows = c1.number_input("Row cap", min_value=1, max_value=100_000, value=1000, key="sql_cap")
timeout = c2.number_input("Time limit (s)", min_value=1, max_value=120, value=30, key="sql_timeout")
shared = "sql" in st.query_params and "sql_ran" not in st.session_state
if st.button("Run", type="primary", key="sql_run") or shared:
    st.session_state["sql_ran"] = True
    st.query_params["sql"] = text
    st.session_state.pop("sql_error", None)
    st.session_state.pop("sql_result", None)
    try:
        st.session_state["sql_result"] = run_user_query(  # in a memory-bounded child process
            state.workspace().path,
            text,
            max_rows=int(max_rows),
            timeout_s=float(timeout),
        )
    except MixscopeError as exc:
        st.session_state["sql_error"] = str(exc)
    except Exception as exc:  # anything else: one line, never a traceback
        st.session_state["sql_error"] = (str(exc).strip().splitlines() or [repr(exc)])[0]

if err := st.session_state.get("sql_error"):
    show_error(err)
elif res := st.session_state.get("sql_result"):
    df, truncated = res
    note = truncation_note(df, truncated, max_rows=int(max_rows), max_bytes=DEFAULT_MAX_BYTES)
    st.caption(f"{len(df):,} rows" + (f" ({note})" if note else ""))
    st.dataframe(df, hide_index=True, width="stretch", key="sql_table")
    st.download_button(
        "Download CSV", df.to_csv(index=False).encode(), "query.csv", "text/csv", key="sql_download"
    )

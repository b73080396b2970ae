"""The served dashboard: dashboard/app.py behind mixscope's own ASGI middleware.

`mixscope serve` runs `streamlit run dashboard/server.py`; Streamlit finds `app` (an
`st.App`) and serves app.py with the middleware in front of its routes:
UploadGate refuses uploads from sessions that have not signed in as editors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dashboard.upload_gate import UploadGate  # noqa: E402

app = st.App(Path(__file__).with_name("app.py"), middleware=[Middleware(UploadGate)])

"""ASGI middleware in front of Streamlit's upload endpoint (see analytics.auth.UploadPolicy).

`PUT /_stcore/upload_file/<session>/<file>` is answered here, before Streamlit reads the
body, unless the session has signed in as an editor and stays within its upload budget.
Installed by dashboard/server.py (the `st.App` that `mixscope serve` runs).
"""

from __future__ import annotations

import re

from analytics.auth import UPLOADS, UploadPolicy

_UPLOAD = re.compile(r"/_stcore/upload_file/([^/]+)/[^/]+/?$")


def _held(session_id: str) -> int:
    """Bytes of uploads Streamlit holds in memory for this session now."""
    try:
        from streamlit.runtime import Runtime

        mgr = Runtime.instance().uploaded_file_mgr
        files = getattr(mgr, "file_storage", {}).get(session_id, {})
        return sum(len(rec.data) for rec in list(files.values()))
    except Exception:
        return 0


class UploadGate:
    def __init__(self, app, policy: UploadPolicy | None = None, held=_held):
        self.app = app
        self.policy = policy or UPLOADS
        self.held = held

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "http" and scope.get("method") == "PUT":
            m = _UPLOAD.search(scope.get("path", ""))
            if m:
                session_id = m.group(1)
                headers = dict(scope.get("headers") or [])
                length = headers.get(b"content-length")
                status, reason = self.policy.decide(
                    session_id, length.decode("latin-1") if length else None, self.held(session_id)
                )
                if status:
                    body = reason.encode()
                    await send(
                        {
                            "type": "http.response.start",
                            "status": status,
                            "headers": [
                                (b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close"),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)

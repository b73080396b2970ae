"""Uploads before sign-in: the server refuses them before reading a byte of the body.

The policy is checked on its own, then the ASGI middleware with a downstream app that
records whether it was reached or the body read, then a real `mixscope serve` process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import socket
import uuid

import pytest

from analytics.auth import UploadPolicy
from dashboard.upload_gate import UploadGate


def test_policy_roles_sizes_and_budget():
    p = UploadPolicy(session_bytes=1000)
    sid = str(uuid.uuid4())
    assert p.decide(sid, "10", held=0) == (403, "sign in before uploading")
    p.register(sid, "viewer")
    assert p.decide(sid, "10", held=0)[0] == 403
    p.register(sid, "editor")
    assert p.decide(sid, None, held=0)[0] == 411
    assert p.decide(sid, "12 ", held=0) == (0, "")
    assert p.decide(sid, "1000", held=0) == (0, "")
    assert p.decide(sid, "1001", held=0)[0] == 413  # one byte over, alone
    status, reason = p.decide(sid, "400", held=700)  # over, with what the session holds
    assert status == 413 and "700 bytes" in reason
    p.forget(sid)
    assert p.decide(sid, "10", held=0)[0] == 403


def test_policy_forgets_oldest_sessions_beyond_its_size():
    p = UploadPolicy(session_bytes=10, max_sessions=3)
    for i in range(5):
        p.register(f"s{i}", "editor")
    assert [p.role(f"s{i}") for i in range(5)] == [None, None, "editor", "editor", "editor"]


def _call(gate, path, headers, method="PUT"):
    """Drive the ASGI middleware once; return (status, reached downstream, body read)."""
    seen = {"reached": False, "read": False, "status": None}

    async def downstream(scope, receive, send):
        seen["reached"] = True
        await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive():
        seen["read"] = True
        return {"type": "http.request", "body": b"x" * 10, "more_body": False}

    async def send(msg):
        if msg["type"] == "http.response.start":
            seen["status"] = msg["status"]

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    gate.app = downstream
    # A loop of its own in a thread of its own: another test may have left this thread's
    # event loop running.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, gate(scope, receive, send)).result()
    return seen["status"], seen["reached"], seen["read"]


def test_middleware_answers_before_the_body_is_read():
    policy = UploadPolicy(session_bytes=100)
    held = {}
    gate = UploadGate(None, policy=policy, held=lambda s: held.get(s, 0))

    def run(path, headers, method="PUT"):
        return _call(gate, path, headers, method)

    sid = "ed"
    up = f"/_stcore/upload_file/{sid}/file-1"
    assert run(up, {"content-length": "10"}) == (403, False, False)  # not signed in
    policy.register(sid, "viewer")
    assert run(up, {"content-length": "10"}) == (403, False, False)
    policy.register(sid, "editor")
    assert run(up, {}) == (411, False, False)
    assert run(up, {"content-length": "101"}) == (413, False, False)
    assert run(up, {"content-length": "10"}) == (204, True, True)  # through to Streamlit
    held[sid] = 95
    assert run(up, {"content-length": "10"}) == (413, False, False)
    # under a base path too; other routes and methods are not the gate's business
    assert run("/team/_stcore/upload_file/x/y", {"content-length": "1"})[0] == 403
    assert run(up, {}, method="DELETE") == (204, True, True)
    assert run("/_stcore/health", {}, method="GET") == (204, True, True)


@pytest.fixture(scope="module")
def signed_server(demo_workspace):
    from tests.browser.conftest import serve

    env = {"MIXSCOPE_VIEWER_TOKEN": "v" * 20, "MIXSCOPE_EDITOR_TOKEN": "e" * 20}
    yield from serve(demo_workspace.path, env)


@pytest.mark.slow
def test_real_server_refuses_an_upload_before_sign_in(signed_server):
    host, port = signed_server.removeprefix("http://").split(":")
    # a 200 MB upload announced, no body sent: answered at once, nothing buffered
    with socket.create_connection((host, int(port)), timeout=20) as s:
        s.sendall(
            (
                f"PUT /_stcore/upload_file/{uuid.uuid4()}/f HTTP/1.1\r\nHost: {host}\r\n"
                "Content-Type: multipart/form-data; boundary=xyz\r\n"
                f"Content-Length: {200 * 1024**2}\r\n\r\n"
            ).encode()
        )
        data = b""
        while True:  # the body may come in a later segment: read until the server closes
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        reply = data.decode("latin-1")
    assert reply.startswith("HTTP/1.1 403"), reply
    assert "sign in before uploading" in reply
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    conn.request("GET", "/_stcore/health")
    assert conn.getresponse().status == 200  # and the server still answers

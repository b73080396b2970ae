"""The child process of `analytics.query.run_user_query`: one untrusted query, bounded.

Reads a JSON request on stdin, writes one JSON status line on stdout, then (on success) the
result as an Arrow IPC stream. Its limits are set before the query runs: spill files go to
`<workspace>/.tmp/sql-<pid>/` (DuckDB's temp directory of an in-memory database is `.tmp`
under the working directory) with RLIMIT_FSIZE bounding each, and RLIMIT_AS bounds the
address space to what the process needed to open the snapshot plus `memory_bytes`.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path


def _vm_size() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _reply(out, status: dict, body: bytes = b"") -> None:
    out.write(json.dumps(status).encode() + b"\n")
    out.write(body)
    out.flush()


def main() -> int:
    out = sys.stdout.buffer
    req = json.loads(sys.stdin.read())
    ws_path = Path(req["workspace"])
    tmp = ws_path / ".tmp" / f"sql-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    os.chdir(tmp)  # DuckDB spills to ./.tmp: inside the workspace
    resource.setrlimit(resource.RLIMIT_FSIZE, (req["temp_bytes"], req["temp_bytes"]))

    import pyarrow as pa

    from analytics.errors import (
        MixscopeError,
        QueryError,
        QueryRefused,
        QueryTimeout,
        QueryTooLarge,
    )
    from analytics.query import run_query
    from analytics.workspace import Workspace

    kinds = [
        (QueryRefused, "refused"),
        (QueryTimeout, "timeout"),
        (QueryError, "query"),
        (QueryTooLarge, "too_large"),
        (MixscopeError, "error"),
    ]
    try:
        cur = Workspace(ws_path).user_cursor()
        if hasattr(resource, "RLIMIT_AS") and req.get("memory_bytes"):
            limit = _vm_size() + int(req["memory_bytes"])
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        df, truncated = run_query(
            cur,
            req["sql"],
            max_rows=req["max_rows"],
            timeout_s=req["timeout_s"],
            max_bytes=req["max_bytes"],
            user=True,
        )
        table = pa.Table.from_pandas(df, preserve_index=False)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        body = sink.getvalue().to_pybytes()
        _reply(
            out, {"ok": True, "truncated": df.attrs.get("truncated") if truncated else None}, body
        )
    except MemoryError:
        _reply(out, {"ok": False, "kind": "too_large", "error": _too_large(req)})
    except MixscopeError as exc:
        kind = next(k for cls, k in kinds if isinstance(exc, cls))
        _reply(out, {"ok": False, "kind": kind, "error": str(exc)})
    except Exception as exc:  # a DuckDB allocation failure surfaces as its own classes
        if "memory" in str(exc).lower() or "bad_alloc" in str(exc):
            _reply(out, {"ok": False, "kind": "too_large", "error": _too_large(req)})
        else:
            msg = " ".join(str(exc).split())
            _reply(out, {"ok": False, "kind": "error", "error": f"{type(exc).__name__}: {msg}"})
    return 0


def _too_large(req: dict) -> str:
    return (
        f"The query needed more than {req['memory_bytes'] / 1024**2:,.0f} MB of memory and was "
        "stopped; aggregate, filter or select fewer columns."
    )


if __name__ == "__main__":
    sys.exit(main())

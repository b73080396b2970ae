"""Concurrent sessions over real HTTP/websocket connections on 127.0.0.1, with and without
a memory bomb and a writing job alongside.

    python bench/bench_load.py --sessions 20 --rounds 3 [--workspace DIR]

Starts `mixscope serve` on a free port (a fresh demo workspace in a temporary directory
unless --workspace), opens browser contexts in Debian's chromium, each doing something
different (Overview, Explore with its own filter, SQL with its own query) R times, and
reports errors and latency percentiles of these "normal" sessions in four phases:

  baseline   3 normal sessions                                      (the named baseline)
  load       N normal sessions
  bomb       N-1 normal sessions + 1 session that keeps running a user SQL query that
             tries to allocate far beyond the query memory bound (it must be refused with
             "needed more memory", in its own child process) + a writer that keeps
             committing to the same workspace (`mixscope mix create`, a new version each)
The figures: p90 ratio bomb/load (what the bomb costs the others), p90 ratios against the
3-session baseline, errors of the normal sessions, bomb refusals, writer commits, and
server restarts (the server's pid must stay the same and answer /_stcore/health).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: a user query that needs ~5 GB (string_agg of 5,000 strings of 1 MB): far beyond the
#: query child's memory bound (analytics.query.DEFAULT_MEMORY_BYTES)
BOMB_SQL = "SELECT length(string_agg(repeat('x', 1000000), '')) AS n FROM range(5000)"


def _healthy(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=10) as r:
            return r.status == 200
    except OSError:
        return False


class Writer(threading.Thread):
    """Saves a new mixture version (`mixscope mix create`, a CLI process that commits to the
    workspace) again and again, until stopped. It writes without changing the numbers the
    normal sessions check (documents per source), so their answers stay exact."""

    def __init__(self, ws_path: Path):
        super().__init__(daemon=True)
        self.ws_path = ws_path
        self.stop = threading.Event()
        self.ok = self.failed = 0
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            p = subprocess.run(
                [sys.executable, "-m", "dashboard.cli", "mix", "create", "bench-load",
                 "--group-by", "source", "--budget", "1000000", "--workspace", str(self.ws_path)],
                capture_output=True, text=True, cwd=ROOT,
                env=dict(os.environ, PYTHONPATH=str(ROOT)),
            )  # fmt: skip
            if p.returncode == 0:
                self.ok += 1
            else:
                self.failed += 1
                self.errors.append((p.stderr.strip().splitlines() or ["?"])[-1][:200])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bomb-rounds", type=int, default=None, help="default: --rounds")
    ap.add_argument("--workspace", type=Path, default=None)
    args = ap.parse_args()

    from analytics.workspace import Workspace
    from dashboard.loadtest import build_tasks, run_load
    from tests.browser.conftest import CHROMIUM, FLAGS, _free_port

    tmp = Path(tempfile.mkdtemp(prefix="mixscope-bench-load-"))
    ws_path = args.workspace or tmp / "ws"
    if not (ws_path / "workspace.json").exists():
        subprocess.run(
            [sys.executable, "-m", "dashboard.cli", "demo", "--build-only", "--workspace",
             str(ws_path)],
            check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    ws = Workspace.open(ws_path)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboard.cli", "serve", "--workspace", str(ws.path),
         "--port", str(port), "--headless"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    restarts = 0
    try:
        for _ in range(180):
            if _healthy(url):
                break
            time.sleep(0.5)
        server_pid = proc.pid

        def check_server(phase: str) -> None:
            nonlocal restarts
            if proc.poll() is not None or not _healthy(url):
                restarts += 1
                print(f"  SERVER DOWN after {phase} (exit {proc.poll()})")

        def load(tasks, rounds):
            return run_load(url, tasks, rounds=rounds, chromium=CHROMIUM, flags=FLAGS)

        tasks = build_tasks(ws.cursor(), args.sessions)
        asyncio.run(load(tasks[:3], 1))  # warm up the process-wide caches once
        single = asyncio.run(load(tasks[:3], args.rounds))
        check_server("baseline")
        many = asyncio.run(load(tasks, args.rounds))
        check_server("load")

        bomb_task = {
            "path": f"/sql?sql={quote(BOMB_SQL)}",
            "selector": '[data-testid="stAlertContentError"]',
            "expect": "needed more memory",
        }
        writer = Writer(ws.path)

        async def bomb_phase():
            return await asyncio.gather(
                load(tasks[: args.sessions - 1], args.rounds),
                load([bomb_task], args.bomb_rounds or args.rounds),
            )

        writer.start()
        normal, bomb = asyncio.run(bomb_phase())
        writer.stop.set()
        writer.join(timeout=300)
        check_server("bomb")

        print("server:", "same pid" if proc.pid == server_pid and proc.poll() is None else "?",
              f"restarts {restarts}")  # fmt: skip
        print("baseline (3 sessions):", single.summary())
        print("load:", many.summary())
        print("load + memory bomb + writer:", normal.summary())
        print(
            f"memory-bomb session: {len(bomb.latencies_s)} bomb queries refused "
            f"('needed more memory'), {len(bomb.errors)} not refused as expected"
        )
        print(f"writer: {writer.ok} mix-create commits, {writer.failed} failed")
        p90 = lambda r: r.percentile(0.9)  # noqa: E731
        print(
            f"p90 ratio load/baseline = {p90(many) / p90(single):.2f}x; "
            f"bomb-phase/baseline = {p90(normal) / p90(single):.2f}x; "
            f"bomb-phase/load (what the bomb and the writer cost the others) = "
            f"{p90(normal) / p90(many):.2f}x"
        )
        print(
            f"p50 ratio bomb-phase/load = {normal.percentile(0.5) / many.percentile(0.5):.2f}x; "
            f"errors of the normal sessions: load {len(many.errors)}, bomb phase "
            f"{len(normal.errors)}"
        )
        for e in [*many.errors, *normal.errors, *bomb.errors, *writer.errors][:10]:
            print("  error:", e)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()

"""Concurrent sessions over real HTTP/websocket connections on 127.0.0.1.

    python bench/bench_load.py --sessions 20 --rounds 3 [--workspace DIR]

Starts `mixscope serve` on a free port (demo workspace unless --workspace), opens N browser
contexts in Debian's chromium, each doing something different (Overview, Explore with its
own filter, SQL with its own query) R times, and reports errors and latency percentiles.
Baseline: the same page loads with a single session, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workspace", type=Path, default=Path.home() / ".mixscope" / "demo")
    args = ap.parse_args()

    import subprocess

    from analytics.workspace import Workspace
    from dashboard.loadtest import build_tasks, run_load
    from tests.browser.conftest import CHROMIUM, FLAGS, _free_port

    if not (args.workspace / "mixscope.duckdb").exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "dashboard.cli",
                "demo",
                "--build-only",
                "--workspace",
                str(args.workspace),
            ],
            check=True,
        )
    ws = Workspace.open(args.workspace)
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dashboard.cli",
            "serve",
            "--workspace",
            str(ws.path),
            "--port",
            str(port),
            "--headless",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import time
        import urllib.request

        for _ in range(180):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        tasks = build_tasks(ws.cursor(), args.sessions)
        # warm up the process-wide caches once, then measure
        asyncio.run(run_load(url, tasks[:3], rounds=1, chromium=CHROMIUM, flags=FLAGS))
        single = asyncio.run(
            run_load(url, tasks[:3], rounds=args.rounds, chromium=CHROMIUM, flags=FLAGS)
        )
        many = asyncio.run(run_load(url, tasks, rounds=args.rounds, chromium=CHROMIUM, flags=FLAGS))
        print("baseline (3 sessions):", single.summary())
        print("load:", many.summary())
        print(
            f"p50 ratio load/baseline = {many.percentile(0.5) / single.percentile(0.5):.2f}x, "
            f"p90 ratio = {many.percentile(0.9) / single.percentile(0.9):.2f}x"
        )
        for e in many.errors[:10]:
            print("  error:", e)
    finally:
        proc.terminate()


if __name__ == "__main__":
    main()

"""Crash consistency: SIGKILL writers at random points, 20 times.

    python bench/bench_kill.py [--kills 20] [--seed 0]

A workspace is built from a generated corpus; then writers, cycled (ingest of a new
3,000-document file, a signals run, `mix create`, `embed --model fake`, `geometry` of a tiny
checkpoint series, `mix materialize` into an out dir, `migrate` of a 20,000-document
single-file 0.1 workspace), are each killed with SIGKILL at a random point (see
tests/killharness.py for the checks). Reports how many kills left a consistent
workspace (state before or after the writer, no duplicates, every table readable) and how
many re-runs completed. Baseline: the same writers run to completion on a copy of the
workspace before each kill (the "after" state and the duration the kill point is drawn
from), measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from tests.killharness import campaign, make_corpus, run, state

    work = Path(tempfile.mkdtemp(prefix="mixscope-bench-kill-"))
    ws = work / "ws"
    seed = make_corpus(work / "seed.jsonl", 2000, seed=10_000)
    p = run(ws, ["ingest", "--source", "seed", str(seed)])
    if p.returncode:
        sys.exit(p.stderr)
    t0 = time.monotonic()
    rep = campaign(ws, work, kills=args.kills, seed=args.seed)
    final = state(ws)
    print(rep.line(), f"in {time.monotonic() - t0:.0f}s")
    # the baseline: every reference run (same writer, to the end, on a copy) completed
    print(
        f"inconsistent workspaces: {rep.kills - rep.consistent} of {rep.kills}; "
        f"re-runs completed: {rep.reruns_ok}/{rep.consistent}; duplicate documents at the end: "
        f"{final['<duplicate documents>']}"
    )
    for line in rep.problems:
        print("  problem:", line)


if __name__ == "__main__":
    main()

"""Materialise a mixture on each engine, ratios measured in one run.

    python bench/bench_materialize.py --docs 60000 [--shard-rows 5000] [--repeat 2] [--no-ray]

One workspace of `--docs` demo documents (text left in its Parquet file, as after a plain
`mixscope ingest`), one mixture over its sources (one source repeated 2.5 times, shuffled),
materialised as JSONL shards by

1. ``in-process``: the shards one after the other in this process (the baseline);
2. ``local`` with 1 process and with 2 processes;
3. ``ray`` on a two-node cluster on 127.0.0.1 (one CPU each, `ray start`).

Every run writes the same bytes (checked). The engines alternate `--repeat` times; printed: the
best wall seconds of each, rows/s, the ratio to the in-process baseline of the same run, and
local 2 vs 1 process.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_tokenize import RayCluster, make_workspace  # noqa: E402


def manifest_of(ws):
    from analytics.mixture import build_manifest, build_phase, group_selections, plan_table
    from analytics.mixture.selection import snapshot_hash

    cur = ws.user_cursor()
    counts, sels = group_selections(cur, group_by="source")
    tokens = dict(zip(counts["group"], counts["tokens"], strict=True))
    docs = dict(zip(counts["group"], counts["documents"], strict=True))
    groups = sorted(tokens)
    epochs = {g: (2.5 if i == 0 else 1.0) for i, g in enumerate(groups)}
    target = {g: epochs[g] * tokens[g] for g in groups}
    budget = int(round(sum(target.values())))
    weights = {g: t / sum(target.values()) for g, t in target.items()}
    plan = plan_table(tokens, docs, weights, budget)
    phase = build_phase(
        plan, name="main", budget_tokens=budget, method="manual", selections=sels,
        order="shuffled",
    )  # fmt: skip
    return build_manifest(
        phases=[phase], tokenizer={"name": "bench"}, seed=7,
        corpus_snapshot_hash=snapshot_hash(cur), corpus_snapshot_id=ws.snapshot_id(),
        version="0.0.1",
    )  # fmt: skip


def hashes(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=60_000)
    ap.add_argument("--shard-rows", type=int, default=5_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    from analytics.mixture import materialize

    tmp = Path(tempfile.mkdtemp(prefix="mx-bench-mat-"))
    try:
        t0 = time.perf_counter()
        ws, _ = make_workspace(args.docs, tmp)
        m = manifest_of(ws)
        print(f"workspace of {args.docs:,} documents in {time.perf_counter() - t0:.1f} s")
        runs = [("in-process", {}), ("local x1", {"workers": 1}), ("local x2", {"workers": 2})]
        cluster = None
        if not args.no_ray:
            cluster = RayCluster()
            runs.append(("ray 2 nodes", {"ray_address": cluster.address}))
        results: dict[str, float] = {}
        ref = None
        rows = 0
        try:
            for r, (label, kw) in ((r, x) for r in range(args.repeat) for x in runs):
                engine = label.split()[0]
                out = tmp / f"out-{engine}-{r}"
                t = time.perf_counter()
                res = materialize(ws, m, out, shard_rows=args.shard_rows, engine=engine, **kw)
                results[label] = min(results.get(label, float("inf")), time.perf_counter() - t)
                rows = int(res.groups["rows"].sum())
                got = hashes(out)
                ref = ref or got
                assert got == ref, f"{label}: different bytes"
                shutil.rmtree(out)
        finally:
            if cluster is not None:
                cluster.stop()
        shards = len([k for k in ref or {} if "/part-" in k])
        print(f"{rows:,} rows in {shards} shards of {args.shard_rows:,} rows (same bytes on all)")
        base = results["in-process"]
        print(f"{'engine':<12} {'seconds':>8} {'rows/s':>10} {'vs in-process':>14}")
        for label, secs in results.items():
            print(f"{label:<12} {secs:>8.2f} {rows / secs:>10,.0f} {base / secs:>13.2f}x")
        print(f"local 2 processes vs 1: {results['local x1'] / results['local x2']:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""DSIR selection: mixscope vs the reference implementation (the `data-selection` package).

    python bench/bench_dsir.py                  # the whole demo corpus (35k documents)
    python bench/bench_dsir.py --docs 5000      # a quicker figure
    python bench/bench_dsir.py --procs 2        # the package with 2 joblib processes

Same inputs for both: the demo corpus (minus the target) as the raw pool, written once as
JSONL for the package, and 200 held-out python-doc documents as the target. Both fit the
raw and target bag-of-n-gram models on everything (``num_tokens_to_fit="all"``), compute
every document's log importance weight and take the top ``k`` documents (``top_k=True``,
no noise, so the two selections are comparable) with the reference's 100-word filter.

Baseline ("data-selection"): ``HashedNgramDSIR(...).fit_importance_estimator();
compute_importance_weights(); resample(top_k=True)``, ``num_proc`` = ``--procs``.
mixscope: read the same JSONL, ``dsir_select(..., sampling="top_k")`` in one process (its
n-gram hash memo emptied first). Printed: wall times and their ratio (baseline / mixscope,
> 1 means mixscope is faster), the Spearman correlation and max |difference| of the two
weight vectors, and the overlap of the two top-k selections.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analytics.mixture.strategies import dsir_select  # noqa: E402
from analytics.mixture.strategies import target_matching as tm  # noqa: E402

DEMO = ROOT / "data" / "demo_corpus.parquet"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=0, help="raw pool size (0: the whole corpus)")
    ap.add_argument(
        "--k",
        type=int,
        default=1000,
        help="documents to select (< the pool's documents of 100+ words)",
    )
    ap.add_argument("--procs", type=int, default=1, help="the package's num_proc")
    args = ap.parse_args()
    from data_selection import HashedNgramDSIR  # the reference (dev dependency)
    from scipy.stats import spearmanr

    df = pd.read_parquet(DEMO, columns=["id", "text", "source"])
    py = df[df.source == "python-doc"]
    target = py.sample(200, random_state=0)
    pool = df.drop(target.index)
    if args.docs:
        pool = pool.sample(min(args.docs, len(pool)), random_state=0)
    pool = pool.reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        raw, tgt = tmp / "raw.jsonl", tmp / "target.jsonl"
        with raw.open("w") as f:
            for i, t in zip(pool["id"], pool["text"]):
                f.write(json.dumps({"id": i, "text": t}) + "\n")
        with tgt.open("w") as f:
            for t in target["text"]:
                f.write(json.dumps({"text": t}) + "\n")

        t0 = time.perf_counter()
        ref = HashedNgramDSIR(
            [str(raw)], [str(tgt)], cache_dir=str(tmp / "cache"), num_proc=args.procs
        )
        ref.fit_importance_estimator(num_tokens_to_fit="all")
        ref.compute_importance_weights()
        ref.resample(out_dir=str(tmp / "out"), num_to_sample=args.k, top_k=True)
        t_ref = time.perf_counter() - t0
        ref_w = np.concatenate(
            [
                np.load(tmp / "cache" / "log_importance_weights" / f"{i}.npy")
                for i in range(args.procs)
            ]
        )
        # the package shards documents i % procs: undo that order
        order = np.concatenate([np.arange(len(pool))[i :: args.procs] for i in range(args.procs)])
        ref_w = ref_w[np.argsort(order)]
        ref_sel = {
            str(json.loads(line)["id"])
            for p in sorted((tmp / "out").glob("*.jsonl"))
            for line in p.read_text().splitlines()
        }

        tm._MEMOS.clear()
        t0 = time.perf_counter()
        rows = [json.loads(line) for line in raw.open()]
        docs = pd.DataFrame(rows).rename(columns={"id": "doc_id"})
        docs["n_tokens"] = 1  # one "token" per document: the budget counts documents
        targets = [json.loads(line)["text"] for line in tgt.open()]
        res = dsir_select(docs, targets, budget=args.k, sampling="top_k", min_words=100)
        t_ms = time.perf_counter() - t0
    ours = res.extras["log_weights"]
    ms_sel = set(map(str, res.extras["selection"]["doc_id"]))
    rho = spearmanr(ours, ref_w).statistic
    print(f"pool: {len(pool):,} documents, target: {len(target)} python-doc texts, k = {args.k}")
    print(f"data-selection (baseline, num_proc={args.procs}): {t_ref:8.2f} s")
    print(f"mixscope dsir_select (1 process):            {t_ms:8.2f} s")
    print(f"speed-up (baseline / mixscope):              {t_ref / t_ms:8.2f}x")
    print(f"Spearman of log importance weights:          {rho:.6f}")
    print(f"max |difference| of log weights:             {np.max(np.abs(ours - ref_w)):.3g}")
    print(
        f"top-k overlap:                               {len(ms_sel & ref_sel)}/{len(ref_sel)}"
        f" ({len(ms_sel & ref_sel) / max(1, len(ref_sel)):.1%})"
    )


if __name__ == "__main__":
    main()

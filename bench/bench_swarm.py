"""Proxy swarms: the proxy trainer against a bare torch loop, and a swarm on 1 vs 2 processes.

    python bench/bench_swarm.py                      # defaults: the proxy of `mix swarm`
    python bench/bench_swarm.py --steps 100 --proxies 4 --repeats 3

Data: documents of the shipped demo corpus (data/demo_corpus.parquet), a swarm tokenizer
(byte-level BPE, vocab 2048) trained on them, cut into 128-token blocks.

1. Proxy trainer throughput (tokens/s) of :func:`analytics.mixture.proxy.train_proxy` -
   the swarm's trainer (learning-rate schedule, gradient clipping, losses kept on the
   device, pinned threads) - against the baseline, a bare torch loop over the same model
   (``build_model``, AdamW) and the same batches: forward, backward, step, nothing else.
   Both run on one thread (the swarm's default), interleaved, best of ``--repeats``.
   Goal: ratio >= 0.9.
2. Swarm wall time: ``--proxies`` proxy tasks (train + bits per byte on held-out texts,
   exactly what `mix swarm` runs per proxy) through :func:`analytics.mixture.swarm.run_tasks`
   with 1 local process (in-process) vs 2 spawned processes. The ratio is 1-process time /
   2-process time (2.0 = perfect scaling); the results must be identical (checked).
   Also printed: proxies per hour on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analytics.mixture.proxy import (  # noqa: E402
    EOS,
    ProxyConfig,
    build_model,
    deterministic_torch,
    make_optimizer,
    token_blocks,
    train_proxy,
    train_swarm_tokenizer,
)
from analytics.mixture.swarm import run_tasks  # noqa: E402


def bare_loop(blocks: np.ndarray, cfg: ProxyConfig, *, vocab: int, eos: int, order) -> float:
    """Seconds of the baseline loop: forward (called as the trainer calls it), backward,
    optimizer step."""
    import torch

    with deterministic_torch(cfg.threads, "cpu"):
        torch.manual_seed(0)
        model = build_model(cfg, vocab=vocab, eos=eos)
        model.train()
        opt = make_optimizer(model, cfg.learning_rate)
        data = torch.from_numpy(blocks)
        idx = torch.from_numpy(order)
        t0 = time.perf_counter()
        for s in range(cfg.steps):
            batch = data[idx[s]]
            loss = model(input_ids=batch, attention_mask=torch.ones_like(batch), labels=batch).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--proxies", type=int, default=4)
    ap.add_argument("--swarm-steps", type=int, default=40)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()

    corpus = pd.read_parquet(ROOT / "data" / "demo_corpus.parquet", columns=["text", "source"])
    sample = corpus.groupby("source").head(40)
    texts = sample["text"].tolist()
    tmp = Path(tempfile.mkdtemp(prefix="bench_swarm_"))
    tok = train_swarm_tokenizer(texts, tmp / "tokenizer", vocab_size=2048)
    eos = tok.convert_tokens_to_ids(EOS)
    cfg = ProxyConfig(steps=args.steps)
    blocks = token_blocks(texts, tok, cfg.block_size)
    from analytics.mixture.proxy import batch_order

    order = batch_order(blocks.shape[0], cfg.steps, cfg.batch_size, 0)
    tokens = cfg.steps * cfg.tokens_per_step
    print(
        f"proxy: {cfg.n_layer} layers x {cfg.n_embd}, vocab {len(tok)}, {cfg.block_size}-token "
        f"blocks x {cfg.batch_size}, {cfg.steps} steps = {tokens:,} tokens, 1 thread, CPU"
    )
    bare, ours = [], []
    for _ in range(args.repeats):
        bare.append(bare_loop(blocks, cfg, vocab=len(tok), eos=eos, order=order))
        ours.append(train_proxy(blocks, cfg, vocab=len(tok), eos=eos, seed=0).seconds)
    b, o = tokens / min(bare), tokens / min(ours)
    print(f"bare torch loop (baseline): {b:,.0f} tokens/s (best of {args.repeats})")
    print(f"proxy trainer:              {o:,.0f} tokens/s (best of {args.repeats})")
    print(f"ratio proxy trainer / bare loop: {o / b:.3f}x (goal >= 0.9x)")

    # ---- swarm: 1 vs 2 local processes
    import pyarrow as pa
    import pyarrow.parquet as pq

    held = corpus.groupby("source").tail(4)
    evals = {f"bpb:{s}": g["text"].str.slice(0, 1000).tolist() for s, g in held.groupby("source")}
    (tmp / "eval.json").write_text(json.dumps(evals))
    scfg = ProxyConfig(steps=args.swarm_steps)
    rng = np.random.default_rng(0)
    tasks = []
    for i in range(args.proxies):
        d = tmp / f"proxy-{i}" / "data" / "main"
        d.mkdir(parents=True)
        pick = rng.choice(len(sample), size=200, replace=True)
        pq.write_table(
            pa.table({"text": sample["text"].iloc[pick].tolist()}), d / "part-00000.parquet"
        )
        tasks.append(
            {
                "data_dir": str(d.parent),
                "tokenizer_dir": str(tmp / "tokenizer"),
                "eval_path": str(tmp / "eval.json"),
                "config": scfg.to_dict(),
                "seed": 0,
            }
        )
    t0 = time.perf_counter()
    one = run_tasks(tasks, workers=1)
    t1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    two = run_tasks(tasks, workers=2)
    t2 = time.perf_counter() - t0
    same = all(
        a["losses"] == b["losses"] and a["metrics"] == b["metrics"] for a, b in zip(one, two)
    )
    print(
        f"swarm of {args.proxies} proxies x {scfg.steps} steps (+ bits per byte on "
        f"{sum(len(v) for v in evals.values())} held-out texts), {os.cpu_count()} CPU cores"
    )
    print(f"1 local process (baseline): {t1:.1f} s  ({3600 * args.proxies / t1:.0f} proxies/hour)")
    print(f"2 local processes:          {t2:.1f} s  ({3600 * args.proxies / t2:.0f} proxies/hour)")
    print(
        f"ratio 1-process / 2-process wall time: {t1 / t2:.2f}x (2.0 = perfect scaling); "
        f"identical results: {same}"
    )
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

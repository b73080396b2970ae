"""Proxy swarms: the proxy trainer against a bare torch loop, and a swarm's wall time on
1 process vs 2 local processes vs a local 2-node Ray cluster.

    python bench/bench_swarm.py                      # defaults: the proxy of `mix swarm`
    python bench/bench_swarm.py --steps 100 --proxies 4 --repeats 3
    python bench/bench_swarm.py --no-ray             # without the Ray cluster

Data: documents of the shipped demo corpus (data/demo_corpus.parquet), a swarm tokenizer
(byte-level BPE, vocab 2048) trained on them, cut into 128-token blocks.

1. Proxy trainer throughput (tokens/s) of :func:`analytics.mixture.proxy.train_proxy` -
   the swarm's trainer (learning-rate schedule, gradient clipping, losses kept on the
   device, pinned threads) - against the baseline, a bare torch loop over the same model
   (``build_model``, AdamW) and the same batches: forward, backward, step, nothing else.
   Both run on one thread (the swarm's default), interleaved, best of ``--repeats``.
   Goal: ratio >= 0.9.
2. Swarm wall time: ``--proxies`` proxies (train + bits per byte on held-out texts, exactly
   the payloads `mix swarm` ships: token blocks and tokenised evaluation sets) through
   :func:`analytics.mixture.swarm.run_tasks` with 1 local process (in-process, the
   baseline) vs 2 spawned local processes vs a local 2-node Ray cluster (``ray start
   --head`` + a second ``ray start`` node on 127.0.0.1, one CPU each, started and stopped
   by this script; one Ray task per proxy). Ratios: baseline time / engine time (2.0 =
   perfect scaling on 2 workers). Ray is timed twice: cold (the first run starts its
   worker processes, which import torch) and warm (a second run). The results of every
   engine must be identical to the baseline's (checked). Also printed: proxies per hour.
"""

from __future__ import annotations

import argparse
import os
import shutil
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
    ap.add_argument("--ray", action=argparse.BooleanOptionalAction, default=True)
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

    # ---- swarm: 1 process vs 2 local processes vs a local 2-node Ray cluster
    from analytics.mixture.swarm import proxy_job, shared_payload

    held = corpus.groupby("source").tail(4)
    evals = {f"bpb:{s}": g["text"].str.slice(0, 1000).tolist() for s, g in held.groupby("source")}
    scfg = ProxyConfig(steps=args.swarm_steps)
    shared = shared_payload(tok, evals, scfg)
    rng = np.random.default_rng(0)
    jobs = []
    for _ in range(args.proxies):
        pick = rng.choice(len(sample), size=200, replace=True)
        jobs.append(proxy_job(sample["text"].iloc[pick].tolist(), tok, scfg, 0))
    print(
        f"swarm of {args.proxies} proxies x {scfg.steps} steps (+ bits per byte on "
        f"{sum(len(v) for v in evals.values())} held-out texts), {os.cpu_count()} CPU cores"
    )
    times: dict[str, float] = {}
    results: dict[str, list] = {}

    def timed(label: str, **kw) -> None:
        t0 = time.perf_counter()
        results[label] = run_tasks(shared, jobs, **kw)
        times[label] = time.perf_counter() - t0

    timed("1 local process (baseline)", workers=1)
    timed("2 local processes", workers=2)
    cluster = None
    if args.ray:
        cluster = start_ray_cluster()
        try:
            timed("Ray, 2 nodes (cold)", engine="ray", ray_address=cluster[0])
            timed("Ray, 2 nodes (warm)", engine="ray", ray_address=cluster[0])
        finally:
            import ray

            ray.shutdown()
            stop_ray_cluster(cluster)
    base_label = "1 local process (baseline)"
    base = results[base_label]
    for label, t in times.items():
        same = all(
            a["losses"] == b["losses"] and a["metrics"] == b["metrics"]
            for a, b in zip(base, results[label])
        )
        ratio = times[base_label] / t
        print(
            f"{label:28s} {t:7.1f} s  ({3600 * args.proxies / t:5.0f} proxies/hour)  "
            f"ratio vs 1 process {ratio:.2f}x  identical results: {same}"
        )
    shutil.rmtree(tmp, ignore_errors=True)


def start_ray_cluster() -> tuple[str, list, str]:
    """A 2-node Ray cluster on 127.0.0.1 (one CPU per node), as tests/conftest.py makes it;
    returns (address, processes, temp dir)."""
    import socket
    import subprocess

    ray_bin = Path(sys.executable).parent / "ray"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    temp = tempfile.mkdtemp(prefix="/tmp/mxbray")
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="disabled",
    )
    os.environ["RAY_AUTH_MODE"] = "disabled"
    common = ["--block", "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats"]
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
         "--include-dashboard=false", f"--temp-dir={temp}", *common],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    procs = [head]
    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or head.poll() is not None:
                stop_ray_cluster((address, procs, temp))
                raise SystemExit("the Ray head node did not start") from None
            time.sleep(0.5)
    procs.append(
        subprocess.Popen(
            [str(ray_bin), "start", f"--address={address}", "--node-ip-address=127.0.0.1", *common],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    )
    from analytics.engine import ray_connect

    ray = ray_connect(address)
    while ray.cluster_resources().get("CPU", 0) < 2 or len(ray.nodes()) < 2:
        if time.monotonic() > deadline:
            stop_ray_cluster((address, procs, temp))
            raise SystemExit(f"the Ray worker node did not join: {ray.cluster_resources()}")
        time.sleep(0.5)
    return address, procs, temp


def stop_ray_cluster(cluster: tuple[str, list, str]) -> None:
    """Stop the nodes this script started (their own process groups only)."""
    import signal
    import subprocess

    _, procs, temp = cluster
    for p in reversed(procs):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)  # `ray start --block` stops its own node
    for p in reversed(procs):
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
    shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()

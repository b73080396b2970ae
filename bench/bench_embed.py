#!/usr/bin/env python3
"""Embedding throughput of analytics.embed against `SentenceTransformer.encode` called directly.

Figures (each a ratio measured in this run, > 1 means mixscope is faster):

1. overhead: `embed_texts(max_chars=None)` vs `SentenceTransformer.encode` on the same texts,
   same batch size (both length-sort; target ratio ~1.0, i.e. no overhead).
2. clipping: `embed_texts` with its default clip (20 chars x max_seq_length) vs `encode`:
   the gain of not tokenising text that the model truncates anyway; max |diff| is reported.
3. length-sorted batching: `embed_texts(sort_by_length=True)` vs batches in corpus order.
4. with --device cuda: documents/second in fp16 (and vs fp32).

Timing: best of interleaved rounds, by default in process CPU time with one torch thread
(`--clock wall --threads N` for elapsed time), so that other jobs on shared cores do not
distort the ratios.

Texts: a seeded sample of the mixed-length demo corpus (data/demo_corpus.parquet), or
synthetic mixed-length texts when it is missing. Default size suits 2 CPU cores (~2 min).

    python bench/bench_embed.py [--n 200] [--repeats 2] [--batch-size 64] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.embed import embed_texts, load_embedder  # noqa: E402
from analytics.embed.models import _quiet_transformers  # noqa: E402
from analytics.tokenizer import resolve_model  # noqa: E402


def load_texts(n: int, seed: int) -> tuple[list[str], str]:
    path = ROOT / "data" / "demo_corpus.parquet"
    rng = np.random.default_rng(seed)
    if path.exists():
        import pyarrow.parquet as pq

        texts = pq.read_table(path, columns=["text"]).column("text").to_pylist()
        idx = rng.choice(len(texts), size=min(n, len(texts)), replace=False)
        return [texts[i] for i in idx], f"{path.name} (seeded sample)"
    words = "data model corpus token train mixture source quality text sample".split()
    lengths = rng.lognormal(mean=3.5, sigma=1.3, size=n).astype(int) + 1
    return [" ".join(rng.choice(words, size=k)) for k in lengths], "synthetic"


CLOCK = time.perf_counter


def timed(fn, repeats: int = 1):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = CLOCK()
        out = fn()
        best = min(best, CLOCK() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="number of texts")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "mps", "auto"])
    ap.add_argument("--repeats", type=int, default=2, help="interleaved rounds (best kept)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="cpu: process CPU time (robust on shared cores); wall: elapsed time",
    )
    args = ap.parse_args()
    global CLOCK
    if args.device != "cpu":  # accelerators: CPU time does not measure the device's work
        args.clock = "wall"
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)

    texts, origin = load_texts(args.n, args.seed)
    lens = np.array([len(t) for t in texts])
    print(
        f"texts: {len(texts)} from {origin}; chars p50={int(np.median(lens))} "
        f"p90={int(np.percentile(lens, 90))} max={lens.max()}; "
        f"torch threads={torch.get_num_threads()}"
    )
    emb = load_embedder(args.model, device=args.device, half=False)
    with _quiet_transformers():
        st = SentenceTransformer(resolve_model(args.model), device=emb.device)
    bs = args.batch_size
    print(
        f"model: {emb.name} dim={emb.dim} max_seq_length={emb.max_seq_length} device={emb.device}"
    )

    # warm up both paths (first calls allocate and initialise kernels)
    st.encode(texts[:bs], batch_size=bs)
    embed_texts(emb, texts[:bs], batch_size=bs)

    variants = {
        "encode": lambda: st.encode(texts, batch_size=bs, normalize_embeddings=True),
        "ours": lambda: embed_texts(emb, texts, batch_size=bs, max_chars=None),
        "clip": lambda: embed_texts(emb, texts, batch_size=bs),
        "unsorted": lambda: embed_texts(
            emb, texts, batch_size=bs, sort_by_length=False, max_chars=None
        ),
    }
    # interleaved rounds, best of each: robust to other processes sharing the cores
    best = dict.fromkeys(variants, float("inf"))
    outs = {}
    names = list(variants)
    for r in range(args.repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t, outs[name] = timed(variants[name])
            best[name] = min(best[name], t)
    t_st, t_ours, t_clip, t_unsorted = (best[k] for k in names)
    ref, ours, clipped = outs["encode"], outs["ours"], outs["clip"]
    n = len(texts)
    print(f"\n[{args.clock} time, best of {args.repeats} interleaved rounds]")
    print(f"baseline SentenceTransformer.encode: {t_st:.2f}s ({n / t_st:.1f} docs/s)")
    print(
        f"1. overhead   embed_texts (no clip)      : {t_ours:.2f}s  ratio vs encode = "
        f"{t_st / t_ours:.3f}x  (max |diff| {np.abs(ours - ref).max():.2e})"
    )
    cos = (clipped * ref).sum(1)
    print(
        f"2. clipping   embed_texts (default clip) : {t_clip:.2f}s  ratio vs encode = "
        f"{t_st / t_clip:.3f}x  (min cosine to unclipped {cos.min():.6f})"
    )
    print(
        f"3. sorting    length-sorted vs corpus-order batches: {t_unsorted:.2f}s -> {t_ours:.2f}s "
        f"= {t_unsorted / t_ours:.2f}x speed-up"
    )

    if emb.device == "cuda":
        half = load_embedder(args.model, device="cuda", half=True)
        embed_texts(half, texts[:bs], batch_size=bs)
        torch.cuda.synchronize()
        t_half, Xh = timed(lambda: embed_texts(half, texts, batch_size=bs), args.repeats)
        t_full, Xf = timed(lambda: embed_texts(emb, texts, batch_size=bs), args.repeats)
        print(
            f"4. cuda fp16: {n / t_half:.0f} docs/s vs fp32 {n / t_full:.0f} docs/s "
            f"= {t_full / t_half:.2f}x (min cosine fp16 vs fp32 {(Xh * Xf).sum(1).min():.5f})"
        )


if __name__ == "__main__":
    main()

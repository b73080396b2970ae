"""Proxy models for mixture swarms: a small GPT-2-style LM trained from a seed on one
mixture's materialised documents, and its bits per byte on held-out texts.

The architecture and the training loop are the demo trainer's
(:mod:`analytics.geometry.train_demo`: ``GPT2LMHeadModel`` without dropout, AdamW with
decoupled weight decay 0.1 on matrices, linear warmup then cosine decay to 10%, gradient
clipping 1.0), smaller by default. Every proxy of a swarm shares one byte-level BPE
tokenizer (trained once on an equal-characters sample of every group), so their losses are
comparable; bits per byte do not depend on the tokenizer anyway.

Determinism: the model's initial weights and the order of the training blocks depend only
on ``seed``; on CPU the intra-op thread count is pinned (``threads``, default 1) because a
different count can change floating-point reduction order. Two runs with the same inputs,
seed, thread count and torch build give identical losses, whichever process runs them.
On CUDA, torch's deterministic algorithms are switched on for the run.

Bits per byte of a text: the summed next-token negative log-likelihood (nats) of its tokens
(the first predicted from ``<|endoftext|>``), in windows of ``block_size`` tokens, divided by
ln 2 and by the UTF-8 bytes of the text (truncated to ``eval_max_chars`` characters). The
byte-level tokenizer covers every byte exactly once, so this is the code length per byte.
A set's bits per byte pools nats and bytes over its texts.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analytics.tiny_lm import EOS, adamw, cut_blocks, lr_at, tiny_gpt2, token_stream

from .errors import MixtureError


@dataclass(frozen=True)
class ProxyConfig:
    """One proxy's model and training settings (recorded with every proxy run)."""

    steps: int = 200
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 2
    vocab_size: int = 2048
    block_size: int = 128
    batch_size: int = 8
    learning_rate: float = 3e-3
    warmup_steps: int | None = None
    threads: int = 1
    device: str = "auto"
    eval_max_chars: int = 2000
    eval_batch: int = 16

    def check(self) -> ProxyConfig:
        for name in (
            "steps",
            "n_layer",
            "n_embd",
            "n_head",
            "vocab_size",
            "block_size",
            "batch_size",
            "threads",
            "eval_max_chars",
            "eval_batch",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise MixtureError(f"proxy {name}: expected an integer >= 1, got {v!r}")
        if self.n_embd % self.n_head:
            raise MixtureError(f"proxy n_embd: {self.n_embd} is not divisible by n_head")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise MixtureError(f"proxy learning_rate: expected > 0, got {self.learning_rate!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise MixtureError(f"proxy device: expected auto, cpu or cuda, got {self.device!r}")
        return self

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.block_size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProxyConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover - torch is a dependency
        return "cpu"


@contextlib.contextmanager
def deterministic_torch(threads: int, device: str) -> Iterator[None]:
    """Pin CPU threads (and CUDA determinism) for the duration of one proxy."""
    import torch

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(int(threads))
    if device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        if device == "cuda":
            torch.use_deterministic_algorithms(old_det)


# ----------------------------------------------------------------------------- tokenizer


def train_swarm_tokenizer(texts: Sequence[str], out_dir: str | Path, *, vocab_size: int) -> Any:
    """The swarm's shared byte-level BPE tokenizer (the demo trainer's), saved in ``out_dir``."""
    from analytics.geometry.train_demo import train_tokenizer

    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if len(texts) < 2:
        raise MixtureError("tokenizer: expected at least 2 non-empty texts to train on")
    tok = train_tokenizer(texts, vocab_size=vocab_size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(out))
    return tok


def load_tokenizer(path: str | Path) -> Any:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(str(path))


def token_blocks(texts: Sequence[str], tok: Any, block_size: int) -> np.ndarray:
    """Texts tokenised, each followed by ``<|endoftext|>``, cut into ``block_size`` blocks."""
    stream = token_stream(texts, tok)
    if len(stream) < block_size:
        raise MixtureError(
            f"proxy data: only {len(stream)} tokens; need at least block_size={block_size}"
        )
    return cut_blocks(stream, block_size)


# ----------------------------------------------------------------------------- model


def build_model(cfg: ProxyConfig, *, vocab: int, eos: int) -> Any:
    """The tiny GPT-2 (:mod:`analytics.tiny_lm`) at the proxy's size."""
    return tiny_gpt2(
        vocab=vocab,
        eos=eos,
        block_size=cfg.block_size,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
    )


make_optimizer = adamw


def batch_order(n_blocks: int, steps: int, batch_size: int, seed: int) -> np.ndarray:
    """(steps, batch_size) block indices: seeded permutations, one per epoch (train_demo's)."""
    rng = np.random.default_rng(seed)
    out = np.empty((steps, batch_size), dtype=np.int64)
    perm = rng.permutation(n_blocks)
    cursor = 0
    for s in range(steps):
        if cursor + batch_size > len(perm):
            perm = rng.permutation(n_blocks)
            cursor = 0
        if batch_size > len(perm):  # fewer blocks than a batch: draw with repeats
            out[s] = rng.choice(n_blocks, size=batch_size, replace=True)
            continue
        out[s] = perm[cursor : cursor + batch_size]
        cursor += batch_size
    return out


@dataclass
class ProxyTraining:
    model: Any
    losses: list[float]
    seconds: float
    tokens: int
    device: str


def train_proxy(
    blocks: np.ndarray,
    cfg: ProxyConfig,
    *,
    vocab: int,
    eos: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> ProxyTraining:
    """Train one proxy for ``cfg.steps`` steps on ``blocks`` (n, block_size) from ``seed``."""
    import torch

    cfg.check()
    if blocks.ndim != 2 or blocks.shape[1] != cfg.block_size or blocks.shape[0] < 1:
        raise MixtureError(f"proxy data: expected (n, {cfg.block_size}) blocks, got {blocks.shape}")
    device = resolve_device(cfg.device)
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else max(1, cfg.steps // 20)
    order = batch_order(blocks.shape[0], cfg.steps, cfg.batch_size, seed)
    t0 = time.perf_counter()
    with deterministic_torch(cfg.threads, device):
        torch.manual_seed(seed)
        model = build_model(cfg, vocab=vocab, eos=eos).to(device)
        model.train()
        opt = make_optimizer(model, cfg.learning_rate)
        params = [p for p in model.parameters() if p.requires_grad]
        data = torch.from_numpy(blocks).to(device)
        idx = torch.from_numpy(order).to(device)
        losses = torch.empty(cfg.steps, dtype=torch.float32, device=device)
        for step in range(1, cfg.steps + 1):
            batch = data[idx[step - 1]]
            lr = lr_at(step, cfg.steps, cfg.learning_rate, warmup)
            for g in opt.param_groups:
                g["lr"] = lr
            loss = model(input_ids=batch, attention_mask=torch.ones_like(batch), labels=batch).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
            opt.step()
            losses[step - 1] = loss.detach()
            if progress is not None and (step % 10 == 0 or step == cfg.steps):
                progress(step, cfg.steps)
        out = losses.cpu().tolist()
    return ProxyTraining(
        model, out, time.perf_counter() - t0, cfg.steps * cfg.tokens_per_step, device
    )


def eval_windows(tok: Any, texts: Sequence[str], cfg: ProxyConfig) -> dict[str, Any]:
    """Texts tokenised for :func:`bits_per_byte_windows` (no tokenizer needed after this):
    ``windows`` (int32 arrays of up to ``block_size`` + 1 tokens, the first of each text's
    first window ``<|endoftext|>``), ``eos``, ``bytes``, ``tokens``, ``texts``."""
    eos = tok.convert_tokens_to_ids(EOS)
    bs = cfg.block_size
    windows: list[np.ndarray] = []
    n_bytes = 0
    n_tok = 0
    for text in texts:
        t = text[: cfg.eval_max_chars]
        if not t:
            continue
        ids = [eos, *tok(t, add_special_tokens=False)["input_ids"]]
        n_bytes += len(t.encode("utf-8"))
        n_tok += len(ids) - 1
        # windows of bs+1 tokens overlapping by one: each token after the first is predicted once
        for s in range(0, len(ids) - 1, bs):
            windows.append(np.asarray(ids[s : s + bs + 1], dtype=np.int32))
    if n_bytes == 0:
        raise MixtureError("evaluation texts: all empty")
    return {
        "windows": windows,
        "eos": int(eos),
        "bytes": int(n_bytes),
        "tokens": int(n_tok),
        "texts": len(texts),
    }


def bits_per_byte_windows(model: Any, ev: dict[str, Any], cfg: ProxyConfig) -> dict[str, float]:
    """Pooled bits per byte of the texts that :func:`eval_windows` prepared."""
    import torch

    eos = int(ev["eos"])
    windows = ev["windows"]
    device = next(model.parameters()).device
    model.eval()
    nats = 0.0
    with torch.no_grad(), deterministic_torch(cfg.threads, device.type):
        for i in range(0, len(windows), cfg.eval_batch):
            chunk = windows[i : i + cfg.eval_batch]
            width = max(len(w) for w in chunk)
            inp = torch.full((len(chunk), width - 1), eos, dtype=torch.long)
            lab = torch.full((len(chunk), width - 1), -100, dtype=torch.long)
            att = torch.zeros((len(chunk), width - 1), dtype=torch.long)
            for r, w in enumerate(chunk):
                w = torch.as_tensor(np.asarray(w, dtype=np.int64))
                inp[r, : len(w) - 1] = w[:-1]
                lab[r, : len(w) - 1] = w[1:]
                att[r, : len(w) - 1] = 1
            inp, lab, att = inp.to(device), lab.to(device), att.to(device)
            logits = model(input_ids=inp, attention_mask=att).logits.float()
            nll = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                lab.reshape(-1),
                ignore_index=-100,
                reduction="sum",
            )
            nats += float(nll)
    model.train()
    return {
        "bpb": nats / math.log(2) / ev["bytes"],
        "nats": nats,
        "bytes": float(ev["bytes"]),
        "tokens": float(ev["tokens"]),
        "texts": float(ev["texts"]),
    }


def bits_per_byte(model: Any, tok: Any, texts: Sequence[str], cfg: ProxyConfig) -> dict[str, float]:
    """Pooled bits per byte of ``texts`` (see the module docstring): ``bpb``, ``nats``,
    ``bytes``, ``tokens``, ``texts``."""
    return bits_per_byte_windows(model, eval_windows(tok, texts, cfg), cfg)

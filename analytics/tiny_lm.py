"""The tiny GPT-2 that mixscope trains itself: the demo checkpoint series (geometry) and the
proxy models of a mixture swarm share its configuration, optimizer and data blocks.

One definition, so a proxy trained for a swarm is the same kind of model as the demo
series the geometry views read: GPT-2 with no dropout, EOS as BOS/EOS/PAD, AdamW with weight
decay 0.1 on matrices only and betas (0.9, 0.95), texts joined by ``<|endoftext|>`` and cut
into full ``block_size`` blocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

EOS = "<|endoftext|>"


def tiny_gpt2(*, vocab: int, eos: int, block_size: int, n_embd: int, n_layer: int, n_head: int):
    """A freshly initialised ``GPT2LMHeadModel`` (no dropout) in training mode."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab,
        n_positions=block_size,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    model = GPT2LMHeadModel(config)
    model.train()
    return model


def adamw(model: Any, lr: float) -> Any:
    """AdamW with weight decay 0.1 on matrices, none on vectors, betas (0.9, 0.95)."""
    import torch

    decay = [p for _, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for _, p in model.named_parameters() if p.ndim < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.95),
    )


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warmup to ``peak`` over ``warmup`` steps, then cosine decay to 10% at ``total``."""
    if step <= warmup:
        return peak * step / max(1, warmup)
    frac = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def token_stream(texts: Sequence[str], tok: Any) -> list[int]:
    """The texts' token ids (no special tokens), each text followed by ``<|endoftext|>``."""
    eos = tok.convert_tokens_to_ids(EOS)
    stream: list[int] = []
    for ids in tok(list(texts), add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
        stream.append(eos)
    return stream


def cut_blocks(stream: Sequence[int], block_size: int) -> np.ndarray:
    """(n, block_size) int64 blocks of the stream, the incomplete tail dropped (n may be 0)."""
    n = len(stream) // block_size
    return np.asarray(stream[: n * block_size], dtype=np.int64).reshape(n, block_size)

"""Train a tiny GPT-2-style causal LM from scratch and save a checkpoint series.

:func:`train_demo_series` gives the geometry views a real training trajectory on any
corpus: a byte-level BPE tokenizer trained on the texts (``tokenizers``), a small
``GPT2LMHeadModel`` trained with a plain, seeded PyTorch loop (AdamW, linear warmup then
cosine decay to 10%, gradient clipping 1.0, no dropout), and HF Trainer-style
``checkpoint-{step}/`` directories (config.json, model.safetensors, tokenizer files,
trainer_state.json with the loss log) at log-spaced steps 1, 2, 4, ... and the final step.
With the defaults (4 layers, width 128, 4 heads, vocab 4096, 128-token blocks, batch 8,
600 steps) it takes a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analytics.tiny_lm import EOS, adamw, cut_blocks, lr_at, tiny_gpt2, token_stream

from .errors import GeometryInputError


@dataclass
class DemoSeries:
    """What :func:`train_demo_series` produced: the run directory, checkpoint paths in step
    order, their steps, the per-step training loss and the wall time in seconds."""

    out_dir: Path
    checkpoints: list[Path]
    steps: list[int]
    losses: list[float]
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)


def log_spaced_steps(total: int) -> list[int]:
    """1, 2, 4, ... (powers of two below ``total``) plus ``total`` itself."""
    if total < 1:
        raise GeometryInputError(f"steps: expected a positive integer, got {total}")
    out = []
    s = 1
    while s < total:
        out.append(s)
        s *= 2
    out.append(total)
    return out


def train_tokenizer(texts: Sequence[str], *, vocab_size: int = 4096, min_frequency: int = 2) -> Any:
    """Byte-level BPE tokenizer trained on ``texts`` (special token ``<|endoftext|>``),
    wrapped as a transformers fast tokenizer whose eos = bos = pad = ``<|endoftext|>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=EOS, eos_token=EOS, pad_token=EOS)


def _blocks(texts: Sequence[str], tok: Any, block_size: int) -> np.ndarray:
    stream = token_stream(texts, tok)
    if len(stream) < block_size:
        raise GeometryInputError(
            f"texts: only {len(stream)} tokens in total; need at least block_size={block_size}"
        )
    return cut_blocks(stream, block_size)


def _demo_inputs(
    texts: Sequence[str], n_embd: int, n_head: int, steps: int, save_steps: Sequence[int] | None
) -> tuple[list[str], list[int]]:
    """(the non-empty texts, the steps to save), or GeometryInputError."""
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if len(texts) < 2:
        raise GeometryInputError("texts: expected at least 2 non-empty texts to train on")
    if n_embd % n_head:
        raise GeometryInputError(f"n_embd: {n_embd} is not divisible by n_head={n_head}")
    save = sorted(set(save_steps)) if save_steps is not None else log_spaced_steps(steps)
    if any(s < 1 or s > steps for s in save):
        raise GeometryInputError(f"save_steps: expected values in 1..{steps}, got {save}")
    return texts, save


def _train_step(model: Any, opt: Any, batch: Any, lr: float) -> tuple[float, float]:
    """One optimizer step at learning rate ``lr``: (loss, gradient norm before clipping)."""
    import torch

    for g in opt.param_groups:
        g["lr"] = lr
    loss = model(input_ids=batch, attention_mask=torch.ones_like(batch), labels=batch).loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
    opt.step()
    return float(loss.item()), gnorm


def _sample_blocks(rng: Any, n_blocks: int, batch_size: int, steps: int) -> Iterator[np.ndarray]:
    """The block indices of each step: a seeded permutation per epoch, drawn without
    replacement until fewer than ``batch_size`` blocks are left."""
    perm = rng.permutation(n_blocks)
    cursor = 0
    for _ in range(steps):
        if cursor + batch_size > len(perm):
            perm = rng.permutation(n_blocks)
            cursor = 0
        yield perm[cursor : cursor + batch_size]
        cursor += batch_size


def _save_checkpoint(
    out: Path,
    model: Any,
    tok: Any,
    step: int,
    steps: int,
    epoch: float,
    batch_size: int,
    log: list[dict[str, Any]],
    seed: int,
) -> Path:
    """``out/checkpoint-{step}/``: model, tokenizer and a trainer_state.json like HF's."""
    ck = out / f"checkpoint-{step}"
    model.save_pretrained(str(ck))
    tok.save_pretrained(str(ck))
    state = {
        "global_step": step,
        "max_steps": steps,
        "epoch": epoch,
        "train_batch_size": batch_size,
        "log_history": list(log),
        "seed": seed,
    }
    (ck / "trainer_state.json").write_text(json.dumps(state, indent=1))
    return ck


def train_demo_series(
    texts: Sequence[str],
    out_dir: str | Path,
    *,
    steps: int = 600,
    seed: int = 0,
    n_layer: int = 4,
    n_embd: int = 128,
    n_head: int = 4,
    vocab_size: int = 4096,
    block_size: int = 128,
    batch_size: int = 8,
    learning_rate: float = 3e-3,
    warmup_steps: int | None = None,
    save_steps: Sequence[int] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> DemoSeries:
    """Train a tiny causal LM on ``texts`` and write ``out_dir/checkpoint-{step}/`` dirs.

    ``steps`` optimizer steps of ``batch_size`` blocks of ``block_size`` tokens sampled
    without replacement per epoch (seeded by ``seed``); ``save_steps`` defaults to
    :func:`log_spaced_steps` (1, 2, 4, ..., steps). The tokenizer is also saved in
    ``out_dir`` itself and ``out_dir/demo_config.json`` records every parameter.
    Deterministic for a given seed, thread count and torch build.
    """
    import torch

    texts, save = _demo_inputs(texts, n_embd, n_head, steps, save_steps)
    warmup = warmup_steps if warmup_steps is not None else max(1, steps // 20)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    t_start = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tok = train_tokenizer(texts, vocab_size=vocab_size)
    tok.save_pretrained(str(out))
    data = torch.from_numpy(_blocks(texts, tok, block_size))
    dims = {"block_size": block_size, "n_embd": n_embd, "n_layer": n_layer, "n_head": n_head}
    model = tiny_gpt2(vocab=len(tok), eos=tok.convert_tokens_to_ids(EOS), **dims)
    opt = adamw(model, learning_rate)
    params = {
        "steps": steps,
        "seed": seed,
        "n_layer": n_layer,
        "n_embd": n_embd,
        "n_head": n_head,
        "vocab_size": len(tok),
        "block_size": block_size,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "warmup_steps": warmup,
        "save_steps": save,
        "n_texts": len(texts),
        "n_blocks": int(data.shape[0]),
        "torch": torch.__version__,
    }
    (out / "demo_config.json").write_text(json.dumps(params, indent=2))

    log: list[dict[str, Any]] = []
    losses: list[float] = []
    ckpts: list[Path] = []
    blocks = _sample_blocks(rng, int(data.shape[0]), batch_size, steps)
    for step, idx in enumerate(blocks, start=1):
        lr = lr_at(step, steps, learning_rate, warmup)
        lv, gnorm = _train_step(model, opt, data[torch.from_numpy(np.asarray(idx))], lr)
        losses.append(lv)
        epoch = step * batch_size / data.shape[0]
        log.append(
            {"step": step, "loss": lv, "learning_rate": lr, "grad_norm": gnorm, "epoch": epoch}
        )
        if step in save:
            ck = _save_checkpoint(out, model, tok, step, steps, epoch, batch_size, log, seed)
            ckpts.append(ck)
        if progress is not None:
            progress(step, steps, f"step {step}/{steps} loss {lv:.3f}")
    seconds = time.perf_counter() - t_start
    del model, opt
    return DemoSeries(out, ckpts, list(save), losses, seconds, params)


def demo_series_summary(series: DemoSeries) -> dict[str, Any]:
    """JSON-friendly summary of a :class:`DemoSeries`."""
    d = asdict(series)
    d["out_dir"] = str(series.out_dir)
    d["checkpoints"] = [str(p) for p in series.checkpoints]
    return d

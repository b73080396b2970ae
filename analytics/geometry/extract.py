"""Hidden-state extraction from Hugging Face checkpoints (encoders and causal LMs).

Protocol (REFERENCES.md, "Hidden states from Hugging Face transformers"):

* texts are tokenised with the checkpoint's own tokenizer (its special tokens included),
  truncated to ``max_tokens``, sorted by length (longest first) and batched;
* batches are right-padded (pad token, else eos, else 0) with an attention mask;
* ONE forward pass per batch with ``output_hidden_states=True`` yields every layer:
  index 0 = embeddings, 1..L = blocks (the last one after the final norm);
* pooling: ``"last"`` gathers position ``mask.sum(1) - 1``; ``"mean"`` is the
  mask-weighted mean over real tokens (padding never contributes);
* fp32 on CPU, bf16 on CUDA; pooled vectors are returned as float32 numpy arrays in the
  original text order;
* causal LMs also yield the per-text loss in bits per byte: the summed next-token
  negative log-likelihood (nats) over the scored tokens (positions 1..n-1 that are not
  special tokens) / ln 2 / the UTF-8 byte length of the text those tokens cover;
* the model is deleted, garbage-collected and the CUDA cache emptied afterwards.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .checkpoints import Checkpoint, has_tokenizer, require_tokenizer
from .errors import ArchitectureError, CheckpointError, GeometryInputError, TokenizerMissingError

Pooling = Literal["last", "mean"]
Progress = Callable[[int, int, str], None]

_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


@dataclass
class ExtractionResult:
    """Output of :func:`extract_hidden_states`.

    hidden: layer index -> float32 array (N x D) in the input text order (0 = embeddings);
    bits_per_byte, nll_nats, n_bytes: per-text loss arrays (causal LMs; None otherwise);
    n_tokens: tokens per text after truncation; forward_passes: model calls made
    (= number of batches); num_layers: L (hidden states are 0..L); hidden_size: D;
    is_causal; dtype; device; model_class; seconds: wall time of the batches (forward pass,
    pooling and loss; loading and tokenising excluded).
    """

    hidden: dict[int, np.ndarray]
    bits_per_byte: np.ndarray | None
    nll_nats: np.ndarray | None
    n_bytes: np.ndarray | None
    n_tokens: np.ndarray
    forward_passes: int
    num_layers: int
    hidden_size: int
    is_causal: bool
    dtype: str
    device: str
    model_class: str
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return float(self.n_tokens.sum() / self.seconds) if self.seconds > 0 else float("nan")


def is_causal_config(config: Any) -> bool:
    """True when ``config.architectures`` names a causal-LM head class."""
    archs = getattr(config, "architectures", None) or []
    return any(str(a).endswith(_CAUSAL_SUFFIXES) for a in archs)


def resolve_device(device: str = "auto") -> str:
    """ "auto" -> "cuda" when available, else "cpu"; other values pass through."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _resolve_paths(
    model_path: str | Path | Checkpoint, tokenizer_path: str | Path | None, revision: str | None
) -> tuple[str, str, dict[str, Any]]:
    if isinstance(model_path, Checkpoint):
        tok = str(tokenizer_path) if tokenizer_path else require_tokenizer(model_path)
        return model_path.path, tok, model_path.load_kwargs()
    path = str(model_path)
    kwargs: dict[str, Any] = {"revision": revision} if revision else {}
    local = Path(path)
    if local.exists():
        if not (local / "config.json").is_file():
            raise CheckpointError(f"{local}: holds no checkpoint (no config.json)")
        if tokenizer_path is None:
            if has_tokenizer(local):
                tokenizer_path = local
            elif has_tokenizer(local.parent):
                tokenizer_path = local.parent
            else:
                raise TokenizerMissingError(
                    f"{local}: no tokenizer files in the checkpoint or its parent directory; "
                    "pass tokenizer_path=..."
                )
    return path, str(tokenizer_path or path), kwargs


def _normalise_layers(layers: str | Sequence[int], n_states: int) -> list[int]:
    if isinstance(layers, str):
        if layers == "all":
            return list(range(n_states))
        if layers in ("last", "final"):
            return [n_states - 1]
        raise GeometryInputError(
            f"layers: expected 'all', 'last' or a list of ints, got {layers!r}"
        )
    out: list[int] = []
    for layer in layers:
        i = int(layer)
        j = i + n_states if i < 0 else i
        if not 0 <= j < n_states:
            raise GeometryInputError(
                f"layers: layer {i} out of range; this model has hidden states 0..{n_states - 1}"
            )
        if j not in out:
            out.append(j)
    return out


def _max_positions(config: Any) -> int | None:
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        v = getattr(config, attr, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def _scored_bytes(
    text: str, ids: list[int], offsets: list[tuple[int, int]] | None, scored: list[int], tok: Any
) -> int:
    if not scored:
        return 0
    if offsets is not None:
        starts = [offsets[t][0] for t in scored if offsets[t][1] > offsets[t][0]]
        ends = [offsets[t][1] for t in scored if offsets[t][1] > offsets[t][0]]
        if starts:
            return len(text[min(starts) : max(ends)].encode("utf-8"))
    return len(tok.decode([ids[t] for t in scored]).encode("utf-8"))


def load_model_and_tokenizer(
    model_path: str | Path | Checkpoint,
    *,
    tokenizer_path: str | Path | None = None,
    revision: str | None = None,
    device: str = "auto",
    dtype: Any = None,
) -> tuple[Any, Any, bool, str]:
    """Load (model, tokenizer, is_causal, device) with the dtype rule fp32-CPU / bf16-CUDA.

    Causal LMs (``config.architectures`` ends in ForCausalLM / LMHeadModel) load with
    ``AutoModelForCausalLM`` so logits are available for the loss; everything else with
    ``AutoModel``. Encoder-decoder models are rejected with :class:`ArchitectureError`.
    """
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    path, tok_path, kw = _resolve_paths(model_path, tokenizer_path, revision)
    try:
        config = AutoConfig.from_pretrained(path, **kw)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read the model config ({exc})") from exc
    if getattr(config, "is_encoder_decoder", False):
        raise ArchitectureError(
            f"{path}: encoder-decoder architecture ({config.model_type}) is not supported; "
            "use an encoder or a decoder-only model"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(tok_path, **(kw if tok_path == path else {}))
    except (OSError, ValueError, TypeError) as exc:
        raise TokenizerMissingError(f"{tok_path}: cannot load a tokenizer ({exc})") from exc
    dev = resolve_device(device)
    if dtype is None:
        dtype = torch.bfloat16 if dev.startswith("cuda") else torch.float32
    causal = is_causal_config(config)
    cls = AutoModelForCausalLM if causal else AutoModel
    try:
        model = cls.from_pretrained(path, dtype=dtype, **kw)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot load the model weights ({exc})") from exc
    model.eval()
    model.to(dev)
    return model, tokenizer, causal, dev


def release_memory() -> None:
    """Collect garbage and empty the CUDA cache (call after dropping the model)."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


def _check_texts(texts: Sequence[str], pooling: str, batch_size: int, max_tokens: int) -> list[str]:
    """The texts as a list, or GeometryInputError naming the first bad input."""
    if pooling not in ("last", "mean"):
        raise GeometryInputError(f"pooling: expected 'last' or 'mean', got {pooling!r}")
    texts = list(texts)
    if not texts:
        raise GeometryInputError("texts: expected at least one text")
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise GeometryInputError(f"texts[{i}]: expected a non-empty string")
    if batch_size < 1 or max_tokens < 1:
        raise GeometryInputError(
            f"batch_size, max_tokens: expected positive integers, got {batch_size}, {max_tokens}"
        )
    return texts


@dataclass
class _Encoded:
    """The tokenised texts: ids, special-token masks, offsets (fast tokenizers), lengths."""

    ids: list[list[int]]
    special: list[list[int]]
    offsets: list[Any]
    lengths: np.ndarray
    pad_id: int


def _encode(model: Any, tok: Any, texts: list[str], max_tokens: int) -> _Encoded:
    """Tokenise with truncation to ``max_tokens`` (capped by the model's position limit)."""
    limit = _max_positions(model.config)
    max_len = min(max_tokens, limit) if limit else max_tokens
    fast = bool(getattr(tok, "is_fast", False))
    enc = tok(
        texts,
        add_special_tokens=True,
        truncation=True,
        max_length=max_len,
        return_special_tokens_mask=True,
        return_offsets_mapping=fast,
    )
    ids_list: list[list[int]] = enc["input_ids"]
    lengths = np.array([len(x) for x in ids_list])
    if (lengths == 0).any():
        i = int(np.flatnonzero(lengths == 0)[0])
        raise GeometryInputError(f"texts[{i}]: tokenises to zero tokens")
    pad_id = tok.pad_token_id
    if pad_id is None:
        pad_id = tok.eos_token_id if tok.eos_token_id is not None else 0
    return _Encoded(
        ids=ids_list,
        special=enc["special_tokens_mask"],
        offsets=enc["offset_mapping"] if fast else [None] * len(texts),
        lengths=lengths,
        pad_id=int(pad_id),
    )


def _padded(enc: _Encoded, idx: np.ndarray) -> tuple[Any, Any]:
    """(input ids, attention mask) of the texts ``idx``, right-padded to the longest."""
    import torch

    tmax = int(enc.lengths[idx].max())
    ids = torch.full((len(idx), tmax), enc.pad_id, dtype=torch.long)
    mask = torch.zeros((len(idx), tmax), dtype=torch.long)
    for r, i in enumerate(idx):
        ids[r, : enc.lengths[i]] = torch.tensor(enc.ids[i], dtype=torch.long)
        mask[r, : enc.lengths[i]] = 1
    return ids, mask


def _forward(model: Any, ids_d: Any, mask_d: Any, causal: bool) -> tuple[Any, Any]:
    """One forward pass with every hidden state: (output, hidden states)."""
    kwargs: dict[str, Any] = {
        "input_ids": ids_d,
        "attention_mask": mask_d,
        "output_hidden_states": True,
    }
    if causal:
        kwargs["use_cache"] = False
    out = model(**kwargs)
    hs = getattr(out, "hidden_states", None)
    if hs is None:
        raise ArchitectureError(
            f"{type(model).__name__}: the model returned no hidden states for "
            "output_hidden_states=True; this architecture is not supported"
        )
    return out, hs


def _allocate(hs: Any, layers: list[int], n: int) -> dict[int, np.ndarray]:
    """Zeroed float32 n x d arrays for the pooled vectors of each selected layer."""
    return {layer: np.zeros((n, int(hs[layer].shape[-1])), dtype=np.float32) for layer in layers}


def _bits_per_byte(nll: np.ndarray | None, nbytes: np.ndarray | None) -> np.ndarray | None:
    if nll is None or nbytes is None:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(nbytes > 0, nll / math.log(2) / np.maximum(nbytes, 1), np.nan)


def _pool_into(
    pooled: dict[int, np.ndarray], hs: Any, mask_d: Any, idx: np.ndarray, pooling: str, dev: str
) -> None:
    """Write the pooled vectors of the batch ``idx`` into ``pooled`` (layer -> n x d)."""
    import torch

    m = mask_d.unsqueeze(-1).to(torch.float32)
    last = mask_d.sum(1) - 1
    rows = torch.arange(len(idx), device=dev)
    for layer in pooled:
        h = hs[layer].to(torch.float32)
        if pooling == "last":
            v = h[rows, last]
        else:
            v = (h * m).sum(1) / m.sum(1)
        pooled[layer][idx] = v.cpu().numpy()


def _score_into(
    nll: np.ndarray,
    nbytes: np.ndarray,
    model: Any,
    out: Any,
    ids: Any,
    idx: np.ndarray,
    enc: _Encoded,
    texts: list[str],
    tok: Any,
    dev: str,
) -> None:
    """Summed next-token NLL (nats) and scored bytes of each text of the batch ``idx``
    (special tokens are not scored)."""
    import torch

    logits = getattr(out, "logits", None)
    if logits is None:
        raise ArchitectureError(f"{type(model).__name__}: causal LM returned no logits")
    for r, i in enumerate(idx):
        L = int(enc.lengths[i])
        spec = enc.special[i]
        scored = [t for t in range(1, L) if not spec[t]]
        if not scored:
            continue
        lg = logits[r, : L - 1].to(torch.float32)
        tgt = ids[r, 1:L].to(dev)
        tok_nll = torch.nn.functional.cross_entropy(lg, tgt, reduction="none")
        keep = torch.tensor([t - 1 for t in scored], device=dev)
        nll[i] = float(tok_nll[keep].sum().item())
        nbytes[i] = _scored_bytes(texts[i], enc.ids[i], enc.offsets[i], scored, tok)


def extract_hidden_states(
    model_path: str | Path | Checkpoint,
    texts: Sequence[str],
    *,
    pooling: Pooling = "last",
    max_tokens: int = 512,
    batch_size: int = 8,
    layers: str | Sequence[int] = "all",
    device: str = "auto",
    tokenizer_path: str | Path | None = None,
    revision: str | None = None,
    dtype: Any = None,
    compute_loss: bool = True,
    progress: Progress | None = None,
) -> ExtractionResult:
    """Pooled hidden states of every requested layer for ``texts``, one forward per batch.

    ``model_path``: local HF model directory, hub id (with ``revision``) or a
    :class:`Checkpoint`. ``pooling``: "last" (default; position mask.sum(1) - 1) or "mean"
    (mask-weighted). ``max_tokens`` (default 512) truncates each text (also capped by the
    model's position limit). ``batch_size`` texts per forward pass (default 8). ``layers``:
    "all" (default), "last", or indices into 0..L (negative allowed). ``device``: "auto"
    (CUDA if available), "cpu", "cuda", ...; dtype defaults to fp32 on CPU and bf16 on
    CUDA. ``compute_loss`` adds bits per byte for causal LMs. ``progress(done, total, msg)``
    is called after each batch. The model is freed before returning.
    """
    import torch

    texts = _check_texts(texts, pooling, batch_size, max_tokens)
    model, tok, causal, dev = load_model_and_tokenizer(
        model_path, tokenizer_path=tokenizer_path, revision=revision, device=device, dtype=dtype
    )
    try:
        enc = _encode(model, tok, texts, max_tokens)
        order = np.argsort(-enc.lengths, kind="stable")  # longest first: least padding
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

        pooled: dict[int, np.ndarray] | None = None
        n = len(texts)
        nll = np.full(n, np.nan) if causal and compute_loss else None
        nbytes = np.zeros(n, dtype=np.int64) if causal and compute_loss else None
        passes = 0
        seconds = 0.0
        num_layers = hidden_size = -1
        for b, idx in enumerate(batches):
            ids, mask = _padded(enc, idx)
            ids_d, mask_d = ids.to(dev), mask.to(dev)
            t0 = time.perf_counter()
            with torch.inference_mode():
                out, hs = _forward(model, ids_d, mask_d, causal)
                passes += 1
                if pooled is None:
                    num_layers, hidden_size = len(hs) - 1, int(hs[-1].shape[-1])
                    pooled = _allocate(hs, _normalise_layers(layers, len(hs)), n)
                _pool_into(pooled, hs, mask_d, idx, pooling, dev)
                if nll is not None and nbytes is not None:
                    _score_into(nll, nbytes, model, out, ids, idx, enc, texts, tok, dev)
                del out, hs
            seconds += time.perf_counter() - t0
            if progress is not None:
                progress(b + 1, len(batches), f"batch {b + 1}/{len(batches)}")
        assert pooled is not None
        return ExtractionResult(
            hidden=pooled,
            bits_per_byte=_bits_per_byte(nll, nbytes),
            nll_nats=nll,
            n_bytes=nbytes,
            n_tokens=enc.lengths.astype(np.int64),
            forward_passes=passes,
            num_layers=num_layers,
            hidden_size=hidden_size,
            is_causal=causal,
            dtype=str(next(model.parameters()).dtype).replace("torch.", ""),
            device=dev,
            model_class=type(model).__name__,
            seconds=seconds,
        )
    finally:
        del model
        release_memory()

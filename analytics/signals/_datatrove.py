"""Running HF datatrove's heuristic filters on single texts and capturing their verdicts.

datatrove filters take a `Document` and return True (keep) or (False, reason). Word and
sentence tokenisation:

* `tokenizer="spacy"` (default, datatrove's own choice for English): spaCy's rule-based
  blank tokenizer (`spacy.blank(lang)`, no model download). About 2 ms per 200-word page.
* `tokenizer="regex"`: a fast approximation (words = runs of word characters, optionally
  joined by an apostrophe, and single punctuation marks; sentences end at . ! ? followed by
  space). Rule verdicts can differ from datatrove's on edge cases; it is a separate version.

Either way the tokenizer is wrapped in a shared LRU cache (4096 texts), so the Gopher
quality, Gopher repetition and FineWeb signals tokenise each page once per batch between
them, and the statistics computed after a filter call reuse its tokenisation.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from analytics.signals.base import lazy_import


def datatrove_module(path: str) -> Any:
    return lazy_import(path, "datatrove spacy", "the heuristic quality signals")


TOKENIZERS = ("spacy", "regex")
_CACHE_SIZE = 4096
_created: set[tuple[str, str]] = set()


@lru_cache(maxsize=16)
def word_tokenizer(language: str, kind: str = "spacy") -> Any:
    """A cached datatrove WordTokenizer for `language` ("spacy" as datatrove, or "regex")."""
    import collections

    import regex

    wt = datatrove_module("datatrove.utils.word_tokenizers")
    if kind == "spacy":
        lazy_import("spacy", "spacy", "datatrove's word tokenizer")
        inner = wt.load_word_tokenizer(language)
    elif kind == "regex":
        inner = None
    else:
        raise ValueError(f"tokenizer must be one of {TOKENIZERS}, not {kind!r}")
    _created.add((language, kind))
    word_re = regex.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
    sent_end = regex.compile(r"(?<=[.!?…])\s+")

    class CachingTokenizer(wt.WordTokenizer):
        def __init__(self) -> None:
            super().__init__(language)
            self._words: collections.OrderedDict = collections.OrderedDict()
            self._spans: collections.OrderedDict = collections.OrderedDict()

        def _cached(self, cache: collections.OrderedDict, text: str, fn: Any) -> Any:
            hit = cache.get(text)
            if hit is not None:
                cache.move_to_end(text)
                return hit
            val = fn(text)
            cache[text] = val
            if len(cache) > _CACHE_SIZE:
                cache.popitem(last=False)
            return val

        def word_tokenize(self, text: str) -> list[str]:
            if inner is not None:
                return self._cached(self._words, text, inner.word_tokenize)
            return self._cached(self._words, text, word_re.findall)

        def sent_tokenize(self, text: str) -> list[str]:
            return [text[a:b] for a, b in self.span_tokenize(text)]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            if inner is not None:
                return self._cached(self._spans, text, inner.span_tokenize)

            def spans(t: str) -> list[tuple[int, int]]:
                out, start = [], 0
                for m in sent_end.finditer(t):
                    out.append((start, m.start()))
                    start = m.end()
                out.append((start, len(t)))
                return [(a, b) for a, b in out if b > a] or [(0, len(t))]

            return self._cached(self._spans, text, spans)

        def __repr__(self) -> str:
            return f"CachingTokenizer({language!r}, {kind!r})"

    return CachingTokenizer()


@lru_cache(maxsize=32)
def _filter_instance(cls_name: str, frozen_params: tuple) -> Any:
    filters = datatrove_module("datatrove.pipeline.filters")
    return getattr(filters, cls_name)(**dict(frozen_params))


def make_filter(cls_name: str, params: dict[str, Any]) -> Any:
    """A cached datatrove filter instance built from JSON-able params.

    `language` + `tokenizer` params become datatrove's `language=` argument (a WordTokenizer).
    """

    def freeze(v: Any) -> Any:
        return tuple(freeze(x) for x in v) if isinstance(v, list) else v

    params = dict(params)
    kind = params.pop("tokenizer", "spacy")
    params["language"] = word_tokenizer(params.get("language", "en"), kind)
    return _filter_instance(cls_name, tuple(sorted((k, freeze(v)) for k, v in params.items())))


def run_filter(flt: Any, text: str) -> tuple[bool, str | None, str]:
    """(passed, failing rule or None, text after the filter: C4 drops lines in place)."""
    data = datatrove_module("datatrove.data")
    if not text.strip():
        return False, "empty", text
    doc = data.Document(text=text, id="")
    try:
        res = flt.filter(doc)
    except Exception as exc:  # a rule that divides by zero on a degenerate page
        return False, f"error:{type(exc).__name__}", text
    if isinstance(res, tuple):
        ok, reason = bool(res[0]), res[1]
    else:
        ok, reason = bool(res), None
    if not ok and not reason:
        reason = "failed"
    return ok, (None if ok else str(reason)), doc.text


def split_words(text: str, language: str, kind: str = "spacy") -> list[str]:
    """datatrove's `split_into_words` with the shared cached tokenizer."""
    text_mod = datatrove_module("datatrove.utils.text")
    return text_mod.split_into_words(text, word_tokenizer(language, kind))


TOKENIZER_PARAM = (
    "spacy",
    "word/sentence tokenizer: 'spacy' (datatrove's, exact) or 'regex' (fast approximation)",
)


def check_tokenizer(signal: Any) -> None:
    """Raise SignalError unless the signal's `tokenizer` parameter is known."""
    from analytics.signals.base import SignalError

    if signal.params.get("tokenizer") not in TOKENIZERS:
        raise SignalError(
            f"{signal.name}: parameter tokenizer must be one of {', '.join(TOKENIZERS)}"
        )


def clear_caches() -> None:
    """Forget cached tokenisations (benchmarks; memory)."""
    for tok in _live_tokenizers():
        tok._words.clear()
        tok._spans.clear()
    datatrove_module("datatrove.utils.text").split_into_parts.cache_clear()


def _live_tokenizers() -> list[Any]:
    info = word_tokenizer.cache_info()
    if not info.currsize:
        return []
    return [word_tokenizer(lang, kind) for lang, kind in _created]

"""Gopher quality rules (Rae et al. 2021, table A1) via datatrove's GopherQualityFilter.

Verdict: datatrove's `filter(doc)`; the failing rule is the first rule that fails, in
datatrove's order (`gopher_short_doc`, `gopher_long_doc`, `gopher_below_avg_threshold`,
`gopher_above_avg_threshold`, `gopher_too_many_hashes`, `gopher_too_many_ellipsis`,
`gopher_too_many_bullets`, `gopher_too_many_end_ellipsis`, `gopher_below_alpha_threshold`,
`gopher_enough_stop_words`). The numbers are recomputed with datatrove's definitions
(words from datatrove's tokenizer for `language`; "non-symbol words" contain at least one
character outside datatrove's punctuation set).
"""

from __future__ import annotations

import pyarrow as pa

from analytics.signals._datatrove import (
    TOKENIZER_PARAM,
    check_tokenizer,
    datatrove_module,
    make_filter,
    run_filter,
    split_words,
)
from analytics.signals.base import Column, Signal, SignalError, texts_of
from analytics.signals.registry import register

DEFAULT_STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"]


@register
class GopherQuality(Signal):
    name = "gopher_quality"
    description = "Gopher quality heuristics (datatrove GopherQualityFilter): pass/fail + numbers"
    params_doc = {
        "min_doc_words": (50, "fail below this many non-symbol words"),
        "max_doc_words": (100_000, "fail above this many non-symbol words"),
        "min_avg_word_length": (3, "fail if mean non-symbol word length is below"),
        "max_avg_word_length": (10, "fail if mean non-symbol word length is above"),
        "max_symbol_word_ratio": (0.1, "fail if '#' or ellipsis count per word exceeds"),
        "max_bullet_lines_ratio": (0.9, "fail if more lines than this start with a bullet"),
        "max_ellipsis_lines_ratio": (0.3, "fail if more lines than this end with an ellipsis"),
        "max_non_alpha_words_ratio": (0.8, "fail if fewer words than this contain a letter"),
        "min_stop_words": (2, "fail if fewer distinct stop words occur"),
        "stop_words": (DEFAULT_STOP_WORDS, "the stop-word list"),
        "language": ("en", "datatrove language code for word tokenisation"),
        "tokenizer": TOKENIZER_PARAM,
    }
    columns = (
        Column("gopher_quality_pass", "BOOLEAN", "all Gopher quality rules pass"),
        Column("gopher_quality_reason", "VARCHAR", "first failing rule (null when passing)"),
        Column("gopher_n_words", "BIGINT", "number of non-symbol words"),
        Column("gopher_mean_word_length", "DOUBLE", "mean length of non-symbol words"),
        Column("gopher_hash_word_ratio", "DOUBLE", "count('#') / words"),
        Column("gopher_ellipsis_word_ratio", "DOUBLE", "count('...' or '…') / words"),
        Column("gopher_bullet_lines_ratio", "DOUBLE", "lines starting with • or - / lines"),
        Column(
            "gopher_end_ellipsis_lines_ratio", "DOUBLE", "lines ending with an ellipsis / lines"
        ),
        Column("gopher_alpha_words_ratio", "DOUBLE", "words with a letter / words"),
        Column("gopher_stop_words", "BIGINT", "distinct stop words present"),
    )

    def validate(self) -> None:
        check_tokenizer(self)
        if not isinstance(self.params["stop_words"], list):
            raise SignalError("gopher_quality: parameter stop_words must be a list of strings")

    def compute(self, batch: pa.Table) -> pa.Table:
        flt = make_filter("GopherQualityFilter", self.params)
        punct = datatrove_module("datatrove.utils.text").PUNCTUATION_SET
        stop = set(self.params["stop_words"])
        lang = self.params["language"]
        out: dict[str, list] = {c.name: [] for c in self.columns}
        for text in texts_of(batch):
            ok, reason, _ = run_filter(flt, text)
            out["gopher_quality_pass"].append(ok)
            out["gopher_quality_reason"].append(reason)
            words = split_words(text, lang, self.params["tokenizer"]) if text.strip() else []
            n = len(words)
            nonsym = [w for w in words if any(ch not in punct for ch in w)]
            lines = text.splitlines() or [""]
            out["gopher_n_words"].append(len(nonsym))
            out["gopher_mean_word_length"].append(
                sum(map(len, nonsym)) / len(nonsym) if nonsym else None
            )
            out["gopher_hash_word_ratio"].append(text.count("#") / n if n else None)
            out["gopher_ellipsis_word_ratio"].append(
                (text.count("...") + text.count("…")) / n if n else None
            )
            out["gopher_bullet_lines_ratio"].append(
                sum(s.lstrip().startswith(("•", "-")) for s in lines) / len(lines)
            )
            out["gopher_end_ellipsis_lines_ratio"].append(
                sum(s.rstrip().endswith(("...", "…")) for s in lines) / len(lines)
            )
            out["gopher_alpha_words_ratio"].append(
                sum(any(c.isalpha() for c in w) for w in words) / n if n else None
            )
            out["gopher_stop_words"].append(len(stop.intersection(words)))
        return self._result(batch, out)

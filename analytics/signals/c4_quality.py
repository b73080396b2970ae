"""C4 rules (Raffel et al. 2020) via datatrove's C4QualityFilter.

The filter drops lines (no terminal punctuation, fewer than 3 words, "javascript", cookie /
policy phrases, over-long words) and fails the whole page on `lorem_ipsum`, `curly_bracket`
or `too_few_sentences` (fewer than `min_num_sentences` in the kept lines). Reported: pass, the
failing rule, the page's line count and, for pages that pass, how many lines and what
fraction of characters the line rules keep (null for failing pages, where datatrove stops
before producing the kept text). The "bad words" page filter of the paper is not part of
this rule set (datatrove does not implement it in C4QualityFilter either).
"""

from __future__ import annotations

import pyarrow as pa

from analytics.signals._datatrove import (
    TOKENIZER_PARAM,
    check_tokenizer,
    make_filter,
    run_filter,
)
from analytics.signals.base import Column, Signal, texts_of
from analytics.signals.registry import register


@register
class C4Quality(Signal):
    name = "c4_quality"
    description = "C4 heuristic rules (datatrove C4QualityFilter): pass/fail + kept lines"
    params_doc = {
        "split_paragraph": (True, "apply line rules to lines (C4) rather than sentences"),
        "remove_citations": (True, "strip [1], [edit], [citation needed] before the rules"),
        "filter_no_terminal_punct": (True, "drop lines without terminal punctuation"),
        "min_num_sentences": (5, "fail pages with fewer kept sentences (-1 disables)"),
        "min_words_per_line": (3, "drop lines with fewer words (-1 disables)"),
        "max_word_length": (1000, "drop lines with a longer word (-1 disables)"),
        "filter_lorem_ipsum": (True, "fail pages containing 'lorem ipsum'"),
        "filter_javascript": (True, "drop lines mentioning javascript"),
        "filter_curly_bracket": (True, "fail pages containing '{'"),
        "filter_policy": (True, "drop lines with cookie / terms-of-use phrases"),
        "language": ("en", "datatrove language code for sentence splitting"),
        "tokenizer": TOKENIZER_PARAM,
    }
    columns = (
        Column("c4_pass", "BOOLEAN", "the page passes the C4 rules"),
        Column("c4_reason", "VARCHAR", "failing rule (null when passing)"),
        Column("c4_n_lines", "BIGINT", "lines in the page"),
        Column("c4_kept_lines", "BIGINT", "lines kept by the line rules (passing pages)"),
        Column("c4_kept_char_frac", "DOUBLE", "chars kept / chars (passing pages)"),
    )

    def validate(self) -> None:
        check_tokenizer(self)

    def compute(self, batch: pa.Table) -> pa.Table:
        flt = make_filter("C4QualityFilter", self.params)
        out: dict[str, list] = {c.name: [] for c in self.columns}
        for text in texts_of(batch):
            ok, reason, kept = run_filter(flt, text)
            out["c4_pass"].append(ok)
            out["c4_reason"].append(reason)
            out["c4_n_lines"].append(len(text.splitlines()))
            if ok:
                out["c4_kept_lines"].append(len(kept.splitlines()))
                out["c4_kept_char_frac"].append(len(kept) / len(text) if text else None)
            else:
                out["c4_kept_lines"].append(None)
                out["c4_kept_char_frac"].append(None)
        return self._result(batch, out)

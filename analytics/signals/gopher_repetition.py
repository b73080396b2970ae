"""Gopher repetition rules (Rae et al. 2021, table A1) via datatrove's GopherRepetitionFilter.

Verdict: datatrove's `filter(doc)`; failing rules in its order: `dup_para_frac`,
`dup_para_char_frac`, `dup_line_frac`, `dup_line_char_frac`, `top_{n}_gram`,
`duplicated_{n}_n_grams`. The numbers use datatrove's own helpers (paragraphs split on
two or more newlines, lines on one or more; n-gram fractions are characters over len(text))
and are always computed for the paper's n: top 2/3/4-grams and duplicated 5..10-grams.
"""

from __future__ import annotations

import re

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

TOP_NS = (2, 3, 4)
DUP_NS = (5, 6, 7, 8, 9, 10)
_PARA = re.compile(r"\n{2,}")
_LINE = re.compile("\n+")


@register
class GopherRepetition(Signal):
    name = "gopher_repetition"
    description = "Gopher repetition heuristics (datatrove GopherRepetitionFilter)"
    params_doc = {
        "dup_line_frac": (0.3, "max fraction of duplicated lines"),
        "dup_para_frac": (0.3, "max fraction of duplicated paragraphs"),
        "dup_line_char_frac": (0.2, "max fraction of characters in duplicated lines"),
        "dup_para_char_frac": (0.2, "max fraction of characters in duplicated paragraphs"),
        "top_n_grams": ([[2, 0.2], [3, 0.18], [4, 0.16]], "[n, max char fraction of top n-gram]"),
        "dup_n_grams": (
            [[5, 0.15], [6, 0.14], [7, 0.13], [8, 0.12], [9, 0.11], [10, 0.10]],
            "[n, max char fraction of duplicated n-grams]",
        ),
        "language": ("en", "datatrove language code for word tokenisation"),
        "tokenizer": TOKENIZER_PARAM,
    }
    columns = (
        Column("gopher_rep_pass", "BOOLEAN", "all Gopher repetition rules pass"),
        Column("gopher_rep_reason", "VARCHAR", "first failing rule (null when passing)"),
        Column("rep_dup_para_frac", "DOUBLE", "duplicated paragraphs / paragraphs"),
        Column("rep_dup_para_char_frac", "DOUBLE", "chars in duplicated paragraphs / chars"),
        Column("rep_dup_line_frac", "DOUBLE", "duplicated lines / lines"),
        Column("rep_dup_line_char_frac", "DOUBLE", "chars in duplicated lines / chars"),
        *(
            Column(
                f"rep_top_{n}gram_char_frac",
                "DOUBLE",
                f"chars of the most frequent {n}-gram times its count / chars",
            )
            for n in TOP_NS
        ),
        *(
            Column(f"rep_dup_{n}gram_char_frac", "DOUBLE", f"chars in duplicated {n}-grams / chars")
            for n in DUP_NS
        ),
    )

    def validate(self) -> None:
        check_tokenizer(self)
        for key in ("top_n_grams", "dup_n_grams"):
            val = self.params[key]
            if not all(isinstance(p, list) and len(p) == 2 for p in val):
                raise SignalError(
                    f"gopher_repetition: parameter {key} must be [[n, fraction], ...]"
                )

    def compute(self, batch: pa.Table) -> pa.Table:
        params = dict(self.params)
        params["top_n_grams"] = [tuple(p) for p in params["top_n_grams"]]
        params["dup_n_grams"] = [tuple(p) for p in params["dup_n_grams"]]
        flt = make_filter("GopherRepetitionFilter", params)
        rep = datatrove_module("datatrove.pipeline.filters.gopher_repetition_filter")
        lang = self.params["language"]
        out: dict[str, list] = {c.name: [] for c in self.columns}
        for text in texts_of(batch):
            ok, reason, _ = run_filter(flt, text)
            out["gopher_rep_pass"].append(ok)
            out["gopher_rep_reason"].append(reason)
            if not text:
                for c in self.columns[2:]:
                    out[c.name].append(None)
                continue
            size = len(text)
            paras = _PARA.split(text.strip())
            dup, dup_chars = rep.find_duplicates(paras)
            out["rep_dup_para_frac"].append(dup / len(paras))
            out["rep_dup_para_char_frac"].append(dup_chars / size)
            lines = _LINE.split(text)
            dup, dup_chars = rep.find_duplicates(lines)
            out["rep_dup_line_frac"].append(dup / len(lines))
            out["rep_dup_line_char_frac"].append(dup_chars / size)
            words = split_words(text, lang, self.params["tokenizer"])
            for n in TOP_NS:
                grams = rep.get_n_grams(words, n)
                out[f"rep_top_{n}gram_char_frac"].append(
                    rep.find_top_duplicate(grams) / size if grams else 0.0
                )
            for n in DUP_NS:
                out[f"rep_dup_{n}gram_char_frac"].append(rep.find_all_duplicate(words, n) / size)
        return self._result(batch, out)

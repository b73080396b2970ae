"""FineWeb's extra quality rules (Penedo et al. 2024) via datatrove's FineWebQualityFilter.

Rules, in datatrove's order: `line_punct_ratio` (fraction of non-empty lines ending in
terminal punctuation below 0.12), `short_line_ratio` (fraction of lines of <= 30 chars above
0.67), `char_dup_ratio` (chars in duplicated lines / chars without newlines above 0.01),
`list_ratio` (newlines per word above 0.3). The four ratios are reported with the same
definitions.
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
from analytics.signals.base import Column, Signal, texts_of
from analytics.signals.registry import register


@register
class FineWebQuality(Signal):
    name = "fineweb_quality"
    description = "FineWeb quality rules (datatrove FineWebQualityFilter): pass/fail + ratios"
    params_doc = {
        "line_punct_thr": (0.12, "min fraction of lines ending in terminal punctuation"),
        "line_punct_exclude_zero": (False, "do not fail pages where that fraction is 0"),
        "stop_chars": (None, "terminal characters (null: datatrove's TERMINAL_PUNCTUATION)"),
        "short_line_thr": (0.67, "max fraction of short lines"),
        "short_line_length": (30, "a line of at most this many chars is short"),
        "char_duplicates_ratio": (0.01, "max fraction of chars in duplicated lines"),
        "new_line_ratio": (0.3, "max newlines per word"),
        "language": ("en", "datatrove language code for word tokenisation"),
        "tokenizer": TOKENIZER_PARAM,
    }
    columns = (
        Column("fineweb_pass", "BOOLEAN", "the page passes the FineWeb rules"),
        Column("fineweb_reason", "VARCHAR", "failing rule (null when passing)"),
        Column("fineweb_line_punct_ratio", "DOUBLE", "non-empty lines ending in terminal punct."),
        Column("fineweb_short_line_ratio", "DOUBLE", "non-empty lines of <= short_line_length"),
        Column("fineweb_char_dup_ratio", "DOUBLE", "chars in duplicated lines / chars"),
        Column("fineweb_list_ratio", "DOUBLE", "newlines / words"),
    )

    def validate(self) -> None:
        check_tokenizer(self)

    def compute(self, batch: pa.Table) -> pa.Table:
        params = dict(self.params)
        if params["stop_chars"] is not None:
            params["stop_chars"] = tuple(params["stop_chars"])
        flt = make_filter("FineWebQualityFilter", params)
        text_mod = datatrove_module("datatrove.utils.text")
        rep = datatrove_module("datatrove.pipeline.filters.gopher_repetition_filter")
        stop = tuple(params["stop_chars"] or text_mod.TERMINAL_PUNCTUATION)
        short = self.params["short_line_length"]
        out: dict[str, list] = {c.name: [] for c in self.columns}
        for text in texts_of(batch):
            ok, reason, _ = run_filter(flt, text)
            out["fineweb_pass"].append(ok)
            out["fineweb_reason"].append(reason)
            lines = [ln for ln in text.split("\n") if ln.strip() != ""]
            if not lines:
                for c in self.columns[2:]:
                    out[c.name].append(None)
                continue
            out["fineweb_line_punct_ratio"].append(
                sum(ln.endswith(stop) for ln in lines) / len(lines)
            )
            out["fineweb_short_line_ratio"].append(
                sum(len(ln) <= short for ln in lines) / len(lines)
            )
            flat = len(text.replace("\n", ""))
            out["fineweb_char_dup_ratio"].append(
                rep.find_duplicates(lines)[1] / flat if flat else None
            )
            n_words = len(split_words(text, self.params["language"], self.params["tokenizer"]))
            out["fineweb_list_ratio"].append(text.count("\n") / n_words if n_words else None)
        return self._result(batch, out)

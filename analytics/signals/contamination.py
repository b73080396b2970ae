"""Evaluation-set contamination: word n-gram overlap with the corpus (GPT-3 style, n = 13).

Tokens are normalised words (lower-case; letters, digits and combining marks; everything else
separates words; see `_text.py`). Every n-gram of every evaluation text is hashed (64-bit)
into a sorted array; the corpus is scanned in Arrow batches, its n-grams hashed in bulk and
looked up with a binary search (`np.isin`): no all-pairs comparison, memory bounded by the
evaluation set plus one batch. Documents with at least one shared n-gram are flagged; only
for those, the words are located again with their character offsets and overlapping matched
n-grams are merged into spans `[start, end)` of the original text.

An evaluation text with fewer than n words has no n-gram and can never match (counted in
`EvalIndex.too_short`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from analytics.signals._text import (
    hash_strings,
    ngram_hashes,
    ngram_hashes_of_words,
    tokenize,
    word_spans,
)
from analytics.signals.base import SignalError


class EvalFileError(SignalError):
    """An evaluation file that cannot be read or lacks its text field."""


def read_eval_texts(path: str | Path, *, field: str = "text") -> list[str]:
    """Texts from a JSONL (one object per line) or CSV (header row) evaluation file.

    Raises EvalFileError naming the file (and line) when it is missing, malformed, empty, or
    when a record has no string `field`.
    """
    p = Path(path)
    if not p.is_file():
        raise EvalFileError(f"{p}: no such evaluation file")
    suffix = p.suffix.lower()
    texts: list[str] = []
    try:
        if suffix in (".jsonl", ".json", ".ndjson"):
            with p.open(encoding="utf-8-sig") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise EvalFileError(
                            f"{p}: line {lineno}: not valid JSON ({exc.msg})"
                        ) from exc
                    if not isinstance(rec, dict) or field not in rec:
                        keys = ", ".join(rec) if isinstance(rec, dict) else type(rec).__name__
                        raise EvalFileError(
                            f"{p}: line {lineno}: no field {field!r} (has: {keys}); "
                            "choose the text field with field=..."
                        )
                    if not isinstance(rec[field], str):
                        raise EvalFileError(f"{p}: line {lineno}: field {field!r} is not a string")
                    texts.append(rec[field])
        elif suffix in (".csv", ".tsv"):
            with p.open(encoding="utf-8-sig", newline="") as fh:
                reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
                if reader.fieldnames is None:
                    raise EvalFileError(f"{p}: empty CSV file (expected a header row)")
                if field not in reader.fieldnames:
                    raise EvalFileError(
                        f"{p}: no column {field!r} (has: {', '.join(reader.fieldnames)}); "
                        "choose the text field with field=..."
                    )
                for row in reader:
                    texts.append(row[field] or "")
        else:
            raise EvalFileError(
                f"{p}: unsupported evaluation file type {suffix!r}; use .jsonl or .csv"
            )
    except UnicodeDecodeError as exc:
        raise EvalFileError(f"{p}: not UTF-8 text") from exc
    if not texts:
        raise EvalFileError(f"{p}: no evaluation texts")
    return texts


@dataclass(frozen=True)
class EvalIndex:
    """Sorted, unique n-gram hashes of an evaluation set and, for each, EVERY evaluation text
    that contains it: the texts of hashes[i] are owners[owner_ptr[i]:owner_ptr[i + 1]]
    (an n-gram shared by several evaluation texts counts for each of them)."""

    n: int
    hashes: np.ndarray
    owner_ptr: np.ndarray
    owners: np.ndarray
    n_texts: int
    too_short: int

    def owners_of(self, positions: np.ndarray) -> list[int]:
        """The sorted evaluation text indices owning any of the hashes at `positions`."""
        out: set[int] = set()
        for i in np.unique(positions).tolist():
            out.update(self.owners[self.owner_ptr[i] : self.owner_ptr[i + 1]].tolist())
        return sorted(out)


def build_eval_index(texts: Iterable[str], *, n: int = 13) -> EvalIndex:
    """Hash every word n-gram of every evaluation text; each distinct n-gram keeps the list of
    all evaluation texts that contain it."""
    if n < 1:
        raise SignalError("n must be >= 1")
    texts = list(texts)
    tok = tokenize(texts)
    h, doc, _ = ngram_hashes(tok, n)
    order = np.lexsort((doc, h))
    h, doc = h[order], np.asarray(doc)[order]
    if len(h):
        pair_new = np.concatenate([[True], (h[1:] != h[:-1]) | (doc[1:] != doc[:-1])])
        h, doc = h[pair_new], doc[pair_new]  # one (n-gram, text) pair each
        first = np.concatenate([[True], h[1:] != h[:-1]])
        starts = np.flatnonzero(first)
    else:
        starts = np.zeros(0, dtype=np.int64)
    ptr = np.append(starts, len(h)).astype(np.int64)
    too_short = int(np.sum(tok.counts < n))
    return EvalIndex(n, h[starts], ptr, doc.astype(np.int64), len(texts), too_short)


def _merge(starts: np.ndarray, ends: np.ndarray) -> list[list[int]]:
    spans: list[list[int]] = []
    for s, e in sorted(zip(starts.tolist(), ends.tolist(), strict=True)):
        if spans and s <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], e)
        else:
            spans.append([s, e])
    return spans


def match_spans(text: str, index: EvalIndex) -> tuple[list[list[int]], list[int], int]:
    """(merged char spans, matched eval text indices, matched n-gram count) for one text."""
    words, starts, ends = word_spans(text)
    if len(words) < index.n:
        return [], [], 0
    ng = ngram_hashes_of_words(hash_strings(words), index.n)
    pos = np.searchsorted(index.hashes, ng)
    pos = np.minimum(pos, max(len(index.hashes) - 1, 0))
    hit = index.hashes[pos] == ng if len(index.hashes) else np.zeros(len(ng), bool)
    where = np.flatnonzero(hit)
    spans = _merge(starts[where], ends[where + index.n - 1])
    owners = index.owners_of(pos[where])
    return spans, owners, int(len(where))


def scan_batch(batch: pa.Table, index: EvalIndex) -> list[dict]:
    """Flagged rows of one Arrow batch (columns doc_id, text, optional source)."""
    tok = tokenize(batch.column("text"))
    h, doc, _ = ngram_hashes(tok, index.n)
    if len(h) == 0 or len(index.hashes) == 0:
        return []
    flagged = np.unique(doc[np.isin(h, index.hashes)])
    out = []
    if len(flagged) == 0:
        return out
    ids = batch.column("doc_id").to_pylist()
    texts = batch.column("text").to_pylist()
    sources = (
        batch.column("source").to_pylist() if "source" in batch.column_names else [None] * len(ids)
    )
    for i in flagged.tolist():
        spans, owners, n_match = match_spans(texts[i] or "", index)
        if not spans:  # tokenisers disagreed on an exotic character: not confirmed
            continue
        out.append(
            {
                "doc_id": ids[i],
                "source": sources[i],
                "n_matched_ngrams": n_match,
                "spans": spans,
                "eval_ids": owners,
                "matched_chars": sum(e - s for s, e in spans),
            }
        )
    return out


@dataclass
class ContaminationResult:
    flagged: pd.DataFrame  # doc_id, source, n_matched_ngrams, spans, eval_ids, matched_chars
    per_source: pd.DataFrame  # source, docs, flagged_docs, flagged_frac
    n: int
    eval_texts: int
    eval_too_short: int
    eval_matched: list[int] = field(default_factory=list)


def find_contamination(
    con: duckdb.DuckDBPyConnection,
    eval_texts: Iterable[str] | EvalIndex,
    *,
    n: int = 13,
    batch_size: int = 2048,
    progress: Callable[[int, int], None] | None = None,
) -> ContaminationResult:
    """Scan `documents` for n-grams shared with the evaluation texts.

    Returns flagged documents with their matching character spans and, per source, the number
    of documents and flagged documents. `eval_matched` lists the evaluation texts (indices)
    found in the corpus.
    """
    from analytics.signals.store import query_reader, sub_cursor

    index = eval_texts if isinstance(eval_texts, EvalIndex) else build_eval_index(eval_texts, n=n)
    cur = sub_cursor(con)
    per_source = cur.execute(
        "SELECT source, count(*) AS docs FROM documents GROUP BY source ORDER BY source"
    ).df()
    total = int(per_source["docs"].sum()) if len(per_source) else 0
    rows: list[dict] = []
    done = 0
    if total and len(index.hashes):
        reader = query_reader(
            cur,
            "SELECT d.doc_id, d.source, t.text FROM documents d "
            "JOIN document_text t USING (doc_id)",
            None,
            batch_size,
        )
        for rb in reader:
            rows.extend(scan_batch(pa.Table.from_batches([rb]), index))
            done += rb.num_rows
            if progress:
                progress(done, total)
        del reader
    cur.close()
    return _result(rows, per_source, index)


def _result(rows: list[dict], per_source: pd.DataFrame, index: EvalIndex) -> ContaminationResult:
    """The result of a scan: flagged rows (any order) and the documents per source."""
    flagged = (
        pd.DataFrame(
            rows,
            columns=["doc_id", "source", "n_matched_ngrams", "spans", "eval_ids", "matched_chars"],
        )
        .sort_values("doc_id", kind="stable")
        .reset_index(drop=True)
    )
    counts = flagged.groupby("source").size() if len(flagged) else pd.Series(dtype="int64")
    per_source["flagged_docs"] = per_source["source"].map(counts).fillna(0).astype("int64")
    per_source["flagged_frac"] = per_source["flagged_docs"] / per_source["docs"].where(
        per_source["docs"] > 0
    )
    matched = sorted({e for ids in flagged["eval_ids"] for e in ids}) if len(flagged) else []
    return ContaminationResult(
        flagged, per_source, index.n, index.n_texts, index.too_short, matched
    )


@dataclass
class ContaminationTask:
    """The engine task of a contamination scan: flag the documents of a shard (read only)."""

    index: EvalIndex
    columns: tuple[str, ...] = ("source",)
    key: str = "contamination"
    label: str = "contamination"

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:  # pragma: no cover - read only
        return None

    def pending_sql(self) -> tuple[str, list]:
        return "SELECT d.doc_id FROM documents d", []

    def compute(self, batch: pa.Table) -> list[dict]:
        return scan_batch(batch, self.index)

    def commit(self, con, result) -> int:  # pragma: no cover - read only
        return 0


def find_contamination_on_engine(
    ws,
    eval_texts: Iterable[str] | EvalIndex,
    *,
    n: int = 13,
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    shard_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> ContaminationResult:
    """:func:`find_contamination` shard by shard on the engine (analytics.engine.scan_job):
    ``local`` (a process pool) or ``ray``; the same result. The evaluation index is built
    once here and shipped once to each worker."""
    from analytics.engine import DEFAULT_SHARD_SIZE, scan_job

    index = eval_texts if isinstance(eval_texts, EvalIndex) else build_eval_index(eval_texts, n=n)
    per_source = (
        ws.cursor()
        .execute("SELECT source, count(*) AS docs FROM documents GROUP BY source ORDER BY source")
        .df()
    )
    rows: list[dict] = []
    if len(per_source) and len(index.hashes):
        results, _report = scan_job(
            ws,
            ContaminationTask(index),
            engine=engine,
            workers=workers,
            ray_address=ray_address,
            shard_size=shard_size or DEFAULT_SHARD_SIZE,
            progress=(lambda _s, d, t: progress(d, t)) if progress else None,
            on_line=on_line,
        )
        rows = [r for shard in results for r in shard]
    return _result(rows, per_source, index)


def result_to_dict(result: ContaminationResult) -> dict:
    """A JSON-serialisable form of a result (what `mixscope contamination --report` writes)."""
    flagged = result.flagged.astype(object).where(result.flagged.notna(), None)
    return {
        "n": result.n,
        "eval_texts": result.eval_texts,
        "eval_too_short": result.eval_too_short,
        "eval_matched": [int(i) for i in result.eval_matched],
        "per_source": [
            {
                "source": r["source"],
                "docs": int(r["docs"]),
                "flagged_docs": int(r["flagged_docs"]),
            }
            for r in result.per_source.to_dict("records")
        ],
        "flagged": [
            {
                "doc_id": r["doc_id"],
                "source": r["source"],
                "n_matched_ngrams": int(r["n_matched_ngrams"]),
                "spans": [[int(s), int(e)] for s, e in r["spans"]],
                "eval_ids": [int(i) for i in r["eval_ids"]],
                "matched_chars": int(r["matched_chars"]),
            }
            for r in flagged.to_dict("records")
        ],
    }


def result_from_dict(data: dict) -> ContaminationResult:
    """Inverse of `result_to_dict`; raises EvalFileError when a key is missing."""
    try:
        per_source = pd.DataFrame(data["per_source"], columns=["source", "docs", "flagged_docs"])
        flagged = pd.DataFrame(
            data["flagged"],
            columns=["doc_id", "source", "n_matched_ngrams", "spans", "eval_ids", "matched_chars"],
        )
        per_source["flagged_frac"] = per_source["flagged_docs"] / per_source["docs"].where(
            per_source["docs"] > 0
        )
        return ContaminationResult(
            flagged,
            per_source,
            int(data["n"]),
            int(data["eval_texts"]),
            int(data["eval_too_short"]),
            [int(i) for i in data.get("eval_matched", [])],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EvalFileError(f"not a contamination report ({exc})") from exc


def span_parts(text: str, span: list[int] | tuple[int, int], *, context: int = 160) -> tuple:
    """(before, match, after) plain-text pieces around one character span, `context` chars of
    context on each side (an ellipsis marks a cut). For showing a match without markup."""
    start, end = max(0, int(span[0])), min(len(text), int(span[1]))
    lo, hi = max(0, start - context), min(len(text), end + context)
    before = ("…" if lo > 0 else "") + text[lo:start]
    after = text[end:hi] + ("…" if hi < len(text) else "")
    return before, text[start:end], after

"""Concept frequency per source and the log-linear accuracy fit of Udandarao et al. (2024),
"No 'Zero-Shot' Without Exponential Data".

Counting (in DuckDB): whole-token, case-insensitive occurrences. Both the corpus text and each
concept are normalised the same way: lower-case, then split into tokens, a token being a run
of letters, digits and combining marks (a word) or a single other visible character
(punctuation or a symbol, each its own token); spaces, control characters and dashes only
separate (so "new-york" counts for "new york").
Punctuation thus belongs to a concept that has it: "C++" is the tokens `c + +` and counts
"C++" but not the "c" of "c" or "C#", while "cat" still counts in "cat's" and "Cat!". In the
text every token is surrounded by its own spaces (two spaces between tokens, one at each end),
so a concept "new york" becomes the pattern " new  york ". Occurrences =
(len(text) - len(replace(text, pattern, ''))) / len(pattern), which counts non-overlapping
whole-token matches ("cat" is not counted in "category" or "bobcat"). Concept text never
enters the SQL string: the patterns are bound as a list parameter, so no escaping is needed.

Fit: accuracy = slope * log10(frequency) + intercept by ordinary least squares over concepts
with frequency > 0 (a zero frequency has no logarithm; those concepts are reported as
excluded), with R^2 = 1 - SS_res / SS_tot. Frequency is, by default, the number of DOCUMENTS
containing the concept (the paper's pretraining frequency counts documents/samples that
contain it), or optionally its total number of occurrences.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import duckdb
import numpy as np
import pandas as pd

from analytics.signals.base import SignalError


class ConceptError(SignalError):
    """A concept list or accuracy table that cannot be used."""


#: a token: a run of letters/digits/marks, or one visible character that is none of those
TOKEN_RE = r"[\p{L}\p{N}\p{M}]+|[^\p{L}\p{N}\p{M}\p{Z}\p{C}\p{Pd}]"
#: frequency bases of the accuracy fit: name -> column of `concept_counts`
FREQUENCY_BASES = {"documents": "n_docs", "occurrences": "count"}


@functools.lru_cache(maxsize=1)
def _token_re():
    from analytics.signals.base import lazy_import

    return lazy_import("regex", "regex", "concept tokens").compile(TOKEN_RE)


def normalise_concept(concept: str) -> str:
    """Lower-case tokens of `concept` (words, and each punctuation/symbol character) joined by
    single spaces; '' when it has no word (a concept of punctuation alone is no concept)."""
    from analytics.signals._text import _word_re

    if not _word_re().search(concept):
        return ""
    return " ".join(_token_re().findall(concept.lower()))


def _pattern(norm: str) -> str:
    return " " + "  ".join(norm.split(" ")) + " "


def clean_concepts(concepts: Iterable[str], *, source: str = "the concept list") -> list[str]:
    """Strip, drop blanks and duplicates (after normalisation); raise on an empty result."""
    out, seen = [], set()
    for raw in concepts:
        if not isinstance(raw, str):
            raise ConceptError(f"{source}: concepts must be strings, got {type(raw).__name__}")
        text = raw.strip()
        norm = normalise_concept(text)
        if not norm or norm in seen:
            continue
        seen.add(norm)
        out.append(text)
    if not out:
        raise ConceptError(f"{source}: no concepts (expected one concept per line)")
    return out


def read_concepts(path: str | Path) -> list[str]:
    """Concepts from a UTF-8 text file, one per line (blank lines ignored).

    Raises ConceptError naming the file when it is missing, not text (binary / not UTF-8) or
    holds no concept.
    """
    p = Path(path)
    if not p.is_file():
        raise ConceptError(f"{p}: no such concept file")
    return parse_concepts(p.read_bytes(), source=str(p))


def parse_concepts(data: bytes | str, *, source: str = "the concept list") -> list[str]:
    """Concepts from raw bytes (an upload) or pasted text, one per line; see `read_concepts`."""
    if isinstance(data, str):
        return clean_concepts(data.splitlines(), source=source)
    p = source
    if b"\x00" in data[:8192]:
        raise ConceptError(f"{p}: not a text file (binary data); expected one concept per line")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConceptError(
            f"{p}: line {line}: not UTF-8 text; expected one concept per line"
        ) from exc
    return clean_concepts(text.splitlines(), source=str(p))


def concept_counts(
    con: duckdb.DuckDBPyConnection,
    concepts: Iterable[str],
    *,
    table: str = "documents",
) -> pd.DataFrame:
    """Whole-token, case-insensitive counts of each concept per source (see the module doc).

    Returns a DataFrame with one row per (concept, source): concept (as given), source,
    count (occurrences), n_docs (documents containing it), source_docs (documents in the
    source). Concepts found nowhere appear with count 0 for every source.
    """
    if table not in ("documents",) and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", table):
        raise ConceptError(f"bad table name {table!r}")
    items = clean_concepts(concepts)
    pats = [_pattern(normalise_concept(c)) for c in items]
    sql = f"""
        WITH c AS (SELECT unnest(?::VARCHAR[]) AS concept, unnest(?::VARCHAR[]) AS pat),
        d AS (SELECT source,
                     ' ' || trim(regexp_replace(regexp_replace(lower(text),
                                 '([^\\pL\\pN\\pM\\pZ\\pC\\p{{Pd}}])', ' \\1 ', 'g'),
                             '[\\pZ\\pC\\p{{Pd}}]+', '  ', 'g')) || ' ' AS norm
              FROM {table} JOIN document_text USING (doc_id)),
        s AS (SELECT source, count(*) AS source_docs FROM {table} GROUP BY source),
        m AS (SELECT c.concept, d.source,
                     sum((length(d.norm) - length(replace(d.norm, c.pat, ''))) // length(c.pat))
                         AS count,
                     count(*) FILTER (WHERE contains(d.norm, c.pat)) AS n_docs
              FROM d CROSS JOIN c GROUP BY c.concept, d.source)
        SELECT c.concept, s.source, coalesce(m.count, 0)::BIGINT AS count,
               coalesce(m.n_docs, 0)::BIGINT AS n_docs, s.source_docs
        FROM c CROSS JOIN s LEFT JOIN m ON m.concept = c.concept AND m.source = s.source
        ORDER BY c.concept, s.source"""
    return con.execute(sql, [items, pats]).df()


def concept_totals(counts: pd.DataFrame) -> pd.DataFrame:
    """Total count and documents per concept over all sources."""
    _need(counts, ("concept", "count"), "counts")
    agg = {"count": "sum"} | ({"n_docs": "sum"} if "n_docs" in counts else {})
    return counts.groupby("concept", as_index=False, sort=False).agg(agg)


def rank_frequency(counts: pd.DataFrame) -> pd.DataFrame:
    """Concepts ranked by total count (1 = most frequent): concept, count, rank, share."""
    tot = concept_totals(counts).sort_values(["count", "concept"], ascending=[False, True])
    tot = tot.reset_index(drop=True)
    tot["rank"] = np.arange(1, len(tot) + 1)
    total = tot["count"].sum()
    tot["share"] = tot["count"] / total if total else 0.0
    return tot[["concept", "count", "rank", "share"]]


def rare_concepts(counts: pd.DataFrame, *, max_count: int = 0) -> list[str]:
    """Concepts whose total count is at most `max_count` (default 0: never seen), rarest first."""
    tot = concept_totals(counts).sort_values(["count", "concept"])
    return tot.loc[tot["count"] <= max_count, "concept"].tolist()


def default_rare_threshold(counts: pd.DataFrame, *, quantile: float = 0.25) -> int:
    """A "rare" threshold that selects the long tail of this list: the `quantile` (default
    the lower quartile) of the concepts' total counts, rounded down, so that about a quarter
    of the concepts (at least the rarest one) are at or below it. 0 for an empty list."""
    tot = concept_totals(counts)
    if tot.empty:
        return 0
    return int(np.floor(np.quantile(tot["count"].to_numpy(dtype=float), quantile)))


@dataclass(frozen=True)
class ConceptFit:
    """accuracy = slope * log10(frequency) + intercept; `basis` says what frequency counts
    ("documents" containing the concept, or total "occurrences")."""

    slope: float
    intercept: float
    r2: float
    n: int
    excluded_zero: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    data: pd.DataFrame = field(default_factory=pd.DataFrame)
    basis: str = "documents"


def _need(df: pd.DataFrame, cols: tuple[str, ...], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ConceptError(
            f"{what}: missing column(s) {', '.join(missing)}; has {', '.join(map(str, df.columns))}"
        )


def fit_concept_accuracy(
    counts: pd.DataFrame,
    accuracy_df: pd.DataFrame,
    *,
    concept_col: str = "concept",
    accuracy_col: str = "accuracy",
    frequency: str = "documents",
) -> ConceptFit:
    """Least-squares fit of accuracy against log10(concept frequency).

    `frequency`: "documents" (default; the number of documents containing the concept, as
    in Udandarao et al.) or "occurrences" (its total count). `counts` is `concept_counts`
    output (concept, count, n_docs); `accuracy_df` has one row per concept. Concepts are
    matched after normalisation (case, spacing). Needs at least two concepts with
    frequency > 0 and distinct frequencies.
    """
    if frequency not in FREQUENCY_BASES:
        raise ConceptError(
            f"frequency must be one of {', '.join(FREQUENCY_BASES)}; got {frequency!r}"
        )
    col = FREQUENCY_BASES[frequency]
    _need(accuracy_df, (concept_col, accuracy_col), "accuracy table")
    _need(counts, ("concept", col), "counts")
    tot = concept_totals(counts)
    freq = {normalise_concept(c): int(n) for c, n in zip(tot["concept"], tot[col], strict=True)}
    acc = pd.to_numeric(accuracy_df[accuracy_col], errors="coerce")
    if acc.isna().any():
        bad = int(np.flatnonzero(acc.isna().to_numpy())[0])
        raise ConceptError(
            f"accuracy table: row {bad + 1}: {accuracy_col!r} is not a number "
            f"({accuracy_df[accuracy_col].iloc[bad]!r})"
        )
    rows, unmatched, zero = [], [], []
    for concept, a in zip(accuracy_df[concept_col].astype(str), acc, strict=True):
        key = normalise_concept(concept)
        if key not in freq:
            unmatched.append(concept)
        elif freq[key] <= 0:
            zero.append(concept)
        else:
            rows.append((concept, freq[key], float(a)))
    data = pd.DataFrame(rows, columns=["concept", "frequency", "accuracy"])
    if len(data) < 2 or data["frequency"].nunique() < 2:
        raise ConceptError(
            "need at least two concepts with different, non-zero frequencies to fit "
            f"(have {len(data)}; {len(zero)} with frequency 0, {len(unmatched)} not counted)"
        )
    x = np.log10(data["frequency"].to_numpy(dtype=float))
    y = data["accuracy"].to_numpy(dtype=float)
    xm, ym = x.mean(), y.mean()
    slope = float(((x - xm) * (y - ym)).sum() / ((x - xm) ** 2).sum())
    intercept = float(ym - slope * xm)
    pred = slope * x + intercept
    ss_tot = float(((y - ym) ** 2).sum())
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    data = data.assign(log10_frequency=x, predicted=pred)
    return ConceptFit(slope, intercept, r2, len(data), zero, unmatched, data, frequency)


def read_accuracy_csv(
    path: str | Path | IO, *, concept_col: str = "concept", accuracy_col: str = "accuracy"
) -> pd.DataFrame:
    """A per-concept accuracy CSV; raises ConceptError naming the file and missing column."""
    p = path if hasattr(path, "read") else Path(path)
    if hasattr(p, "read"):
        name = getattr(p, "name", None) or "the accuracy CSV"
    else:
        name = str(p)
    try:
        df = pd.read_csv(p)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ConceptError(f"{name}: cannot read as CSV ({exc})") from exc
    _need(df, (concept_col, accuracy_col), name)
    return df

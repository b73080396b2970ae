"""Probe sets: the texts every checkpoint is run on, chosen reproducibly from a corpus.

:func:`select_probe` draws a stratified sample from a documents table; :func:`probe_hash`
fingerprints the chosen texts and groups so results can be cached and compared.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .errors import ProbeError


def select_probe(
    documents: pd.DataFrame,
    *,
    size: int,
    stratify_by: str | None = "source",
    seed: int = 0,
    text_column: str = "text",
    id_column: str = "doc_id",
) -> pd.DataFrame:
    """Stratified sample of ``size`` documents: columns doc_id, group, text.

    Each stratum (distinct value of ``stratify_by``; one stratum "all" when None) gets
    floor(size / n_strata) documents, the remainder going one each to the largest strata;
    a stratum smaller than its share gives all it has and the shortfall is spread over
    the others. Sampling is uniform without replacement with ``numpy.random.default_rng(seed)``
    and the output is sorted by (group, doc_id), so the same inputs give the same probe.
    Raises :class:`ProbeError` when ``size`` exceeds the number of documents.
    """
    for col in (text_column, id_column) + ((stratify_by,) if stratify_by else ()):
        if col not in documents.columns:
            raise ProbeError(f"documents: missing column {col!r}; have {list(documents.columns)}")
    n_docs = len(documents)
    if size < 1:
        raise ProbeError(f"size: expected a positive probe size, got {size}")
    if size > n_docs:
        raise ProbeError(f"size: probe size {size} is larger than the corpus ({n_docs} documents)")
    groups = (
        documents[stratify_by].fillna("(none)").astype(str)
        if stratify_by
        else pd.Series("all", index=documents.index)
    )
    df = pd.DataFrame(
        {
            "doc_id": documents[id_column].to_numpy(),
            "group": groups.to_numpy(),
            "text": documents[text_column].to_numpy(),
        }
    )
    df = df.sort_values(["group", "doc_id"], kind="stable").reset_index(drop=True)
    counts = df["group"].value_counts()
    # allocate quotas: equal shares, capped by availability, shortfall redistributed
    quota = {g: 0 for g in counts.index}
    remaining = size
    open_groups = sorted(counts.index, key=lambda g: (-counts[g], g))
    while remaining > 0 and open_groups:
        share = max(1, remaining // len(open_groups))
        progressed = False
        for g in list(open_groups):
            if remaining == 0:
                break
            take = min(share, counts[g] - quota[g], remaining)
            if take > 0:
                quota[g] += take
                remaining -= take
                progressed = True
            if quota[g] >= counts[g]:
                open_groups.remove(g)
        if not progressed:
            break
    rng = np.random.default_rng(seed)
    parts = []
    for g, sub in df.groupby("group", sort=True):
        q = quota.get(g, 0)
        if q:
            pick = np.sort(rng.choice(len(sub), size=q, replace=False))
            parts.append(sub.iloc[pick])
    return pd.concat(parts).sort_values(["group", "doc_id"], kind="stable").reset_index(drop=True)


def probe_hash(texts: Sequence[str], groups: Sequence[Any] | None = None) -> str:
    """sha256 of the canonical JSON of (texts, groups) in order."""
    payload = {"texts": list(texts), "groups": None if groups is None else [str(g) for g in groups]}
    blob = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return "sha256:" + hashlib.sha256(blob).hexdigest()

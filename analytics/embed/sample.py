"""Deterministic (stratified) samples of document ids, computed inside DuckDB.

Order within the corpus (or within a stratum) is `md5(doc_id || ':' || seed)`, ties broken by
doc_id: the same seed always gives the same sample, and without strata a sample of n is a
prefix of the sample of n + m (growing a sample keeps what was embedded).

Stratified allocation is proportional with at least one document per stratum: quotas
q_s = n * N_s / N are floored (and raised to 1), then the remaining documents go to the
largest fractional remainders (ties: stratum name), never more than a stratum holds; NULL is
a stratum of its own.
"""

from __future__ import annotations

import math
from typing import Any

import duckdb
import pyarrow as pa

from analytics.db import scalar
from analytics.embed.errors import EmbedError

#: columns of `documents` that cannot be strata
NOT_STRATA = {"text", "metadata", "doc_id"}


def _documents_columns(cursor: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in cursor.execute("DESCRIBE documents").fetchall()]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def allocate(counts: dict[Any, int], n: int) -> dict[Any, int]:
    """Proportional allocation of `n` over strata of sizes `counts`, at least 1 each."""
    total = sum(counts.values())
    if n > total:
        raise EmbedError(f"a sample of {n} documents is larger than the corpus ({total}).")
    if n < len(counts):
        raise EmbedError(
            f"a stratified sample of {n} documents cannot hold one document from each of the "
            f"{len(counts)} strata; ask for at least {len(counts)}."
        )
    keys = sorted(counts, key=lambda k: "" if k is None else "\x01" + str(k))
    quota = {k: n * counts[k] / total for k in keys}
    alloc = {k: min(counts[k], max(1, math.floor(quota[k]))) for k in keys}
    diff = n - sum(alloc.values())
    while diff > 0:
        room = [k for k in keys if alloc[k] < counts[k]]
        room.sort(key=lambda k: -(quota[k] - alloc[k]))  # stable: ties keep name order
        for k in room[:diff]:
            alloc[k] += 1
        diff = n - sum(alloc.values())
    while diff < 0:  # the at-least-one rule took too many: give back from the most over-served
        over = [k for k in keys if alloc[k] > 1]
        over.sort(key=lambda k: -(alloc[k] - quota[k]))
        for k in over[:-diff]:
            alloc[k] -= 1
        diff = n - sum(alloc.values())
    return alloc


def sample_doc_ids(
    cursor: duckdb.DuckDBPyConnection,
    n: int,
    *,
    stratify_by: str | None = None,
    seed: int = 0,
) -> pa.Array:
    """`n` doc ids of `documents`, optionally stratified by a column (see module docstring).

    Raises EmbedError when n exceeds the corpus, n < number of strata, or the column does
    not exist in `documents`."""
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise EmbedError(f"sample size must be a positive integer, got {n!r}.")
    total = int(scalar(cursor, "SELECT count(*) FROM documents"))
    if n > total:
        raise EmbedError(f"a sample of {n} documents is larger than the corpus ({total}).")
    salt = f":{int(seed)}"
    if stratify_by is None:
        rows = cursor.execute(
            "SELECT doc_id FROM documents ORDER BY md5(doc_id || ?), doc_id LIMIT ?", [salt, n]
        ).fetchall()
        return pa.array([r[0] for r in rows], pa.string())
    cols = _documents_columns(cursor)
    if stratify_by not in cols or stratify_by in NOT_STRATA:
        usable = [c for c in cols if c not in NOT_STRATA]
        raise EmbedError(
            f"cannot stratify by {stratify_by!r}: not a column of documents; use one of "
            f"{', '.join(usable)}."
        )
    col = f"CAST({_quote(stratify_by)} AS VARCHAR)"
    counts = dict(cursor.execute(f"SELECT {col}, count(*) FROM documents GROUP BY 1").fetchall())
    alloc = allocate(counts, n)
    keys = list(alloc)
    rows = cursor.execute(
        f"""
        WITH alloc AS (SELECT unnest(?::VARCHAR[]) AS s, unnest(?::BIGINT[]) AS q),
        ranked AS (
            SELECT doc_id, {col} AS s,
                   row_number() OVER (PARTITION BY {col} ORDER BY md5(doc_id || ?), doc_id) AS rn
            FROM documents)
        SELECT r.doc_id FROM ranked r JOIN alloc a ON r.s IS NOT DISTINCT FROM a.s
        WHERE r.rn <= a.q ORDER BY md5(r.doc_id || ?), r.doc_id
        """,
        [keys, [alloc[k] for k in keys], salt, salt],
    ).fetchall()
    return pa.array([r[0] for r in rows], pa.string())

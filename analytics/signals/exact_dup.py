"""Exact duplicates by normalised-text hash.

Normalisation: lower-case (Unicode), delete punctuation (`\\pP`), collapse every run of
whitespace (`\\s`, `\\pZ`) to one space, trim. Hash: BLAKE2b-64 of the UTF-8 bytes, as 16 hex
digits; the cluster id is the hash. Global pass (`finalize`): per hash, the representative is
the smallest doc_id, with the cluster size and whether the document is the representative.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from analytics.signals._text import _as_array, hash_strings
from analytics.signals.base import Column, Signal, require_columns
from analytics.signals.registry import register


def normalise(texts: pa.Array | pa.ChunkedArray | list[str | None]) -> pa.Array:
    """The normalised texts used for exact-duplicate hashing (see module docstring)."""
    arr = pc.utf8_lower(_as_array(texts))
    arr = pc.replace_substring_regex(arr, r"\pP+", "")
    arr = pc.replace_substring_regex(arr, r"[\s\pZ]+", " ")
    return pc.utf8_trim_whitespace(arr)


@register
class ExactDup(Signal):
    name = "exact_dup"
    kind = "global"
    description = "exact duplicates: hash of lower-cased, punctuation-free, space-collapsed text"
    params_doc = {}
    sketch_columns = (Column("exact_hash", "VARCHAR", "BLAKE2b-64 of the normalised text (hex)"),)
    columns = (
        Column("exact_dup_cluster", "VARCHAR", "cluster id = normalised-text hash"),
        Column("exact_dup_rep", "VARCHAR", "representative: smallest doc_id in the cluster"),
        Column("exact_dup_size", "BIGINT", "documents in the cluster"),
        Column("exact_dup_is_rep", "BOOLEAN", "this document is the representative"),
    )

    def compute(self, batch: pa.Table) -> pa.Table:
        require_columns(batch)
        norm = normalise(batch.column("text")).to_pylist()
        hashes = [f"{int(h):016x}" for h in hash_strings(norm)]
        return self._result(batch, {"exact_hash": hashes})

    def finalize(self, con, version: str) -> int:
        con.execute(f"DELETE FROM {self.table} WHERE version = ?", [version])
        con.execute(
            f"""INSERT INTO {self.table} (doc_id, version, exact_dup_cluster, exact_dup_rep,
                    exact_dup_size, exact_dup_is_rep)
                SELECT doc_id, version, exact_hash, min(doc_id) OVER w, count(*) OVER w,
                       doc_id = min(doc_id) OVER w
                FROM {self.sketch_table} WHERE version = ?
                WINDOW w AS (PARTITION BY exact_hash)""",
            [version],
        )
        return int(
            con.execute(
                f"SELECT count(*) FROM {self.table} WHERE version = ?", [version]
            ).fetchall()[0][0]
        )

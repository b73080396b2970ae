"""Near duplicates: MinHash LSH over word shingles, union-find into clusters.

Per batch (`compute`): normalised word tokens -> k-word shingles -> MinHash signature
(datasketch-compatible, see `minhash.py`) -> LSH band keys, stored in the sketch table (and
the signature itself when `verify` is on). Global pass (`finalize`): DuckDB groups
(band, key) across the whole corpus (out-of-core, no all-pairs comparison); every group with
more than one document yields edges to its smallest doc_id; optional verification keeps edges
whose estimated Jaccard >= threshold; connected components (union-find) give clusters whose
representative (and cluster id) is the smallest doc_id. Documents without words are never
near-duplicates.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from analytics.signals import minhash as mh
from analytics.signals._text import tokenize
from analytics.signals.base import Column, Signal, SignalError, require_columns
from analytics.signals.registry import register


@register
class NearDup(Signal):
    name = "near_dup"
    kind = "global"
    description = "near-duplicate clusters: MinHash LSH over word shingles + union-find"
    params_doc = {
        "threshold": (0.8, "Jaccard similarity threshold of the LSH"),
        "num_perm": (128, "MinHash permutations"),
        "shingle_words": (5, "words per shingle"),
        "seed": (1, "permutation seed (datasketch convention)"),
        "fp_weight": (0.5, "weight of false positives when choosing bands x rows"),
        "fn_weight": (0.5, "weight of false negatives when choosing bands x rows"),
        "verify": (False, "keep only candidate edges with estimated Jaccard >= threshold"),
    }
    sketch_columns = (
        Column("minhash_bands", "UBIGINT[]", "LSH band keys (null: no words)"),
        Column("minhash_sig", "BLOB", "MinHash signature, uint32 little-endian (verify only)"),
    )
    columns = (
        Column("near_dup_cluster", "VARCHAR", "cluster id = representative doc_id"),
        Column("near_dup_rep", "VARCHAR", "representative: smallest doc_id in the cluster"),
        Column("near_dup_size", "BIGINT", "documents in the cluster"),
        Column("near_dup_is_rep", "BOOLEAN", "this document is the representative"),
    )

    def validate(self) -> None:
        p = self.params
        if not 0.0 < float(p["threshold"]) < 1.0:
            raise SignalError("near_dup: parameter threshold must be in (0, 1)")
        if int(p["num_perm"]) < 2 or int(p["shingle_words"]) < 1:
            raise SignalError("near_dup: num_perm must be >= 2 and shingle_words >= 1")

    @property
    def bands_rows(self) -> tuple[int, int]:
        p = self.params
        return mh.optimal_param(
            float(p["threshold"]), int(p["num_perm"]), float(p["fp_weight"]), float(p["fn_weight"])
        )

    def lsh_summary(self) -> dict:
        """What the threshold means for this LSH: bands, rows, the Jaccard detected half the
        time (the S-curve's midpoint), and the detection probability at the threshold, at
        threshold + 0.1 and on average for pairs uniform in [threshold, threshold + 0.1]."""
        b, r = self.bands_rows
        t = float(self.params["threshold"])
        hi = min(1.0, t + 0.1)
        return {
            "threshold": t,
            "num_perm": int(self.params["num_perm"]),
            "bands": b,
            "rows": r,
            "j50": mh.jaccard_at_probability(0.5, bands=b, rows=r),
            "p_threshold": float(mh.detection_probability(t, bands=b, rows=r)),
            "p_hi": float(mh.detection_probability(hi, bands=b, rows=r)),
            "hi": hi,
            "p_mean": mh.mean_detection_probability(t, hi, bands=b, rows=r),
        }

    def compute(self, batch: pa.Table) -> pa.Table:
        require_columns(batch)
        p = self.params
        tok = tokenize(batch.column("text"))
        hv, doc = mh.shingle_hashes(tok, int(p["shingle_words"]))
        a, b = mh.permutations(int(p["num_perm"]), int(p["seed"]))
        sig = mh.signatures(hv, doc, tok.n_docs, a, b)
        bands, rows = self.bands_rows
        keys = mh.band_keys(sig, bands, rows)
        has_words = tok.counts > 0
        offsets = np.arange(0, (tok.n_docs + 1) * bands, bands, dtype=np.int32)
        band_col = pa.ListArray.from_arrays(
            pa.array(offsets), pa.array(keys.reshape(-1)), mask=pa.array(~has_words)
        )
        if p["verify"]:
            sig_le = sig.astype("<u4")
            sig_col = pa.array(
                [sig_le[i].tobytes() if has_words[i] else None for i in range(tok.n_docs)],
                type=pa.binary(),
            )
        else:
            sig_col = pa.nulls(tok.n_docs, type=pa.binary())
        return self._result(batch, {"minhash_bands": band_col, "minhash_sig": sig_col})

    def finalize(self, con, version: str) -> int:
        import pandas as pd

        from analytics.signals.store import query_arrow

        cand = query_arrow(
            con,
            f"""WITH b AS (
                    SELECT doc_id, unnest(minhash_bands) AS key,
                           unnest(range(len(minhash_bands))) AS band
                    FROM {self.sketch_table}
                    WHERE version = ? AND minhash_bands IS NOT NULL),
                g AS (SELECT min(doc_id) AS rep, list(doc_id) AS ids
                      FROM b GROUP BY band, key HAVING count(*) > 1),
                e AS (SELECT rep, unnest(ids) AS doc_id FROM g)
                SELECT DISTINCT rep, doc_id FROM e WHERE rep <> doc_id""",
            [version],
        ).to_pandas()
        con.execute(f"DELETE FROM {self.table} WHERE version = ?", [version])
        assigned = pa.table(
            {
                "doc_id": pa.array([], pa.string()),
                "cluster": pa.array([], pa.string()),
                "size": pa.array([], pa.int64()),
            }
        )
        if len(cand):
            # sorted codes: index order = doc_id order, so the smallest index is the rep
            codes, ids = pd.factorize(pd.concat([cand["rep"], cand["doc_id"]]), sort=True)
            ids = np.asarray(ids, dtype=object)
            edges = codes.reshape(2, -1).T.astype(np.int64)
            if self.params["verify"]:
                edges = self._verify(con, version, ids, edges)
            labels = mh.components(len(ids), edges)
            sizes = np.bincount(labels, minlength=len(ids))[labels]
            multi = sizes > 1
            assigned = pa.table(
                {
                    "doc_id": pa.array(ids[multi].tolist(), pa.string()),
                    "cluster": pa.array(ids[labels[multi]].tolist(), pa.string()),
                    "size": pa.array(sizes[multi], pa.int64()),
                }
            )
        view = "_mixscope_near_dup_assign"
        con.register(view, assigned)
        try:
            con.execute(
                f"""INSERT INTO {self.table} (doc_id, version, near_dup_cluster, near_dup_rep,
                        near_dup_size, near_dup_is_rep)
                    SELECT s.doc_id, s.version, coalesce(a.cluster, s.doc_id),
                           coalesce(a.cluster, s.doc_id), coalesce(a.size, 1),
                           coalesce(a.cluster, s.doc_id) = s.doc_id
                    FROM {self.sketch_table} s LEFT JOIN {view} a ON a.doc_id = s.doc_id
                    WHERE s.version = ?""",
                [version],
            )
        finally:
            con.unregister(view)
        return int(
            con.execute(
                f"SELECT count(*) FROM {self.table} WHERE version = ?", [version]
            ).fetchall()[0][0]
        )

    def _verify(self, con, version: str, ids: np.ndarray, edges: np.ndarray) -> np.ndarray:
        view = "_mixscope_near_dup_ids"
        con.register(view, pa.table({"doc_id": pa.array(ids.tolist(), pa.string())}))
        try:
            got = con.execute(
                f"SELECT s.doc_id, s.minhash_sig FROM {self.sketch_table} s "
                f"JOIN {view} v ON v.doc_id = s.doc_id WHERE s.version = ?",
                [version],
            ).fetchall()  # only documents that are LSH candidates
        finally:
            con.unregister(view)
        num_perm = int(self.params["num_perm"])
        sig = np.zeros((len(ids), num_perm), dtype=np.uint32)
        index = {d: i for i, d in enumerate(ids)}
        for doc_id, blob in got:
            if blob is not None:
                sig[index[doc_id]] = np.frombuffer(blob, dtype="<u4")
        return mh.verify_edges(sig, edges, float(self.params["threshold"]))

"""Materialising a mixture vs the equivalent single DuckDB COPY statement.

    python bench/bench_mixture.py                 # 200,000 synthetic documents
    python bench/bench_mixture.py --docs 1000000  # the 1M-document figure
    python bench/bench_mixture.py --fmt parquet --threads 2

A synthetic ``documents`` table (contract schema; 16 sources, text of 100-600 characters,
n_tokens ~ chars / 4) is generated inside a temporary DuckDB file. The manifest selects every
document grouped by ``source`` with natural weights and a budget equal to the available
tokens, so every group is used for exactly one epoch and the output holds the same rows as
the baseline.

Baseline ("single COPY"): ``COPY (SELECT doc_id, source, n_tokens, text FROM documents) TO
one file`` - no hashing, ordering, sharding or verification. Figures (wall time, same run,
same connection settings), each printed as a ratio to the baseline:

  * materialize, verify on: reproduction check (snapshot + per-group hashes), per-group
    seeded subset computation, seeded shuffle of the phase, 100,000-row shards, samples.parquet;
  * materialize, verify off: the same without the reproduction check;
  * shuffled single COPY: the baseline with ``ORDER BY md5_number(seed || doc_id)`` (the cost
    of a seeded shuffle alone);
  * materialize with epochs: half the groups at 0.5 epochs and half at 2.0 (a different
    row count: printed, and the ratio is also given per output row).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from analytics.mixture import (  # noqa: E402
    build_manifest,
    build_phase,
    group_selections,
    materialize,
    natural_weights,
    plan_table,
    snapshot_hash,
)

DDL = """
CREATE TABLE documents(doc_id VARCHAR PRIMARY KEY, source VARCHAR NOT NULL, domain VARCHAR,
  lang VARCHAR, date DATE, url VARCHAR, title VARCHAR, text VARCHAR NOT NULL, n_bytes BIGINT,
  n_chars BIGINT, n_tokens BIGINT, metadata JSON, ingest_id BIGINT)
"""


def make_corpus(con: duckdb.DuckDBPyConnection, n: int) -> None:
    con.execute(DDL)
    con.execute(
        """
        INSERT INTO documents
        SELECT printf('doc-%09d', i), 'src-' || (i % 16), 'site' || (i % 997) || '.example.org',
               CASE WHEN i % 5 = 0 THEN 'de' ELSE 'en' END,
               DATE '2020-01-01' + CAST(i % 1500 AS INTEGER),
               'https://site' || (i % 997) || '.example.org/' || i, NULL,
               repeat('lorem ipsum dolor sit amet ', 4 + CAST(hash(i) % 19 AS INTEGER)) || i,
               NULL, NULL, NULL, '{}', 1
        FROM range(?) t(i)
        """,
        [n],
    )
    con.execute(
        "UPDATE documents SET n_chars = length(text), n_bytes = strlen(text), n_tokens = "
        "length(text) // 4"
    )
    con.execute("CHECKPOINT")


def manifest(con, epochs_by_index=None):
    counts, sels = group_selections(con, group_by="source")
    tokens = dict(zip(counts["group"], counts["tokens"]))
    docs = dict(zip(counts["group"], counts["documents"]))
    if epochs_by_index is None:
        weights, budget = natural_weights(tokens), int(sum(tokens.values()))
    else:
        target = {g: tokens[g] * epochs_by_index(i) for i, g in enumerate(tokens)}
        budget = int(sum(target.values()))
        weights = {g: t / sum(target.values()) for g, t in target.items()}
    plan = plan_table(tokens, docs, weights, budget)
    phase = build_phase(plan, name="main", budget_tokens=budget, method="bench", selections=sels)
    return build_manifest(
        phases=[phase],
        tokenizer={"name": "bench"},
        seed=1,
        corpus_snapshot_hash=snapshot_hash(con),
        version="bench",
    )


def timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--docs", type=int, default=200_000, help="documents in the synthetic corpus")
    ap.add_argument("--fmt", choices=["jsonl", "parquet"], default="jsonl")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1, help="best of N timings per figure")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_mixture_"))
    try:
        con = duckdb.connect(str(work / "bench.duckdb"))
        con.execute(f"SET threads={args.threads}")
        t0 = time.perf_counter()
        make_corpus(con, args.docs)
        print(
            f"corpus: {args.docs:,} documents generated in {time.perf_counter() - t0:.1f}s "
            f"(threads={args.threads}, format={args.fmt})"
        )
        m1 = manifest(con)
        m2 = manifest(con, lambda i: 0.5 if i % 2 else 2.0)
        ext = "jsonl" if args.fmt == "jsonl" else "parquet"
        opts = "FORMAT json" if args.fmt == "jsonl" else "FORMAT parquet, COMPRESSION zstd"
        n = [0]

        def out(name: str) -> Path:
            n[0] += 1
            p = work / f"{name}-{n[0]}"
            return p

        def baseline() -> None:
            con.execute(
                "COPY (SELECT doc_id, source, n_tokens, text FROM documents) TO "
                f"'{out('copy')}.{ext}' ({opts})"
            )

        def shuffled() -> None:
            con.execute(
                "COPY (SELECT doc_id, source, n_tokens, text FROM documents ORDER BY "
                "md5_number('1:' || doc_id)) "
                f"TO '{out('shuf')}.{ext}' ({opts})"
            )

        rows = {}

        def mat(m, verify: bool, key: str):
            def run() -> None:
                res = materialize(
                    con, m, out("mat"), fmt=args.fmt, shard_rows=100_000, verify=verify
                )
                rows[key] = int(res.groups["rows"].sum())

            return run

        base = timed(baseline, args.repeats)
        figures = [
            ("materialize, verify on", timed(mat(m1, True, "v"), args.repeats), "v"),
            ("materialize, verify off", timed(mat(m1, False, "nv"), args.repeats), "nv"),
            ("shuffled single COPY", timed(shuffled, args.repeats), None),
            ("materialize, 0.5/2.0 epochs", timed(mat(m2, True, "ep"), args.repeats), "ep"),
        ]
        print(f"\nbaseline  single COPY of {args.docs:,} rows: {base:.2f}s")
        for name, secs, key in figures:
            r = rows.get(key, args.docs) if key else args.docs
            per_row = (secs / r) / (base / args.docs)
            print(
                f"{name:<30} {secs:7.2f}s  rows {r:>10,}  x{secs / base:5.2f} of baseline"
                + (f"  (x{per_row:4.2f} per output row)" if r != args.docs else "")
            )
        con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

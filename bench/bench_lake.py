"""The lakehouse workspace at 100k / 1M / 10M documents, as ratios against baselines measured
in the same run.

    python bench/bench_lake.py --sizes 100000 1000000 10000000 [--out DIR]
    python bench/bench_lake.py --sizes 1000000 --registration-only

For each size a synthetic corpus (metadata-heavy, short texts so 10M fits the disk) is
written as Parquet shards of 500k rows by DuckDB. Figures:

* workspace size / corpus size (goal: metadata only, well under 10% of the text bytes);
* registration throughput: `ingest()` with token counting replaced by a whitespace count
  (tokenization is the next issue's, benchmarked there) against DuckDB's own scan of the same
  files into a table (`CREATE TABLE AS SELECT * FROM read_parquet(...)`), goal >= 0.8x; and
  how long of it the ingest holds the workspace's write lock (other writers wait that long);
* the cost of a small write at each size: a 10-document ingest and saving a mixture (goal:
  flat, within 2x from the smallest to the largest size);
* Overview and Explore latency (p50 of 9) at the largest size: totals + composition (from
  the rollups) and an arbitrary filter + aggregate through analytics' query path, against
  the same SQL on a raw DuckDB connection over the lake's own Parquet files;
* the dashboard reader's peak RSS after those queries (goal: under 2 GB), measured in a
  fresh process.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402

SHARD = 500_000


def make_corpus(n: int, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    files = []
    for k, lo in enumerate(range(0, n, SHARD)):
        hi = min(n, lo + SHARD)
        f = out / f"part-{k:05d}.parquet"
        con.execute(
            f"""COPY (SELECT 'doc-' || i AS id,
                   'source-' || (i % 40) AS source, 'domain-' || (i % 9) AS domain,
                   ['en','de','fr','es','zh','ru','ja'][1 + i % 7] AS lang,
                   DATE '1990-01-01' + CAST(hash(i) % 12000 AS INTEGER) AS date,
                   'https://site' || (hash(i) % 100000) || '.example.com/p/' || i AS url,
                   'Title of document ' || i AS title,
                   'document ' || i || ' ' || repeat('lorem ipsum dolor ',
                       10 + CAST(hash(i * 7) % 50 AS INTEGER)) AS text,
                   hash(i) % 1000 AS extra_score
                FROM range({lo}, {hi}) t(i)) TO '{f}' (FORMAT parquet, COMPRESSION zstd)"""
        )
        files.append(f)
    return files


class WhitespaceCounter:
    """Stands in for the tokenizer; the time spent in it is subtracted from registration."""

    sha256 = "whitespace"
    seconds = 0.0
    cpu = 0.0  # CPU seconds of the thread that counted

    def count(self, texts):
        t0, c0 = time.perf_counter(), time.thread_time()
        out = np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))
        WhitespaceCounter.seconds += time.perf_counter() - t0
        WhitespaceCounter.cpu += time.thread_time() - c0
        return out


HELD: list[tuple[str, float]] = []


def time_write_lock() -> None:
    """Record how long each `Workspace.write()` block runs (the commit lock is held)."""
    import contextlib

    from analytics.workspace import Workspace

    orig = Workspace.write

    @contextlib.contextmanager
    def write(self, **kw):
        with orig(self, **kw) as con:
            t0 = time.perf_counter()
            yield con
        HELD.append((kw.get("job", "?"), time.perf_counter() - t0))  # commit included

    Workspace.write = write


def dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def cpu_s() -> float:
    """CPU seconds of this process, all threads (steadier than wall time on a busy host)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn, repeat=1):
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def small_writes(ws, tmp: Path, k: int) -> tuple[float, float]:
    from analytics.ingest import ingest
    from analytics.mixture.builder import PhaseSpec, create_manifest
    from analytics.mixture.store import save_mixture

    small = tmp / f"small-{k}.jsonl"
    small.write_text(
        "".join(
            json.dumps({"id": f"new-{k}-{i}", "text": f"new doc {k} {i}"}) + "\n" for i in range(10)
        )
    )
    t_ingest = timed(lambda: ingest(ws, [str(small)], source="small"))
    cur = ws.cursor()
    sources = [r[0] for r in cur.execute("SELECT DISTINCT source FROM doc_rollup").fetchall()]
    spec = PhaseSpec(name="main", budget=10**6, weights={s: 1.0 for s in sources})
    manifest = create_manifest(cur, group_by="source", phases=[spec])

    def save():
        with ws.write(job="save mixture") as con:
            save_mixture(con, f"bench-{k}", manifest)

    t_save = timed(save)
    return t_ingest, t_save


READER = r"""
import json, resource, statistics, sys, time
sys.path.insert(0, sys.argv[2])
import duckdb
from analytics import overview
from analytics.filters import DocFilter
from analytics.query import run_query
from analytics.workspace import Workspace
ws = Workspace(sys.argv[1])
cur = ws.cursor()
flt = DocFilter(source=("source-1", "source-7"), lang=("de",))
arb = DocFilter(source=("source-3",), min_tokens=5, max_tokens=9)
sql_arb = ("SELECT lang, count(*) AS documents, sum(n_tokens) AS tokens FROM documents "
           "WHERE source IN ('source-3') AND n_tokens >= 5 AND n_tokens <= 9 GROUP BY lang")
def p50(fn, n=9):
    t = []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); t.append(time.perf_counter() - t0)
    return statistics.median(t)
res = {}
res["overview_totals"] = p50(lambda: overview.totals(cur))
res["overview_composition"] = p50(lambda: overview.composition(cur, by=("source",)))
res["explore_facets"] = p50(lambda: overview.composition(cur, flt, by=("domain", "lang")))
res["explore_arbitrary"] = p50(lambda: run_query(ws.cursor(), sql_arb))
res["explore_page"] = p50(lambda: overview.documents_page(cur, arb, page_size=50))
def peak_rss_mb():
    # VmHWM: this process's own peak. ru_maxrss is not: Linux keeps it across exec, so a
    # child forked from a big parent reports the parent's size
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
res["peak_rss_mb"] = peak_rss_mb()
raw = duckdb.connect()
files = [r[0] for r in ws.cursor().execute(
    "SELECT data_file FROM ducklake_list_files('ws', 'documents')").fetchall()]
raw.execute("CREATE VIEW documents AS SELECT * FROM read_parquet(%r)" % files)
res["raw_arbitrary"] = p50(lambda: raw.execute(sql_arb).fetchall())
res["raw_composition"] = p50(lambda: raw.execute(
    "SELECT source, count(*), sum(n_tokens), sum(n_bytes) FROM documents GROUP BY 1").fetchall())
print(json.dumps(res))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--registration-only", action="store_true", help="only the registration figures"
    )
    args = ap.parse_args()
    import analytics.ingest.core as core
    from analytics.ingest import ingest
    from analytics.workspace import Workspace

    core.get_token_counter = lambda name: WhitespaceCounter()
    time_write_lock()
    root = args.out or Path(tempfile.mkdtemp(prefix="bench-lake-"))
    rows = []
    try:
        for n in args.sizes:
            corpus = root / f"corpus-{n}"
            t0 = time.perf_counter()
            files = make_corpus(n, corpus)
            print(
                f"\n== {n:,} documents ({len(files)} shards, made in "
                f"{time.perf_counter() - t0:.1f} s, {dir_size(corpus) / 1e6:,.0f} MB)"
            )
            raw_db = root / f"raw-{n}.duckdb"
            uris = [str(f) for f in files]
            c0 = cpu_s()
            t_floor = timed(
                lambda db=raw_db, u=uris: duckdb.connect(str(db)).execute(
                    f"CREATE OR REPLACE TABLE t AS SELECT * FROM read_parquet({u})"
                )
            )
            c_floor = cpu_s() - c0
            raw_db.unlink(missing_ok=True)
            text_bytes = (
                duckdb.connect()
                .execute(f"SELECT sum(strlen(text)) FROM read_parquet({[str(f) for f in files]})")
                .fetchone()[0]
            )
            ws = Workspace(root / f"ws-{n}")
            WhitespaceCounter.seconds = WhitespaceCounter.cpu = 0.0
            HELD.clear()
            c0 = cpu_s()
            t_reg = timed(lambda w=ws, u=uris: ingest(w, u, id_field="id", source_field="source"))
            c_reg = cpu_s() - c0 - WhitespaceCounter.cpu
            t_lock = sum(t for job, t in HELD if job == "ingest")
            t_reg -= WhitespaceCounter.seconds  # tokenization excluded (bench_tokenize's)
            size = dir_size(ws.path)
            if args.registration_only:
                print(
                    f"registration {t_reg:.1f} s wall, {c_reg:.1f} s CPU (the write lock held "
                    f"{t_lock:.1f} s) vs DuckDB scan into a table {t_floor:.1f} s wall, "
                    f"{c_floor:.1f} s CPU: {t_floor / t_reg:.2f}x the floor's throughput "
                    f"(wall), {c_floor / c_reg:.2f}x (CPU) (goal >= 0.8x)"
                )
                continue
            ti, ts = small_writes(ws, root, n)
            row = {
                "docs": n,
                "floor_s": t_floor,
                "register_s": t_reg,
                "ws_mb": size / 1e6,
                "corpus_mb": dir_size(corpus) / 1e6,
                "text_mb": text_bytes / 1e6,
                "small_ingest_s": ti,
                "save_mixture_s": ts,
            }
            rows.append(row)
            print(
                f"registration {t_reg:.1f} s (the write lock held {t_lock:.1f} s of it) vs "
                f"DuckDB scan into a table {t_floor:.1f} s: "
                f"{t_floor / t_reg:.2f}x the floor's throughput (goal >= 0.8x)"
            )
            print(
                f"workspace {size / 1e6:,.1f} MB = {size / text_bytes:.1%} of the text bytes "
                f"({text_bytes / 1e6:,.0f} MB) and {size / 1e6 / row['corpus_mb']:.1%} of the "
                f"compressed corpus"
            )
            print(f"small writes: 10-document ingest {ti:.2f} s, save a mixture {ts:.2f} s")
        if args.registration_only:
            return
        first, last = rows[0], rows[-1]
        print(
            f"\nsmall write growth {first['docs']:,} -> {last['docs']:,}: ingest "
            f"{last['small_ingest_s'] / first['small_ingest_s']:.2f}x, save "
            f"{last['save_mixture_s'] / first['save_mixture_s']:.2f}x (goal within 2x)"
        )
        out = subprocess.run(
            [sys.executable, "-c", READER, str(root / f"ws-{last['docs']}"), str(ROOT)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"\nreader at {last['docs']:,} documents (p50 of 9, fresh process):")
        for k in ("overview_totals", "overview_composition", "explore_facets"):
            print(
                f"  {k}: {r[k] * 1000:.0f} ms (rollups; raw DuckDB group-by over the lake's "
                f"files {r['raw_composition'] * 1000:.0f} ms)"
            )
        print(
            f"  explore arbitrary filter: {r['explore_arbitrary'] * 1000:.0f} ms vs raw DuckDB "
            f"{r['raw_arbitrary'] * 1000:.0f} ms = "
            f"{r['explore_arbitrary'] / r['raw_arbitrary']:.2f}x (goal <= 1.3x)"
        )
        print(
            f"  Explore documents page (50 rows + snippets read from the corpus files): "
            f"{r['explore_page'] * 1000:.0f} ms"
        )
        print(f"  reader peak RSS {r['peak_rss_mb']:,.0f} MB (goal < 2048 MB)")
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Reading the lakehouse workspace: the fast reader views (analytics.lake_views) against raw
DuckDB over the same Parquet files and against the DuckLake path, as ratios in one run.

    python bench/bench_lake_read.py --docs 1000000 [--repeat 5] [--out DIR]

A synthetic workspace (documents metadata written straight into the lake in shards of 250k
rows, its exact `doc_rollup`, then a 10-document write that DuckLake inlines in its catalog,
as a small ingest would) is generated once. The readers, with the dashboard reader's
settings (2 threads, 2 GB memory limit); peak RSS comes from one fresh process per reader:

* ``views``: `Workspace.cursor()` with the fast views (the default);
* ``ducklake``: the same with `MIXSCOPE_LAKE_VIEWS=0`;
* ``raw``: a plain DuckDB connection with views over `read_parquet` of the lake's files.

Timings come from one process where the three readers take turns query by query (so load
on the machine slows them alike), p50 of --repeat rounds after a warm-up round. Queries:
arbitrary Explore filters + aggregates over `documents`, a page of documents (metadata,
sorted), Overview totals and composition and Explore facets (analytics.overview, answered
from the rollups), plus the time of the first cursor (opening the reader and building the
views). Every answer is checked equal across the three readers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARD = 250_000

DOC_SQL = """SELECT 'doc-' || i AS doc_id, 'source-' || (i % 40) AS source,
       'domain-' || (i % 9) AS domain, ['en','de','fr','es','zh','ru','ja'][1 + i % 7] AS lang,
       DATE '1990-01-01' + CAST(hash(i) % 12000 AS INTEGER) AS date,
       'https://site' || (hash(i) % 100000) || '.example.com/p/' || i AS url,
       'Title of document ' || i AS title,
       200 + CAST(hash(i * 7) % 4000 AS BIGINT) AS n_bytes,
       190 + CAST(hash(i * 7) % 3900 AS BIGINT) AS n_chars,
       40 + CAST(hash(i * 7) % 900 AS BIGINT) AS n_tokens,
       CAST(json_object('score', hash(i) % 1000) AS JSON) AS metadata,
       CAST({ingest} AS BIGINT) AS ingest_id, CAST(1 AS BIGINT) AS file_id,
       i AS text_row
FROM range({lo}, {hi}) t(i)"""

ROLLUP_SQL = """INSERT INTO doc_rollup
    SELECT ingest_id, source, domain, lang, year(date),
           CAST(floor(log2(greatest(n_bytes, 1))) AS INTEGER), count(*), sum(n_tokens),
           sum(n_bytes), sum(n_chars)
    FROM ({docs}) GROUP BY ALL"""


def make_workspace(path: Path, n: int) -> float:
    from analytics.workspace import Workspace

    t0 = time.perf_counter()
    ws = Workspace.open(path, create=True)
    for k, lo in enumerate(range(0, n, SHARD)):
        docs = DOC_SQL.format(ingest=1, lo=lo, hi=min(n, lo + SHARD))
        with ws.write(job=f"synthetic shard {k}") as con:
            con.execute(f"INSERT INTO documents {docs}")
            con.execute(ROLLUP_SQL.format(docs=docs))
    small = DOC_SQL.format(ingest=2, lo=n, hi=n + 10)
    with ws.write(job="small ingest") as con:  # inlined in the catalog by DuckLake
        con.execute(f"INSERT INTO documents {small}")
        con.execute(ROLLUP_SQL.format(docs=small))
    return time.perf_counter() - t0


READER = r"""
import json, os, resource, statistics, sys, time
sys.path.insert(0, sys.argv[2])
import duckdb
from analytics import overview
from analytics.filters import DocFilter
from analytics.workspace import Workspace
path, modes, repeat = sys.argv[1], sys.argv[3].split(","), int(sys.argv[4])


def raw_cursor_factory(ws):
    # the files of each table, plus the 10 rows DuckLake inlined in its catalog (a table)
    lake = ws.cursor()
    raw = duckdb.connect()
    raw.execute("SET threads=2")
    raw.execute("SET memory_limit='2GB'")
    for t in ("documents", "doc_rollup"):
        fs = [r[0] for r in lake.execute(
            f"SELECT data_file FROM ducklake_list_files('ws', '{t}')").fetchall()]
        inl = lake.execute(f"SELECT * FROM ws.main.{t} WHERE ingest_id = 2").arrow()
        raw.register(f"{t}_inl_arrow", inl)
        raw.execute(f"CREATE TABLE {t}_inl AS SELECT * FROM {t}_inl_arrow")
        raw.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet({fs!r}) "
                    f"UNION ALL SELECT * FROM {t}_inl")
    lake.close()
    return raw.cursor


cursors, first = {}, {}
for mode in modes:
    t0 = time.perf_counter()
    os.environ["MIXSCOPE_LAKE_VIEWS"] = "0" if mode == "ducklake" else "1"
    ws = Workspace(path)
    ws.snapshot()  # the reader's settings: 2 threads, 2 GB
    cursors[mode] = raw_cursor_factory(ws) if mode == "raw" else ws.cursor
    cursors[mode]().close()
    first[mode] = time.perf_counter() - t0
flt = DocFilter(source=("source-1", "source-7"), lang=("de",))
Q = {
    "filter": lambda c: c.execute(
        "SELECT lang, count(*) AS documents, sum(n_tokens) AS tokens, min(date), max(url) "
        "FROM documents WHERE source IN ('source-3') AND n_tokens BETWEEN 50 AND 90 "
        "AND date >= DATE '2000-01-01' GROUP BY lang ORDER BY lang").fetchall(),
    "filter_count": lambda c: c.execute(
        "SELECT count(*) FROM documents WHERE title LIKE '%99%' AND n_bytes > 1000").fetchall(),
    "totals": lambda c: overview.totals(c),
    "composition": lambda c: overview.composition(c, by=("source",)).to_dict("records"),
    "facets": lambda c: overview.composition(c, flt, by=("domain", "lang")).to_dict("records"),
    "page": lambda c: c.execute(
        "SELECT doc_id, source, domain, lang, date, url, title, n_tokens FROM documents "
        "WHERE source = 'source-3' AND n_tokens BETWEEN 50 AND 90 "
        "ORDER BY n_tokens DESC, doc_id LIMIT 50 OFFSET 100").fetchall(),
}
times = {m: {q: [] for q in Q} for m in modes}
answers = {m: {} for m in modes}
for r in range(repeat + 1):  # round 0 warms up; the modes take turns within every query
    for q, fn in Q.items():
        order = modes[r % len(modes):] + modes[:r % len(modes)]
        for m in order:
            cur = cursors[m]()
            t0 = time.perf_counter()
            answers[m][q] = fn(cur)
            if r:
                times[m][q].append(time.perf_counter() - t0)
            cur.close()
res = {m: {q: statistics.median(times[m][q]) for q in Q} for m in modes}
for m in modes:
    res[m]["first_cursor"] = first[m]
    res[m]["answers"] = json.loads(json.dumps(answers[m], default=str))
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
print(json.dumps(res))
"""

QUERIES = ("filter", "filter_count", "totals", "composition", "facets", "page")
MODES = ("raw", "views", "ducklake")


def reader(ws_path: Path, modes: tuple[str, ...], repeat: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", READER, str(ws_path), str(ROOT), ",".join(modes), str(repeat)],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        sys.exit(f"reader {modes} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="bench-lake-read-"))
    ws_path = root / f"ws-{args.docs}"
    try:
        if not ws_path.exists():
            t = make_workspace(ws_path, args.docs)
            print(f"synthetic workspace of {args.docs:,} documents written in {t:.1f} s")
        # timings: one process, the three readers taking turns query by query (a loaded
        # machine slows them alike); peak RSS: one fresh process per reader, one round each
        res = reader(ws_path, MODES, args.repeat)
        rss = {m: reader(ws_path, (m,), 1)["peak_rss_mb"] for m in MODES}
        for m in ("views", "ducklake"):
            for q in QUERIES:
                a, b = res[m]["answers"][q], res["raw"]["answers"][q]
                if a != b:
                    sys.exit(f"{m} answered {q} differently from raw DuckDB:\n{a}\n{b}")
        print(
            f"\n{args.docs:,} documents (+10 inlined), p50 of {args.repeat}, ms "
            f"(ratios to raw DuckDB over the same Parquet, same run):"
        )
        print(f"  {'query':<14}{'raw':>9}{'views':>9}{'ducklake':>10}{'views/raw':>11}"
              f"{'lake/raw':>10}{'lake/views':>12}")  # fmt: skip
        for q in QUERIES:
            r, v, d = (res[m][q] * 1000 for m in ("raw", "views", "ducklake"))
            print(f"  {q:<14}{r:>9.1f}{v:>9.1f}{d:>10.1f}{v / r:>10.2f}x{d / r:>9.2f}x"
                  f"{d / v:>11.2f}x")  # fmt: skip
        print(
            "  first cursor (ms): "
            + ", ".join(f"{m} {res[m]['first_cursor'] * 1000:.0f}" for m in MODES)
        )
        print(
            "  reader peak RSS (MB, one round in a fresh process each): "
            + ", ".join(f"{m} {rss[m]:,.0f}" for m in MODES)
        )
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Signal throughput (documents / second / core) and MinHash dedup against datasketch.

    python bench/bench_signals.py                      # demo corpus, 2,000 docs per signal
    python bench/bench_signals.py CORPUS.parquet --docs 20000 --dedup-docs 50000
    python bench/bench_signals.py --compare-langid     # + langid.py / lingua if importable

Corpus: a JSONL or Parquet file with a `text` column (and optional `id`/`doc_id`, `url`,
`source`); default data/demo_corpus.parquet, else a synthetic corpus. For the 1M-document
benchmark corpus, generate it with data/make_bench_corpus.py and pass it with --docs.

Figures, each against a baseline measured in the same run:
  * per signal: `compute` over Arrow batches on one core (Arrow and DuckDB limited to one
    thread; CPU time of this process, so other load on the machine does not count), in
    docs/s/core, and its cost relative to the baseline "python read": turning the same
    batches into Python strings and taking their length (the floor of any per-document
    Python work).
  * end to end: `run_signals` into an in-memory DuckDB for all signals, vs the sum of the
    per-signal compute times (the runner's overhead: reading, anti-joins, inserts, commits).
  * dedup: our vectorised MinHash + LSH + union-find (same shingles, num_perm, threshold,
    bands x rows) vs datasketch used directly (MinHash.update_batch per document,
    MinHashLSH.insert, then a query per document and union-find): speed-up and the share
    of documents both assign to the same cluster. The dedup corpus is the loaded corpus plus
    planted duplicates: for every 5th document a copy with 2 words replaced, for every 20th
    an exact copy; the recall of planted pairs is printed for both.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

DEMO = ROOT / "data" / "demo_corpus.parquet"


def load_corpus(path: str | None, n: int) -> pa.Table:
    """doc_id, text, url, source for up to `n` documents (shuffled deterministically)."""
    if path is None and DEMO.exists():
        path = str(DEMO)
    if path is None:
        return synthetic(n)
    p = Path(path)
    if p.suffix == ".parquet":
        tbl = pq.read_table(p)
    else:
        tbl = duckdb.sql("SELECT * FROM read_json_auto(?)", params=[str(p)]).to_arrow_table()
    if tbl.num_rows > n:
        idx = sorted(random.Random(0).sample(range(tbl.num_rows), n))
        tbl = tbl.take(pa.array(idx))
    ids = (
        tbl.column("doc_id")
        if "doc_id" in tbl.column_names
        else (
            tbl.column("id")
            if "id" in tbl.column_names
            else pa.array([str(i) for i in range(tbl.num_rows)])
        )
    )
    n_rows = tbl.num_rows
    return pa.table(
        {
            "doc_id": pa.array([str(x) for x in ids.to_pylist()]),
            "text": tbl.column("text").cast(pa.string()),
            "url": tbl.column("url").cast(pa.string())
            if "url" in tbl.column_names
            else pa.nulls(n_rows, pa.string()),
            "source": tbl.column("source").cast(pa.string())
            if "source" in tbl.column_names
            else pa.array(["all"] * n_rows),
        }
    )


def synthetic(n: int, seed: int = 0) -> pa.Table:
    """Random-word pages; every 10th an edited near-copy of an earlier page, every 25th an
    exact copy, every 15th a page of repeated lines."""
    rnd = random.Random(seed)
    vocab = [f"w{i}" for i in range(5000)] + "the of and to in is that with for was".split() * 50
    texts: list[str] = []
    for i in range(n):
        if i % 25 == 24 and texts:
            t = texts[rnd.randrange(len(texts))]
        elif i % 10 == 9 and texts:
            words = texts[rnd.randrange(len(texts))].split()
            for _ in range(3):
                words[rnd.randrange(len(words))] = rnd.choice(vocab)
            t = " ".join(words)
        elif i % 15 == 14:
            t = "Buy cheap watches online now!\n" * rnd.randint(10, 40)
        else:
            sents = [
                " ".join(rnd.choice(vocab) for _ in range(rnd.randint(8, 20))).capitalize() + "."
                for _ in range(rnd.randint(5, 30))
            ]
            t = "\n".join(sents)
        texts.append(t)
    return pa.table(
        {
            "doc_id": [f"s{i:08d}" for i in range(n)],
            "text": texts,
            "url": [f"https://www.site{i % 300}.example.co.uk/p/{i}" for i in range(n)],
            "source": [f"src{i % 4}" for i in range(n)],
        }
    )


def batches(tbl: pa.Table, size: int) -> list[pa.Table]:
    return [tbl.slice(i, size) for i in range(0, tbl.num_rows, size)]


clock = time.process_time  # CPU seconds of this process (single-threaded work)


def time_baseline(parts: list[pa.Table]) -> float:
    t0 = clock()
    total = 0
    for b in parts:
        total += sum(len(t) for t in b.column("text").to_pylist() if t)
    return max(clock() - t0, 1e-9)


def bench_signals(tbl: pa.Table, names: list[str], batch_size: int) -> dict[str, float]:
    from analytics.signals import get_signal

    parts = batches(tbl.select(["doc_id", "text", "url"]), batch_size)
    base = min(time_baseline(parts) for _ in range(3))
    n = tbl.num_rows
    print(f"\n== per-signal compute, {n} documents, batch {batch_size}, 1 core ==")
    print(f"baseline 'python read': {n / base:,.0f} docs/s/core")
    print(f"{'signal':<20}{'docs/s/core':>14}{'ms/doc':>10}{'x baseline time':>18}")
    from analytics.signals._datatrove import clear_caches

    times = {}
    for name in names:
        clear_caches()  # each signal pays for its own tokenisation here
        sig = get_signal(name)
        sig.compute(parts[0].slice(0, 8))  # load models outside the timing
        t0 = clock()
        for b in parts:
            sig.compute(b)
        dt = clock() - t0
        times[name] = dt
        print(f"{name:<20}{n / dt:>14,.0f}{dt / n * 1e3:>10.3f}{dt / base:>18,.1f}")
    total = sum(times.values())
    print(f"{'all signals':<20}{n / total:>14,.0f}{total / n * 1e3:>10.3f}{total / base:>18,.1f}")
    return times


def bench_runner(tbl: pa.Table, names: list[str], batch_size: int, compute_total: float) -> None:
    from analytics.migrations import MIGRATIONS
    from analytics.signals import run_signals
    from analytics.signals._datatrove import clear_caches

    clear_caches()  # no tokenisation left over from the per-signal phase

    con = duckdb.connect(":memory:", config={"threads": 1})
    for sql in MIGRATIONS[0][2]:
        con.execute(sql)
    con.register("src", tbl)
    con.execute(
        "INSERT INTO documents (doc_id, source, url, text) "
        "SELECT doc_id, source, url, text FROM src"
    )
    con.unregister("src")
    t0 = clock()
    run_signals(con, names, batch_size=batch_size)
    dt = clock() - t0
    n = tbl.num_rows
    print("\n== run_signals end to end (in-memory DuckDB, 1 thread) ==")
    print(
        f"run_signals: {n / dt:,.1f} docs/s/core for all {len(names)} signals; "
        f"{dt / compute_total:.2f}x the summed compute time (baseline)"
    )


def datasketch_clusters(texts: list[str], threshold: float, num_perm: int, k: int) -> np.ndarray:
    """datasketch used directly: MinHash per document, MinHashLSH insert + query, union-find."""
    from datasketch import MinHash, MinHashLSH

    from analytics.signals._text import _word_re

    word_re = _word_re()
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    sketches = []
    for i, t in enumerate(texts):
        words = word_re.findall(t.lower())
        if not words:
            sketches.append(None)
            continue
        sh = {" ".join(words[j : j + k]) for j in range(max(1, len(words) - k + 1))}
        m = MinHash(num_perm=num_perm)
        m.update_batch([s.encode("utf-8") for s in sh])
        lsh.insert(i, m)
        sketches.append(m)
    parent = list(range(len(texts)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, m in enumerate(sketches):
        if m is None:
            continue
        for j in lsh.query(m):
            a, b = find(i), find(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return np.array([find(i) for i in range(len(texts))])


def bench_dedup(tbl: pa.Table, threshold: float, num_perm: int, k: int, batch_size: int) -> None:
    from analytics.signals import minhash as mh
    from analytics.signals._text import tokenize

    texts = tbl.sort_by("doc_id").column("text").to_pylist()
    rnd = random.Random(1)
    planted = []
    base_n = len(texts)
    for i in range(base_n):
        words = texts[i].split()
        if i % 5 == 0 and len(words) >= 50:
            for _ in range(2):
                words[rnd.randrange(len(words))] = "planted"
            planted.append((i, len(texts)))
            texts.append(" ".join(words))
        elif i % 20 == 1:
            planted.append((i, len(texts)))
            texts.append(texts[i])
    n = len(texts)
    print(
        f"\n== near-dup clustering, {n} documents, threshold {threshold}, num_perm {num_perm}, "
        f"{k}-word shingles, bands x rows {mh.optimal_param(threshold, num_perm)} =="
    )
    t0 = clock()
    ref = datasketch_clusters(texts, threshold, num_perm, k)
    t_ds = clock() - t0

    t0 = clock()
    a, b = mh.permutations(num_perm, 1)
    bands, rows = mh.optimal_param(threshold, num_perm)
    sigs, valid = [], []
    for lo in range(0, n, batch_size):
        tok = tokenize(texts[lo : lo + batch_size])
        hv, doc = mh.shingle_hashes(tok, k)
        sigs.append(mh.signatures(hv, doc, tok.n_docs, a, b))
        valid.append(tok.counts > 0)
    sig = np.concatenate(sigs)
    keys = mh.band_keys(sig, bands, rows)
    edges = mh.candidate_edges(keys, valid=np.concatenate(valid))
    ours = mh.components(n, edges)
    t_ours = clock() - t0

    agree = float((ours == ref).mean())
    multi_ref = int((np.bincount(ref, minlength=n) > 1).sum())
    multi_ours = int((np.bincount(ours, minlength=n) > 1).sum())
    rec_ref = np.mean([ref[a] == ref[b] for a, b in planted]) if planted else float("nan")
    rec_ours = np.mean([ours[a] == ours[b] for a, b in planted]) if planted else float("nan")
    print(f"{base_n} corpus documents + {len(planted)} planted duplicates")
    print(
        f"datasketch directly (baseline): {n / t_ds:,.0f} docs/s/core, {multi_ref} clusters "
        f"of size > 1, planted-pair recall {rec_ref:.3f}"
    )
    print(
        f"ours (vectorised):               {n / t_ours:,.0f} docs/s/core, {multi_ours} clusters "
        f"of size > 1, planted-pair recall {rec_ours:.3f}"
    )
    print(
        f"speed-up vs datasketch: {t_ds / t_ours:.1f}x; same cluster for {agree:.2%} of documents"
    )


def compare_langid(tbl: pa.Table) -> None:
    """Accuracy against the corpus `lang` column (demo corpus) and speed of identifiers."""
    if not DEMO.exists():
        print("\n(--compare-langid needs data/demo_corpus.parquet)")
        return
    demo = pq.read_table(DEMO, columns=["text", "lang", "source"]).to_pylist()
    rnd = random.Random(0)
    by: dict[str, list] = {}
    for r in demo:
        by.setdefault(r["source"], []).append(r)
    sample = [x for rows in by.values() for x in rnd.sample(rows, min(60, len(rows)))]
    from analytics.signals import get_signal

    fns = {}
    for langs in ("classic", "all"):
        sig = get_signal("language", langs=langs)
        fns[f"py3langid ({langs})"] = lambda texts, s=sig: (
            s.compute(
                pa.table(
                    {
                        "doc_id": [str(i) for i in range(len(texts))],
                        "text": texts,
                        "url": [None] * len(texts),
                    }
                )
            )
            .column("detected_lang")
            .to_pylist()
        )
    try:
        import langid.langid as l1

        ident = l1.LanguageIdentifier.from_modelstring(l1.model, norm_probs=True)
        fns["langid.py"] = lambda texts: [ident.classify(t[:2000])[0] for t in texts]
    except ImportError:
        pass
    try:
        from lingua import LanguageDetectorBuilder

        det = LanguageDetectorBuilder.from_all_languages().build()

        def lingua(texts):
            out = []
            for t in texts:
                r = det.detect_language_of(t[:2000])
                out.append(r.iso_code_639_1.name.lower() if r else "und")
            return out

        fns["lingua"] = lingua
    except ImportError:
        pass
    texts = [r["text"] for r in sample]
    print(f"\n== language id on {len(sample)} demo documents (labels from their sources) ==")
    base = None
    for name, fn in fns.items():
        fn(texts[:5])
        t0 = clock()
        pred = fn(texts)
        dt = clock() - t0
        base = base or dt
        acc = np.mean([p == r["lang"] for p, r in zip(pred, sample, strict=True)])
        print(
            f"{name:<22} accuracy {acc:.3f}  {len(texts) / dt:,.0f} docs/s  "
            f"{dt / base:.2f}x the time of py3langid (classic)"
        )


def main() -> None:
    from analytics.signals import signal_names

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("corpus", nargs="?", help="JSONL or Parquet with a text column")
    ap.add_argument("--docs", type=int, default=2000, help="documents for the per-signal figures")
    ap.add_argument(
        "--dedup-docs", type=int, default=10000, help="documents for the dedup comparison"
    )
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--signals", nargs="*", default=None, help="subset of signal names")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--shingle-words", type=int, default=5)
    ap.add_argument("--skip-runner", action="store_true")
    ap.add_argument("--compare-langid", action="store_true")
    args = ap.parse_args()

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    names = args.signals or signal_names()
    tbl = load_corpus(args.corpus, max(args.docs, args.dedup_docs))
    src = args.corpus or (str(DEMO.relative_to(ROOT)) if DEMO.exists() else "synthetic")
    print(f"corpus: {src} ({tbl.num_rows} documents loaded)")
    sub = tbl.slice(0, args.docs)
    times = bench_signals(sub, names, args.batch_size)
    if not args.skip_runner:
        bench_runner(sub, names, args.batch_size, sum(times.values()))
    bench_dedup(
        tbl.slice(0, args.dedup_docs),
        args.threshold,
        args.num_perm,
        args.shingle_words,
        args.batch_size,
    )
    if args.compare_langid:
        compare_langid(tbl)


if __name__ == "__main__":
    main()

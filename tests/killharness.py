"""SIGKILL writers at random points and check the workspace stays consistent.

Used by tests/analytics/test_kill_consistency.py (2 kills) and bench/bench_kill.py (20).
Each kill: a writer (a real `mixscope` CLI process: ingest, signals run, mix create) is
started on the workspace and killed with SIGKILL after a random fraction of the time it
takes to finish. Then:

* the workspace opens (a fresh process-level Workspace) and every table reads;
* its committed state equals the state before the writer ("before") or the state the
  same writer reaches when it runs to the end on a copy of "before" ("after");
* no document id, signal row or mixture version appears twice;
* the next writer (the same command, again) succeeds, and the state it leaves equals
  "after" (writers are idempotent, except `mix create` which adds one version each run).

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

#: key columns per table (the rest: times, paths, free text)
KEYS = {
    "documents": "doc_id, source, n_tokens",
    "ingests": "source, n_read, n_added",
    "mixtures": "name, version",
}


def cli(ws: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "dashboard.cli", *args, "--workspace", str(ws)]


def writers(corpus: Path) -> dict[str, list[str]]:
    """name -> CLI arguments (before --workspace) of each writer."""
    return {
        "ingest": ["ingest", "--source", "killed", str(corpus)],
        "signals": [
            "signals", "run", "--only", "gopher_quality",
            "--param", "gopher_quality.tokenizer=regex", "--checkpoint-every", "100000000",
            "--batch-size", "100000",  # one commit: the state is before or after
        ],
        "mix": ["mix", "create", "killmix", "--group-by", "source", "--budget", "100000"],
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
    return out


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
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.kills} kills: {self.consistent} consistent ({self.landed_before} at the "
            f"state before, {self.landed_after} at the state after), {self.reruns_ok} re-runs "
            f"completed, {len(self.problems)} problems"
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


def kill_once(ws: Path, name: str, args: list[str], work: Path, rng: random.Random) -> Report:
    """One kill of writer `name` at a random point; the checks of the module docstring."""
    rep = Report(kills=1)
    before = state(ws)
    ref = work / "ref"
    shutil.rmtree(ref, ignore_errors=True)
    shutil.copytree(ws, ref, ignore=shutil.ignore_patterns(".write.lock", ".writer.*", ".tmp"))
    t0 = time.monotonic()
    done = run(ref, args)
    duration = time.monotonic() - t0
    if done.returncode != 0:
        rep.problems.append(f"{name}: the reference run failed: {done.stderr.strip()[-300:]}")
        return rep
    after = state(ref)
    shutil.rmtree(ref, ignore_errors=True)

    delay = rng.uniform(0.3, 1.0) * duration  # the first ~30% is Python starting up
    proc = subprocess.Popen(
        cli(ws, *args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(),
        cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    time.sleep(delay)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    try:
        mid = state(ws)
    except Exception as exc:  # noqa: BLE001 - any failure to open/read is the finding
        rep.problems.append(f"{name} killed at {delay:.2f}s: workspace unreadable: {exc}")
        return rep
    if mid == before:
        rep.landed_before += 1
    elif mid == after:
        rep.landed_after += 1
    else:
        diff = {
            k: (before.get(k), mid.get(k), after.get(k)) for k in mid if mid[k] != before.get(k)
        }
        rep.problems.append(f"{name} killed at {delay:.2f}s: neither before nor after: {diff}")
        return rep
    if mid["<duplicate documents>"]:
        rep.problems.append(f"{name}: duplicate documents after the kill")
        return rep
    rep.consistent += 1
    again = run(ws, args)
    if again.returncode != 0:
        rep.problems.append(f"{name}: the next run failed: {again.stderr.strip()[-300:]}")
        return rep
    final = state(ws)
    if name == "mix":  # each run saves one more version
        ok = final["mixtures"][0] == mid["mixtures"][0] + 1
    elif mid == before:
        ok = final == after
    else:  # it had committed: the re-run adds nothing but its own log row (ingests ...)
        ok = _content(final) == _content(after)
    stale = [p.name for p in (ws / ".tmp").glob(f"w-{proc.pid}-*") if (ws / ".tmp").is_dir()]
    if stale:
        rep.problems.append(f"{name}: spill directories of the killed writer remain: {stale}")
    elif ok and not final["<duplicate documents>"]:
        rep.reruns_ok += 1
    elif not ok:
        rep.problems.append(f"{name}: the re-run left {final}, expected {after}")
    return rep


def campaign(ws: Path, corpus_dir: Path, kills: int, seed: int = 0, log=print) -> Report:
    """`kills` kills cycling through the writers; each ingest kill uses a new file."""
    rng = random.Random(seed)
    total = Report()
    names = list(writers(corpus_dir / "x.jsonl"))
    for i in range(kills):
        name = names[i % len(names)]
        corpus = make_corpus(corpus_dir / f"c{i}.jsonl", 3000, seed=seed * 1000 + i)
        rep = kill_once(ws, name, writers(corpus)[name], corpus_dir, rng)
        for f in ("kills", "consistent", "landed_before", "landed_after", "reruns_ok"):
            setattr(total, f, getattr(total, f) + getattr(rep, f))
        total.problems += rep.problems
        log(f"  kill {i + 1:2d} ({name}): " + ("ok" if not rep.problems else rep.problems[0]))
    return total

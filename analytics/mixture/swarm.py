"""Proxy swarms: draw candidate mixtures, materialise each, train a small proxy on each,
measure bits per byte, store the runs, fit regressors and propose a mixture.

:func:`run_swarm` (``mixscope mix swarm``):

1. holds out up to ``heldout_per_group`` documents of every group (seeded hash order; a
   tenth of a small group, at least one document for groups of 2 or more) - the proxies
   never train on them, and they are the evaluation sets;
2. draws ``proxies`` mixtures over the remaining documents (:func:`sample_mixtures`;
   the shared sampler of :mod:`.dirichlet`, default RegMix's Dirichlet with the token
   distribution as prior, alpha = the token distribution; recorded in ``params``);
3. materialises each as a one-phase manifest of ``budget`` tokens
   (:func:`analytics.mixture.materialize.materialize`, parquet shards);
4. trains one proxy per mixture from the same seed (:mod:`.proxy`): in-process, in
   ``workers`` local processes (spawned), or one Ray task per proxy (``engine="ray"``, the
   cluster of :func:`analytics.engine.ray_connect`); results do not depend on the engine
   or the number of workers;
5. measures bits per byte on the held-out documents of each group and on the target texts;
6. stores the swarm (table ``proxy_swarms``) and its runs (table ``proxy_runs``) in one
   transaction, and optionally writes Olmix-compatible ``ratios.csv`` / ``metrics.csv``.

Metrics are named ``bpb:<group>`` (held-out documents of that group) and ``bpb:target``
(the target texts). A swarm's objective is a list of metrics averaged (default: the
target, else the ``--eval`` groups, else every group).

Engines: a proxy's task carries everything it needs (:func:`proxy_task`): the proxy
settings, its materialised documents as token blocks, and the held-out / target texts
already tokenised - numbers and arrays, never a workspace or swarm-directory path - so a
Ray worker on another machine needs neither the workspace nor a shared filesystem, only
this package. Training is deterministic per seed (:mod:`.proxy`), so every engine gives
the same metrics.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics.params import SEED_HELP, describe, option

from .errors import MixtureError, StrategyInputError
from .proxy import ProxyConfig
from .weights import MixtureWeights

Progress = Callable[[str, int, int], None]

SCHEMA: list[str] = [
    """CREATE TABLE IF NOT EXISTS proxy_swarms (
        name VARCHAR NOT NULL, created_at TIMESTAMPTZ, source VARCHAR, group_by VARCHAR,
        groups JSON, available JSON, budget BIGINT, objective JSON, params JSON)""",
    """CREATE TABLE IF NOT EXISTS proxy_runs (
        swarm VARCHAR NOT NULL, run_id VARCHAR NOT NULL, kind VARCHAR, label VARCHAR,
        seed INTEGER, weights JSON, metrics JSON, final_loss DOUBLE, train_tokens BIGINT,
        seconds DOUBLE, device VARCHAR, mixture VARCHAR, created_at TIMESTAMPTZ)""",
]
TARGET_METRIC = "bpb:target"
_NAME_OK = "letters, digits, '_', '.', '-'"


def metric_of(group: str) -> str:
    return f"bpb:{group}"


def check_name(name: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", name or ""):
        raise MixtureError(f"swarm name: {name!r} must be 1-64 {_NAME_OK}")
    return name


# ----------------------------------------------------------------------------- sampling


def sampler_description(prior: str, concentration: float | None, n_groups: int) -> str:
    """The swarm's draws in words (``n_groups`` 0: the groups are not known yet)."""
    from .dirichlet import PRIORS, DirichletSampler

    if prior not in PRIORS:
        raise StrategyInputError(
            f"prior: expected natural (the token distribution) or uniform, got {prior!r}"
        )
    if n_groups >= 1:
        names = [str(i) for i in range(n_groups)]
        return DirichletSampler.make(
            names, prior=prior, tokens=[1.0] * n_groups, concentration=concentration
        ).describe()
    where = "uniform" if prior == "uniform" else "token distribution"
    if concentration is None:
        if prior == "uniform":
            return "Dirichlet(G x uniform prior), alpha = 1 per group (flat)"
        return f"Dirichlet(1 x {where} prior), as RegMix's authors (alpha = the token distribution)"
    return f"Dirichlet({concentration:g} x {where} prior)"


def swarm_sampler(
    groups: Sequence[str], natural: np.ndarray, *, prior: str, concentration: float | None
) -> Any:
    """The swarm's :class:`~analytics.mixture.dirichlet.DirichletSampler`."""
    from .dirichlet import DirichletSampler

    return DirichletSampler.make(groups, prior=prior, tokens=natural, concentration=concentration)


def sample_mixtures(
    natural: np.ndarray,
    *,
    n: int,
    seed: int,
    prior: str = "natural",
    concentration: float | None = None,
) -> np.ndarray:
    """``n`` mixtures ~ Dirichlet(concentration * prior) (the shared sampler of
    :mod:`.dirichlet`); prior = the token distribution ``natural`` (RegMix's choice,
    default concentration 1) or uniform (default concentration G: alpha = 1). Seeded."""
    if not (isinstance(n, int) and n >= 1):
        raise StrategyInputError(f"proxies: expected an integer >= 1, got {n!r}")
    q = np.asarray(natural, dtype=np.float64)
    groups = [str(i) for i in range(len(q))]
    return swarm_sampler(groups, q, prior=prior, concentration=concentration).draw(n, seed)


# ----------------------------------------------------------------------------- workspace reads


def heldout_docs(cur: Any, *, group_by: str, per_group: int, seed: int) -> pd.DataFrame:
    """``doc_id, group, text`` of the held-out documents (see the module docstring)."""
    from .builder import derived_columns
    from .selection import group_expression, table_columns

    if not (isinstance(per_group, int) and per_group >= 1):
        raise StrategyInputError(f"heldout_per_group: expected an integer >= 1, got {per_group!r}")
    expr = group_expression(
        group_by,
        columns=table_columns(cur, "documents"),
        derived=derived_columns(cur),
        doc_ref='"documents"',
    )
    return cur.execute(
        f"""SELECT h.doc_id, h.g AS "group", t.text FROM (
              SELECT doc_id, g, rn, n FROM (
                SELECT doc_id, g, row_number() OVER (PARTITION BY g ORDER BY
                       md5_number(? || doc_id), doc_id) AS rn, count(*) OVER (PARTITION BY g) AS n
                FROM (SELECT doc_id, coalesce(CAST(({expr}) AS VARCHAR), '(null)') AS g
                      FROM documents))
              WHERE n >= 2 AND rn <= least(?, greatest(1, n // 10))) h
            JOIN document_text t ON t.doc_id = h.doc_id
            ORDER BY h.g, h.rn""",
        [f"heldout:{seed}:", int(per_group)],
    ).df()


def training_filter(heldout_ids: Sequence[str]) -> tuple[str, list[Any]]:
    """The filter that leaves the held-out documents out of every proxy's mixture."""
    return ("doc_id NOT IN (SELECT unnest(CAST(? AS VARCHAR[])))", [list(map(str, heldout_ids))])


def tokenizer_texts(
    cur: Any, flt: tuple[str, list[Any]], *, group_by: str, chars_per_group: int, seed: int
) -> list[str]:
    """About ``chars_per_group`` characters of training documents of every group."""
    from .builder import derived_columns
    from .selection import group_expression, table_columns

    expr = group_expression(
        group_by,
        columns=table_columns(cur, "documents"),
        derived=derived_columns(cur),
        doc_ref='"documents"',
    )
    rows = cur.execute(
        f"""SELECT text FROM (
              SELECT t.text, d.g, sum(length(t.text)) OVER (PARTITION BY d.g ORDER BY
                     md5_number(? || d.doc_id), d.doc_id) AS c
              FROM (SELECT doc_id, CAST(({expr}) AS VARCHAR) AS g FROM documents
                    WHERE ({flt[0]})) d JOIN document_text t ON t.doc_id = d.doc_id)
            WHERE c <= ? OR c = length(text) ORDER BY g, c""",
        [f"tok:{seed}:", *flt[1], int(chars_per_group)],
    ).fetchall()
    return [r[0][:chars_per_group] for r in rows]


# ----------------------------------------------------------------------------- one proxy


def read_texts(data_dir: Path) -> list[str]:
    """The texts of a materialised mixture (its parquet shards, in file order)."""
    import pyarrow.parquet as pq

    files = sorted(Path(data_dir).rglob("part-*.parquet"))
    texts: list[str] = []
    for f in files:
        texts.extend(t for t in pq.read_table(f, columns=["text"]).column("text").to_pylist() if t)
    if not texts:
        raise MixtureError(f"{data_dir}: the materialised mixture holds no documents")
    return texts


def shared_payload(tok: Any, evals: Mapping[str, Sequence[str]], cfg: ProxyConfig) -> dict:
    """What every proxy of a run needs besides its own data: the proxy settings, the
    vocabulary size, ``<|endoftext|>``'s id and the evaluation sets already tokenised
    (:func:`analytics.mixture.proxy.eval_windows`) - plain numbers and arrays, no paths."""
    from .proxy import EOS, eval_windows

    return {
        "config": cfg.to_dict(),
        "vocab": len(tok),
        "eos": int(tok.convert_tokens_to_ids(EOS)),
        "evals": {m: eval_windows(tok, list(ts), cfg) for m, ts in evals.items()},
    }


def proxy_job(texts: Sequence[str], tok: Any, cfg: ProxyConfig, seed: int) -> dict:
    """One proxy's own payload: its materialised documents as ``(n, block_size)`` token
    blocks (:func:`analytics.mixture.proxy.token_blocks`) and its seed."""
    from .proxy import token_blocks

    return {"blocks": token_blocks(texts, tok, cfg.block_size), "seed": int(seed)}


def proxy_task(
    shared: Mapping[str, Any],
    job: Mapping[str, Any],
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Train and evaluate one proxy, wherever it runs (in-process, a local worker process or
    a Ray task): everything comes in ``shared`` (:func:`shared_payload`) and ``job``
    (:func:`proxy_job`), nothing is read from the workspace or the swarm directory.
    Returns ``{"metrics", "final_loss", "train_tokens", "seconds", "device", "losses"}``."""
    from .proxy import bits_per_byte_windows, train_proxy

    cfg = ProxyConfig.from_dict(dict(shared["config"])).check()
    run = train_proxy(
        np.asarray(job["blocks"], dtype=np.int64),
        cfg,
        vocab=int(shared["vocab"]),
        eos=int(shared["eos"]),
        seed=int(job["seed"]),
        progress=progress,
    )
    metrics = {
        m: bits_per_byte_windows(run.model, ev, cfg)["bpb"] for m, ev in shared["evals"].items()
    }
    return {
        "metrics": metrics,
        "final_loss": float(np.mean(run.losses[-max(1, len(run.losses) // 10) :])),
        "train_tokens": int(run.tokens),
        "seconds": float(run.seconds),
        "device": run.device,
        "losses": run.losses,
    }


def check_engine(engine: str, ray_address: str | None = None) -> None:
    """An unknown engine, or a Ray cluster that does not answer -> one-line error at once
    (before any work)."""
    from analytics.engine import ENGINES, EngineError, ray_connect

    if engine not in ENGINES:
        raise EngineError(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if engine == "ray":
        ray_connect(ray_address)


def run_tasks(
    shared: Mapping[str, Any],
    jobs: Sequence[Mapping[str, Any]],
    *,
    workers: int = 1,
    engine: str = "local",
    ray_address: str | None = None,
    progress: Progress | None = None,
) -> list[dict]:
    """Run one proxy per job; results in job order, identical whatever the engine.

    ``local``: in-process (``workers`` = 1) or in ``workers`` spawned processes. ``ray``:
    one Ray task per proxy on the cluster at ``ray_address`` (None: a local Ray instance),
    each reserving ``threads`` CPUs (and a GPU when the proxy trains on one); the shared
    payload is put in the object store once, each proxy's token blocks travel with its task.
    ``progress("proxies", done, total)`` after each proxy (and, in process,
    ``progress("proxy i/n: training", step, steps)``)."""
    if not (isinstance(workers, int) and workers >= 1):
        raise StrategyInputError(f"workers: expected an integer >= 1, got {workers!r}")
    check_engine(engine, ray_address)
    report = progress or (lambda s, d, t: None)
    n = len(jobs)
    report("proxies", 0, n)
    if engine == "ray":
        return _run_ray(shared, jobs, ray_address, report)
    out: list[dict | None] = [None] * n
    if workers == 1 or n == 1:
        for i, job in enumerate(jobs):
            stage = f"proxy {i + 1}/{n}: training"
            out[i] = proxy_task(shared, job, progress=lambda s, t, _st=stage: report(_st, s, t))
            report("proxies", i + 1, n)
        return out  # type: ignore[return-value]
    import multiprocessing as mp

    from analytics.engine import _plain_main

    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, n), mp_context=ctx) as pool:
        with _plain_main():  # spawned workers must not re-run the caller's __main__
            futs = {pool.submit(proxy_task, shared, job): i for i, job in enumerate(jobs)}
        done = 0
        try:
            for fut in as_completed(futs):
                out[futs[fut]] = fut.result()
                done += 1
                report("proxies", done, n)
        except BaseException:
            for f in futs:
                f.cancel()
            raise
    return out  # type: ignore[return-value]


_RAY_PROXY = None


def _run_ray(
    shared: Mapping[str, Any],
    jobs: Sequence[Mapping[str, Any]],
    address: str | None,
    report: Progress,
) -> list[dict]:
    from analytics.engine import ray_connect

    global _RAY_PROXY
    ray = ray_connect(address)
    if _RAY_PROXY is None:
        _RAY_PROXY = ray.remote(max_retries=1)(proxy_task)
    cfg = ProxyConfig.from_dict(dict(shared["config"]))
    res = ray.cluster_resources()
    gpu = cfg.device == "cuda" or (cfg.device == "auto" and res.get("GPU", 0) >= 1)
    opts = {"num_cpus": cfg.threads, "num_gpus": 1 if gpu else 0}
    slots = max(1, int(res.get("CPU", 1)) // max(1, cfg.threads))
    shared_ref = ray.put(dict(shared))
    n = len(jobs)
    out: list[dict | None] = [None] * n
    todo = list(range(n))[::-1]
    running: dict[Any, int] = {}
    done = 0
    try:
        while todo or running:
            while todo and len(running) < 2 * slots:  # bounded: token blocks in the store
                i = todo.pop()
                running[_RAY_PROXY.options(**opts).remote(shared_ref, dict(jobs[i]))] = i
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                out[running.pop(ref)] = ray.get(ref)
                done += 1
                report("proxies", done, n)
    finally:
        for ref in running:
            try:
                ray.cancel(ref)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
    return out  # type: ignore[return-value]


# ----------------------------------------------------------------------------- the swarm


@dataclass(frozen=True)
class SwarmOptions:
    """The settings of ``mixscope mix swarm``, their defaults and help written once: the CLI's
    ``--options``, the Mixtures page's widgets and the swarm's record read them from here."""

    group_by: str = option("source", "What the mixture weighs.")
    proxies: int = option(16, "Number of proxy runs (mixtures drawn).")
    steps: int = option(200, "Training steps per proxy.")
    budget: int | None = option(
        None,
        "Tokens (workspace tokenizer) materialised per proxy mixture; default "
        "steps x batch x block.",
    )
    seed: int = option(0, SEED_HELP)
    prior: str = option(
        "natural", "Dirichlet prior: natural (token distribution, RegMix) or uniform."
    )
    concentration: float | None = option(
        None,
        "alpha = concentration x prior; default 1 for the token prior (RegMix's "
        "authors), G for uniform (alpha = 1 per group).",
    )
    heldout_per_group: int = option(32, "Held-out documents per group.")
    eval_chars: int = option(2000, "Characters of each held-out text scored.")
    tokenizer_chars_per_group: int = option(
        200_000, "Characters of training documents per group the swarm tokenizer learns from."
    )
    workers: int = option(1, "Local processes training proxies (--engine local).")
    engine: str = option(
        "local",
        "local (this machine: in-process or --workers processes) or ray (one Ray task "
        "per proxy; the same metrics).",
    )
    ray_address: str | None = option(
        None, "--engine ray: auto or HOST:PORT (default: a local Ray)."
    )
    threads: int = option(1, "CPU threads per proxy (fixed: determinism).")
    device: str = option("auto", "auto, cpu or cuda.")
    n_layer: int = option(2, "Proxy layers.")
    n_embd: int = option(64, "Proxy width.")
    n_head: int = option(2, "Proxy attention heads.")
    vocab_size: int = option(2048, "Swarm tokenizer vocabulary.")
    block_size: int = option(128, "Tokens per training block.")
    batch_size: int = option(8, "Blocks per step.")
    lr: float = option(3e-3, "Peak learning rate.")

    def config(self) -> ProxyConfig:
        """The proxies' :class:`~analytics.mixture.proxy.ProxyConfig` (checked)."""
        return ProxyConfig(**{c: getattr(self, o) for o, c in _CONFIG_FIELDS.items()}).check()

    def spec(
        self,
        name: str,
        *,
        eval_groups: Sequence[str] = (),
        target_texts: Sequence[str] = (),
        target_name: str | None = None,
    ) -> SwarmSpec:
        """The :class:`SwarmSpec` of swarm ``name`` with these options and this target."""
        return SwarmSpec(
            name,
            **{f: getattr(self, f) for f in _SPEC_FIELDS},
            eval_groups=list(eval_groups),
            target_texts=list(target_texts),
            target_name=target_name,
            config=self.config(),
        )


# SwarmOptions' fields that a SwarmSpec holds as they are, and those its ProxyConfig holds
_SPEC_FIELDS = (
    "group_by", "proxies", "budget", "seed", "prior", "concentration", "heldout_per_group",
    "tokenizer_chars_per_group", "workers", "engine", "ray_address",
)  # fmt: skip
_CONFIG_FIELDS = {
    "steps": "steps", "n_layer": "n_layer", "n_embd": "n_embd", "n_head": "n_head",
    "vocab_size": "vocab_size", "block_size": "block_size", "batch_size": "batch_size",
    "lr": "learning_rate", "threads": "threads", "device": "device",
    "eval_chars": "eval_max_chars",
}  # fmt: skip


@dataclass
class SwarmSpec:
    """Everything that defines a swarm (recorded in ``proxy_swarms.params``)."""

    name: str
    group_by: str = "source"
    proxies: int = 16
    budget: int | None = None  # workspace-tokenizer tokens per proxy mixture
    seed: int = 0
    prior: str = "natural"
    concentration: float | None = None  # None: 1 (token prior) or G (uniform: alpha = 1)
    eval_groups: list[str] = field(default_factory=list)
    target_texts: list[str] = field(default_factory=list)
    target_name: str | None = None
    heldout_per_group: int = 32
    tokenizer_chars_per_group: int = 200_000
    config: ProxyConfig = field(default_factory=ProxyConfig)
    workers: int = 1
    engine: str = "local"  # local | ray
    ray_address: str | None = None

    def resolved_budget(self) -> int:
        return int(self.budget or self.config.steps * self.config.tokens_per_step)

    def objective(self) -> list[str]:
        if self.target_texts:
            return [TARGET_METRIC]
        return [metric_of(g) for g in self.eval_groups]

    def options(self) -> SwarmOptions:
        """This spec's :class:`SwarmOptions` (the target aside)."""
        return SwarmOptions(
            **{f: getattr(self, f) for f in _SPEC_FIELDS},
            **{o: getattr(self.config, c) for o, c in _CONFIG_FIELDS.items()},
        )


@dataclass
class Swarm:
    """A stored swarm: its record and its runs (one row per proxy run)."""

    name: str
    group_by: str
    groups: list[str]
    available: dict[str, float]
    budget: int
    objective: list[str]
    params: dict[str, Any]
    runs: pd.DataFrame
    source: str = "trained"

    @property
    def natural(self) -> np.ndarray:
        a = np.array([self.available.get(g, 0.0) for g in self.groups], dtype=np.float64)
        return a / a.sum()

    def swarm_runs(self) -> pd.DataFrame:
        return self.runs[self.runs["kind"].isin(["swarm", "imported"])].reset_index(drop=True)

    def weight_matrix(self, runs: pd.DataFrame | None = None) -> np.ndarray:
        r = self.swarm_runs() if runs is None else runs
        return np.array([[float(w.get(g, 0.0)) for g in self.groups] for w in r["weights"]])

    def metric_frame(self, runs: pd.DataFrame | None = None) -> pd.DataFrame:
        r = self.swarm_runs() if runs is None else runs
        return pd.DataFrame(list(r["metrics"]), index=r["run_id"].tolist())

    def objective_values(self, objective: Sequence[str] | None = None) -> np.ndarray:
        cols = list(objective or self.objective)
        m = self.metric_frame()
        missing = [c for c in cols if c not in m.columns]
        if missing:
            raise StrategyInputError(
                f"objective: swarm {self.name!r} has no metric(s) {missing}; it has "
                f"{sorted(m.columns)}"
            )
        return m[cols].to_numpy(dtype=np.float64).mean(axis=1)

    @property
    def directory(self) -> str | None:
        return self.params.get("directory")


def ensure_tables(con: Any) -> None:
    for ddl in SCHEMA:
        con.execute(ddl)


def has_swarms(cur: Any) -> bool:
    from analytics.db import table_exists

    return table_exists(cur, "proxy_swarms")


def list_swarms(cur: Any) -> pd.DataFrame:
    """name, created_at, source, group_by, groups (count), runs, budget, objective."""
    if not has_swarms(cur):
        return pd.DataFrame(
            columns=[
                "name",
                "created_at",
                "source",
                "group_by",
                "groups",
                "runs",
                "budget",
                "objective",
            ]
        )
    return cur.execute(
        """SELECT s.name, s.created_at, s.source, s.group_by,
                  json_array_length(s.groups) AS groups,
                  (SELECT count(*) FROM proxy_runs r WHERE r.swarm = s.name) AS runs,
                  s.budget, CAST(s.objective AS VARCHAR) AS objective
           FROM proxy_swarms s ORDER BY s.created_at DESC, s.name"""
    ).df()


def load_swarm(cur: Any, name: str) -> Swarm:
    if not has_swarms(cur):
        raise MixtureError(f"swarm {name!r}: this workspace has no proxy swarms yet")
    row = cur.execute(
        "SELECT group_by, groups, available, budget, objective, params, source "
        "FROM proxy_swarms WHERE name = ?",
        [name],
    ).fetchone()
    if row is None:
        names = [r[0] for r in cur.execute("SELECT name FROM proxy_swarms").fetchall()]
        raise MixtureError(f"swarm {name!r}: no such swarm; swarms are {sorted(names)}")
    runs = cur.execute(
        "SELECT run_id, kind, label, seed, weights, metrics, final_loss, train_tokens, seconds, "
        "device, mixture, created_at FROM proxy_runs WHERE swarm = ? ORDER BY created_at, run_id",
        [name],
    ).df()
    for col in ("weights", "metrics"):
        runs[col] = [json.loads(v) if isinstance(v, str) else (v or {}) for v in runs[col]]
    return Swarm(
        name=name,
        group_by=row[0],
        groups=json.loads(row[1]),
        available=json.loads(row[2]),
        budget=int(row[3]),
        objective=json.loads(row[4]),
        params=json.loads(row[5]),
        runs=runs,
        source=row[6],
    )


def _insert_runs(con: Any, swarm: str, rows: Sequence[Mapping[str, Any]]) -> None:
    now = _dt.datetime.now(_dt.UTC)
    for r in rows:
        con.execute(
            "INSERT INTO proxy_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                swarm,
                r["run_id"],
                r["kind"],
                r.get("label"),
                r.get("seed"),
                json.dumps(r["weights"]),
                json.dumps(r["metrics"]),
                r.get("final_loss"),
                r.get("train_tokens"),
                r.get("seconds"),
                r.get("device"),
                r.get("mixture"),
                now,
            ],
        )


def store_swarm(
    ws: Any,
    *,
    name: str,
    source: str,
    group_by: str,
    groups: Sequence[str],
    available: Mapping[str, float],
    budget: int,
    objective: Sequence[str],
    params: Mapping[str, Any],
    runs: Sequence[Mapping[str, Any]],
    replace: bool = False,
) -> None:
    """Write the swarm record and its runs in one transaction."""
    with ws.write(job=f"mix swarm {name}") as con:
        ensure_tables(con)
        exists = con.execute("SELECT count(*) FROM proxy_swarms WHERE name = ?", [name]).fetchone()
        if exists[0]:
            if not replace:
                raise MixtureError(
                    f"swarm {name!r} already exists; choose another name or pass --replace"
                )
            con.execute("DELETE FROM proxy_swarms WHERE name = ?", [name])
            con.execute("DELETE FROM proxy_runs WHERE swarm = ?", [name])
        con.execute(
            "INSERT INTO proxy_swarms VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                name,
                _dt.datetime.now(_dt.UTC),
                source,
                group_by,
                json.dumps(list(groups)),
                json.dumps(dict(available)),
                int(budget),
                json.dumps(list(objective)),
                json.dumps(params, default=str),
            ],
        )
        _insert_runs(con, name, runs)


def add_runs(ws: Any, swarm: str, runs: Sequence[Mapping[str, Any]], *, job: str) -> None:
    """Store proxy runs; a run trained on a saved mixture version (its "mixture" is
    NAME@V and its label "proposal") is also linked to that version (lineage)."""
    from .lineage import link_run
    from .store import parse_ref

    with ws.write(job=job) as con:
        ensure_tables(con)
        _insert_runs(con, swarm, runs)
        for r in runs:
            if r.get("mixture") and r.get("label") == "proposal":
                name, version = parse_ref(str(r["mixture"]))
                link_run(
                    con,
                    name,
                    version,
                    str(r["run_id"])[:64],
                    kind="proxy",
                    metrics=dict(r.get("metrics") or {}),
                    note=f"validate-proxy of swarm {swarm}, seed {r.get('seed')}",
                )


def _materialize_one(
    ws: Any,
    cur: Any,
    weights: Mapping[str, float],
    *,
    group_by: str,
    flt: tuple[str, list[Any]],
    budget: int,
    seed: int,
    out_dir: Path,
    method: Mapping[str, Any],
) -> Any:
    """A one-phase manifest of ``weights`` over the training documents, materialised as
    parquet shards under ``out_dir`` (replacing it); returns the manifest."""
    from .builder import PhaseSpec, create_manifest, derived_columns
    from .materialize import materialize, open_for_materialize

    spec = PhaseSpec(
        "main", int(budget), MixtureWeights(dict(weights), method="swarm"), method=dict(method)
    )
    manifest = create_manifest(cur, flt, group_by=group_by, phases=[spec], seed=seed)
    mcon = open_for_materialize(ws, snapshot=manifest.corpus_snapshot_id)
    try:
        materialize(
            mcon,
            manifest,
            out_dir,
            fmt="parquet",
            columns=("text",),
            overwrite=True,
            derived=derived_columns(mcon),
            verify=False,
        )
    finally:
        mcon.close()
    return manifest


@dataclass
class SwarmReport:
    name: str
    directory: Path
    runs: list[dict]
    seconds: dict[str, float]
    sampler: str
    objective: list[str]


def swarm_dir(ws: Any, name: str) -> Path:
    return Path(ws.path) / "swarms" / name


def run_swarm(
    ws: Any,
    spec: SwarmSpec | SwarmOptions,
    *,
    name: str | None = None,
    eval_groups: Sequence[str] = (),
    target_texts: Sequence[str] = (),
    target_name: str | None = None,
    replace: bool = False,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> SwarmReport:
    """Run a swarm and store it (see the module docstring). ``spec``: a :class:`SwarmSpec`,
    or :class:`SwarmOptions` with the swarm's ``name`` and target given here."""
    if isinstance(spec, SwarmOptions):
        if name is None:
            raise MixtureError("run_swarm: SwarmOptions need the swarm's name (name=...)")
        spec = spec.spec(
            name, eval_groups=eval_groups, target_texts=target_texts, target_name=target_name
        )
    _check_swarm(spec)
    say = log or (lambda _m: None)
    report = progress or (lambda s, d, t: None)
    cur = ws.cursor()
    _check_new(cur, spec, replace=replace)
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    held, flt, available = _training_groups(cur, spec)
    groups = list(available)
    natural = np.array([available[g] for g in groups])
    natural = natural / natural.sum()
    dsampler = swarm_sampler(groups, natural, prior=spec.prior, concentration=spec.concentration)
    sampler = dsampler.describe()
    budget = spec.resolved_budget()
    objective = spec.objective() or [metric_of(g) for g in groups]
    evals = _eval_sets(held, spec)
    secs["held-out selection"] = time.perf_counter() - t0

    out = swarm_dir(ws, spec.name)
    tmp = out.with_name(f".{spec.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        (tmp / "eval.json").write_text(json.dumps(evals), encoding="utf-8")
        runs = _train_proxies(
            ws, cur, spec, dsampler, tmp=tmp, evals=evals, flt=flt, groups=groups,
            budget=budget, report=report, secs=secs,
        )  # fmt: skip
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    params = _swarm_params(spec, dsampler, held=held, out=out, secs=secs)
    store_swarm(
        ws,
        name=spec.name,
        source="trained",
        group_by=spec.group_by,
        groups=groups,
        available=available,
        budget=budget,
        objective=objective,
        params=params,
        runs=runs,
        replace=replace,
    )
    say(f"swarm {spec.name}: {len(runs)} proxies over {len(groups)} groups ({sampler})")
    return SwarmReport(spec.name, out, runs, secs, sampler, objective)


def _train_proxies(
    ws: Any,
    cur: Any,
    spec: SwarmSpec,
    dsampler: Any,
    *,
    tmp: Path,
    evals: Mapping[str, Sequence[str]],
    flt: tuple[str, list[Any]],
    groups: Sequence[str],
    budget: int,
    report: Progress,
    secs: dict[str, float],
) -> list[dict]:
    """Tokenizer, draws, materialisation, training: the swarm's runs (timings in ``secs``)."""
    sampler = dsampler.describe()
    t1 = time.perf_counter()
    tok = _train_tokenizer(cur, flt, spec, tmp / "tokenizer", report)
    secs["tokenizer"] = time.perf_counter() - t1

    mixes = dsampler.draw(spec.proxies, spec.seed)
    t2 = time.perf_counter()
    shared = shared_payload(tok, evals, spec.config)
    jobs, run_meta = _proxy_jobs(
        ws,
        cur,
        spec,
        mixes,
        groups=groups,
        flt=flt,
        budget=budget,
        tok=tok,
        tmp=tmp,
        sampler=sampler,
        report=report,
    )
    secs["materialise"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    results = run_tasks(
        shared,
        jobs,
        workers=spec.workers,
        engine=spec.engine,
        ray_address=spec.ray_address,
        progress=report,
    )
    secs["train + evaluate"] = time.perf_counter() - t3
    return _swarm_runs(spec, run_meta, results)


def _check_swarm(spec: SwarmSpec) -> None:
    """The spec's own errors, before any work (a Ray cluster that does not answer: now)."""
    check_name(spec.name)
    spec.config.check()
    check_engine(spec.engine, spec.ray_address)
    if not (isinstance(spec.proxies, int) and spec.proxies >= 1):
        raise StrategyInputError(f"proxies: expected an integer >= 1, got {spec.proxies!r}")


def _check_new(cur: Any, spec: SwarmSpec, *, replace: bool) -> None:
    """A swarm of that name (unless ``replace``) or an unknown ``group_by``: an error."""
    from .builder import check_group_by

    if not replace and has_swarms(cur):
        hit = cur.execute("SELECT 1 FROM proxy_swarms WHERE name = ?", [spec.name]).fetchone()
        if hit:
            raise MixtureError(
                f"swarm {spec.name!r} already exists; choose another name or pass --replace"
            )
    check_group_by(cur, spec.group_by)


def _training_groups(
    cur: Any, spec: SwarmSpec
) -> tuple[pd.DataFrame, tuple[str, list[Any]], dict[str, float]]:
    """(held-out documents, the filter leaving them out, available tokens of every group
    with training tokens, in group order); checks the ``--eval`` groups."""
    from .builder import group_table

    held = heldout_docs(
        cur, group_by=spec.group_by, per_group=spec.heldout_per_group, seed=spec.seed
    )
    flt = training_filter(held["doc_id"].tolist())
    counts = group_table(cur, flt, group_by=spec.group_by)
    counts = counts[counts["tokens"] > 0]
    groups = [str(g) for g in counts["group"]]
    if len(groups) < 2:
        raise StrategyInputError(f"group_by {spec.group_by!r}: a swarm needs at least 2 groups")
    unknown = [g for g in spec.eval_groups if g not in groups]
    if unknown:
        raise StrategyInputError(f"--eval: unknown group(s) {unknown}; groups are {groups}")
    return held, flt, dict(zip(groups, counts["tokens"].astype(float)))


def _eval_sets(held: pd.DataFrame, spec: SwarmSpec) -> dict[str, list[str]]:
    """The texts every proxy is scored on, by metric (held-out groups, then the target)."""
    evals: dict[str, list[str]] = {}
    for g, part in held.groupby("group", sort=True):
        evals[metric_of(str(g))] = [t[: spec.config.eval_max_chars] for t in part["text"]]
    if spec.target_texts:
        evals[TARGET_METRIC] = [t[: spec.config.eval_max_chars] for t in spec.target_texts]
    return evals


def _train_tokenizer(
    cur: Any, flt: tuple[str, list[Any]], spec: SwarmSpec, path: Path, report: Progress
) -> Any:
    """Train the swarm's tokenizer on its training documents, save it at ``path`` and load
    it back (as validate-proxy will load it)."""
    from .proxy import load_tokenizer, train_swarm_tokenizer

    report("tokenizer", 0, 1)
    tok_texts = tokenizer_texts(
        cur,
        flt,
        group_by=spec.group_by,
        chars_per_group=spec.tokenizer_chars_per_group,
        seed=spec.seed,
    )
    train_swarm_tokenizer(tok_texts, path, vocab_size=spec.config.vocab_size)
    tok = load_tokenizer(path)
    report("tokenizer", 1, 1)
    return tok


def _proxy_jobs(
    ws: Any,
    cur: Any,
    spec: SwarmSpec,
    mixes: np.ndarray,
    *,
    groups: Sequence[str],
    flt: tuple[str, list[Any]],
    budget: int,
    tok: Any,
    tmp: Path,
    sampler: str,
    report: Progress,
) -> tuple[list[dict], list[dict]]:
    """Materialise every drawn mixture and turn it into its proxy's job; returns (jobs,
    the runs' ids and weights)."""
    jobs = []
    run_meta = []
    method = {
        "name": "swarm-proxy",
        "params": {"swarm": spec.name, "sampler": sampler},
        "diagnostics": {},
    }
    for i, w in enumerate(mixes):
        report("materialising", i, len(mixes))
        weights = dict(zip(groups, w.tolist()))
        data = tmp / f"proxy-{i:03d}" / "data"
        _materialize_one(
            ws,
            cur,
            weights,
            group_by=spec.group_by,
            flt=flt,
            budget=budget,
            seed=spec.seed,
            out_dir=data,
            method=method,
        )
        # the proxy gets its documents as token blocks: no path travels to a worker
        jobs.append(proxy_job(read_texts(data), tok, spec.config, spec.seed))
        shutil.rmtree(data, ignore_errors=True)
        run_meta.append({"run_id": f"{spec.name}-{i:03d}", "weights": weights})
    report("materialising", len(mixes), len(mixes))
    return jobs, run_meta


def _swarm_runs(spec: SwarmSpec, run_meta: Sequence[dict], results: Sequence[dict]) -> list[dict]:
    """The stored rows of the swarm's proxy runs."""
    return [
        {
            **meta,
            "kind": "swarm",
            "label": meta["run_id"],
            "seed": spec.seed,
            "metrics": res["metrics"],
            "final_loss": res["final_loss"],
            "train_tokens": res["train_tokens"],
            "seconds": res["seconds"],
            "device": res["device"],
        }
        for meta, res in zip(run_meta, results)
    ]


def _swarm_params(
    spec: SwarmSpec, dsampler: Any, *, held: pd.DataFrame, out: Path, secs: dict[str, float]
) -> dict[str, Any]:
    """The swarm's ``params`` record (everything needed to explain and validate it)."""
    return {
        "sampler": dsampler.describe(),
        "prior": dsampler.prior,
        "concentration": dsampler.concentration,
        "dirichlet": dsampler.record(),
        "seed": spec.seed,
        "proxies": spec.proxies,
        "heldout_per_group": spec.heldout_per_group,
        "heldout_ids": held["doc_id"].tolist(),
        "eval_groups": spec.eval_groups,
        "target": spec.target_name,
        "target_texts": len(spec.target_texts),
        "config": spec.config.to_dict(),
        "workers": spec.workers,
        "engine": spec.engine,
        "directory": str(out),
        "seconds": secs,
        "options": describe(spec.options()),
    }


# ----------------------------------------------------------------------------- Olmix CSVs


def write_olmix_csv(
    swarm: Swarm, out_dir: str | Path, *, kinds: Sequence[str] = ("swarm", "imported")
) -> tuple[Path, Path]:
    """``ratios.csv`` (run_id, name, one column per group; rows sum to 1) and ``metrics.csv``
    (run_id, name, one column per metric), Olmix's ``load_from_csv`` format."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = swarm.runs[swarm.runs["kind"].isin(list(kinds))]
    ratios = pd.DataFrame(swarm.weight_matrix(runs), columns=swarm.groups)
    ratios = ratios.div(ratios.sum(axis=1), axis=0)
    ratios.insert(0, "name", runs["label"].tolist())
    ratios.insert(0, "run_id", runs["run_id"].tolist())
    metrics = swarm.metric_frame(runs).reset_index(drop=True)
    metrics.insert(0, "name", runs["label"].tolist())
    metrics.insert(0, "run_id", runs["run_id"].tolist())
    rp, mp_ = out / "ratios.csv", out / "metrics.csv"
    ratios.to_csv(rp, index=False, float_format="%.10g")
    metrics.to_csv(mp_, index=False, float_format="%.10g")
    return rp, mp_


def read_olmix_csv(csv_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ratios, metrics) joined on run_id, validated like Olmix's ``load_from_csv``: both
    files need ``run_id``; ratio rows must sum to 1 (within 0.01); metrics are numeric."""
    d = Path(csv_dir)
    frames = {}
    for fname in ("ratios.csv", "metrics.csv"):
        p = d / fname
        if not p.is_file():
            raise StrategyInputError(
                f"{p}: not found (a swarm directory holds ratios.csv and metrics.csv)"
            )
        try:
            f = pd.read_csv(p)
        except Exception as exc:
            raise StrategyInputError(f"{p}: not a readable CSV ({exc})") from None
        f.columns = [str(c).strip() for c in f.columns]
        if "run_id" not in f.columns:
            raise StrategyInputError(f"{p}: expected a 'run_id' column, got {list(f.columns)}")
        f["run_id"] = f["run_id"].astype(str)
        if f["run_id"].duplicated().any():
            dup = f.loc[f["run_id"].duplicated(), "run_id"].iloc[0]
            raise StrategyInputError(f"{p}: run_id {dup!r} appears twice")
        frames[fname] = f
    ratios, metrics = frames["ratios.csv"], frames["metrics.csv"]
    gcols = [c for c in ratios.columns if c not in ("run_id", "name")]
    if len(gcols) < 2:
        raise StrategyInputError(f"{d / 'ratios.csv'}: expected at least 2 group columns")
    for c in gcols:
        vals = pd.to_numeric(ratios[c], errors="coerce")
        bad = ~np.isfinite(vals.to_numpy(dtype=float)) | (vals.to_numpy(dtype=float) < 0)
        if bad.any():
            row = int(np.argmax(bad))
            raise StrategyInputError(
                f"{d / 'ratios.csv'} line {row + 2}, column {c!r}: expected a ratio >= 0, got "
                f"{ratios[c].iloc[row]!r}"
            )
        ratios[c] = vals
    sums = ratios[gcols].sum(axis=1).to_numpy()
    off = np.abs(sums - 1.0) > 0.01
    if off.any():
        row = int(np.argmax(off))
        raise StrategyInputError(
            f"{d / 'ratios.csv'} line {row + 2}: ratios sum to {sums[row]:.4g}, expected 1"
        )
    mcols = [c for c in metrics.columns if c not in ("run_id", "name")]
    if not mcols:
        raise StrategyInputError(f"{d / 'metrics.csv'}: expected at least one metric column")
    for c in mcols:
        vals = pd.to_numeric(metrics[c], errors="coerce")
        if vals.isna().any():
            row = int(np.argmax(vals.isna().to_numpy()))
            raise StrategyInputError(
                f"{d / 'metrics.csv'} line {row + 2}, column {c!r}: expected a number, got "
                f"{metrics[c].iloc[row]!r}"
            )
        metrics[c] = vals.astype(float)
    common = [r for r in ratios["run_id"] if r in set(metrics["run_id"])]
    if len(common) == 0:
        raise StrategyInputError(f"{d}: no run_id appears in both ratios.csv and metrics.csv")
    ratios = ratios.set_index("run_id").loc[common].reset_index()
    metrics = metrics.set_index("run_id").loc[common].reset_index()
    return ratios, metrics


def import_swarm(
    ws: Any,
    name: str,
    csv_dir: str | Path,
    *,
    group_by: str,
    budget: int,
    objective: Sequence[str] | None = None,
    replace: bool = False,
) -> Swarm:
    """Store runs done elsewhere (Olmix ``ratios.csv`` + ``metrics.csv``) as swarm ``name``.
    Ratio columns must be groups of ``group_by`` in this workspace (their available tokens
    give the natural mixture for the KL bound and the epoch caps)."""
    from .builder import check_group_by, group_table

    check_name(name)
    cur = ws.cursor()
    check_group_by(cur, group_by)
    ratios, metrics = read_olmix_csv(csv_dir)
    gcols = [c for c in ratios.columns if c not in ("run_id", "name")]
    counts = group_table(cur, None, group_by=group_by)
    avail = dict(zip(counts["group"].astype(str), counts["tokens"].astype(float)))
    unknown = [g for g in gcols if g not in avail]
    if unknown:
        raise StrategyInputError(
            f"{Path(csv_dir) / 'ratios.csv'}: column(s) {unknown} are not groups of "
            f"{group_by!r} in this workspace ({sorted(avail)[:10]}...)"
        )
    mcols = [c for c in metrics.columns if c not in ("run_id", "name")]
    obj = list(objective) if objective else mcols
    bad = [c for c in obj if c not in mcols]
    if bad:
        raise StrategyInputError(f"--objective: unknown metric(s) {bad}; metrics are {mcols}")
    if not (isinstance(budget, int) and budget > 0):
        raise StrategyInputError(f"--budget: expected a positive number of tokens, got {budget!r}")
    runs = []
    for (_, r), (_, m) in zip(ratios.iterrows(), metrics.iterrows()):
        w = {g: float(r[g]) for g in gcols}
        s = sum(w.values())
        runs.append(
            {
                "run_id": str(r["run_id"]),
                "kind": "imported",
                "label": str(r["name"]) if "name" in ratios.columns else str(r["run_id"]),
                "weights": {g: v / s for g, v in w.items()},
                "metrics": {c: float(m[c]) for c in mcols},
            }
        )
    store_swarm(
        ws,
        name=name,
        source=f"imported from {Path(csv_dir)}",
        group_by=group_by,
        groups=gcols,
        available={g: avail[g] for g in gcols},
        budget=budget,
        objective=obj,
        params={"imported_from": str(Path(csv_dir).resolve())},
        runs=runs,
        replace=replace,
    )
    return load_swarm(ws.cursor(), name)

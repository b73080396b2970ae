"""Fit a stored swarm, propose a mixture, save it, and validate it with more proxies.

:func:`fit_swarm` fits the three regressors of :mod:`.propose` on the swarm's runs (objective:
the mean of the chosen metrics), proposes the mixture minimising the predicted objective
under the constraints, and predicts the objective of the proposal and of the usual
baselines (natural, uniform, temperature T=2, UniMax at 4 epochs) with every regressor, so
the spread across regressors is visible. :func:`save_proposal` stores the proposal as a
saved mixture whose method block names the swarm; :func:`validate_proxy`
(``mixscope mix validate-proxy NAME@V``) trains more proxies - on the proposal, natural and
uniform, with the swarm's settings and held-out sets - and puts measured next to predicted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics.params import option

from .errors import MixtureError, StrategyInputError
from .propose import (
    LABELS,
    REGRESSORS,
    Constraints,
    FittedRegressor,
    chosen_regressors,
    fit_regressors,
    kl,
    make_constraints,
    objective_predictor,
    predict_all,
    propose,
)
from .swarm import Swarm, add_runs, load_swarm, run_tasks, swarm_dir, training_filter
from .weights import MixtureWeights

Progress = Callable[[str, int, int], None]
BASELINES = ("natural", "uniform", "temperature", "unimax")


@dataclass
class SwarmFit:
    swarm: Swarm
    objective: list[str]
    regressors: dict[str, FittedRegressor]
    use: str
    constraints: Constraints
    proposal: dict[str, float]
    n_candidates: int
    comparison: pd.DataFrame  # one row per mixture: predictions, mean, spread, chosen
    used: list[str]  # the regressors whose mean prediction the proposal minimises

    def scores(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"regressor": n, "model": LABELS[n], "spearman": r.spearman, "r2": r.r2}
                for n, r in self.regressors.items()
            ]
        )

    def predicted(self, mixture: str = "proposal") -> float:
        """The minimised prediction (mean of the chosen regressors) for ``mixture``."""
        row = self.comparison[self.comparison["mixture"] == mixture]
        return float(row["chosen"].iloc[0])

    def method_block(self) -> dict[str, Any]:
        row = self.comparison[self.comparison["mixture"] == "proposal"].iloc[0]
        return {
            "name": "swarm",
            "params": {
                "swarm": self.swarm.name,
                "objective": self.objective,
                "regressor": self.use,
                "regressors_used": self.used,
                "constraints": self.constraints.describe(),
                "sampler": self.swarm.params.get("sampler"),
                "runs": int(len(self.swarm.swarm_runs())),
            },
            "diagnostics": {
                "fit": {n: r.scores() for n, r in self.regressors.items()},
                "cv": "5-fold out-of-fold",
                "predicted": {n: float(row[n]) for n in self.regressors},
                "predicted_mean": float(row["mean"]),
                "predicted_chosen": float(row["chosen"]),
                "kl_to_natural": kl(
                    np.array([self.proposal[g] for g in self.swarm.groups]), self.swarm.natural
                ),
                "n_candidates": self.n_candidates,
                "comparison": self.comparison.drop(columns=["measured"]).to_dict(orient="records"),
            },
        }


def baseline_weights(swarm: Swarm) -> dict[str, dict[str, float]]:
    """Natural, uniform, temperature (T=2) and UniMax (4 epochs) over the swarm's groups."""
    from .builder import token_strategy_weights

    tokens = {g: swarm.available[g] for g in swarm.groups}
    out = {
        "natural": token_strategy_weights("natural", tokens),
        "uniform": token_strategy_weights("uniform", tokens),
        "temperature": token_strategy_weights("temperature", tokens, params={"temperature": 2.0}),
    }
    try:
        out["unimax"] = token_strategy_weights(
            "unimax", tokens, budget=swarm.budget, params={"max_epochs": 4.0}
        )
    except MixtureError:  # the budget exceeds 4 epochs of everything: UniMax is undefined
        pass
    return {k: {g: float(v.get(g, 0.0)) for g in swarm.groups} for k, v in out.items()}


def fit_swarm(
    swarm: Swarm,
    *,
    objective: Sequence[str] | None = None,
    use: str = "auto",
    regressors: Sequence[str] = REGRESSORS,
    max_epochs: float | None = None,
    fixed: Mapping[str, float] | None = None,
    kl_max: float | None = None,
    n_folds: int = 5,
    seed: int = 0,
    n_candidates: int = 20_000,
) -> SwarmFit:
    obj = list(objective or swarm.objective)
    y = swarm.objective_values(obj)
    w = swarm.weight_matrix()
    regs = fit_regressors(w, y, names=regressors, n_folds=n_folds, seed=seed)
    cons = make_constraints(
        swarm.groups,
        swarm.available,
        budget=swarm.budget,
        max_epochs=max_epochs,
        fixed=fixed,
        kl_max=kl_max,
    )
    pred = objective_predictor(regs, use)
    used = chosen_regressors(regs, use)
    best, n_cand = propose(pred, cons, extra_starts=w, n_candidates=n_candidates, seed=seed)
    proposal = dict(zip(swarm.groups, best.tolist()))
    mixes = {"proposal": proposal, **baseline_weights(swarm)}
    i_best = int(np.argmin(y))
    mixes["best proxy run"] = dict(zip(swarm.groups, w[i_best].tolist()))
    rows = []
    for label, mw in mixes.items():
        vec = np.array([mw[g] for g in swarm.groups])
        p = predict_all(regs, vec)
        vals = np.array(list(p.values()))
        rows.append(
            {
                "mixture": label,
                **p,
                "mean": float(vals.mean()),
                "min": float(vals.min()),
                "max": float(vals.max()),
                "kl_to_natural": kl(vec, swarm.natural),
                "feasible": not cons.violations(vec, tol=1e-6),
                "measured": float(y[i_best]) if label == "best proxy run" else np.nan,
            }
        )
    for r in rows:
        r["chosen"] = float(np.mean([r[n] for n in used]))
    return SwarmFit(swarm, obj, regs, use, cons, proposal, n_cand, pd.DataFrame(rows), used)


def save_proposal(
    ws: Any, fit: SwarmFit, name: str, *, note: str | None = None, saved_by: str | None = None
) -> int:
    """Save the proposal as a new version of mixture ``name`` (over the swarm's training
    documents, with the swarm's budget); returns the version."""
    from .builder import PhaseSpec, create_manifest
    from .store import ensure_schema, save_mixture

    sw = fit.swarm
    ids = sw.params.get("heldout_ids")
    flt = training_filter(ids) if ids else None
    cur = ws.cursor()
    mw = MixtureWeights(fit.proposal, method="swarm")
    spec = PhaseSpec("main", int(sw.budget), mw, method=fit.method_block())
    manifest = create_manifest(
        cur, flt, group_by=sw.group_by, phases=[spec], seed=int(sw.params.get("seed", 0))
    )
    with ws.write(job=f"mix swarm proposal {name}") as con:
        ensure_schema(con)
        return save_mixture(
            con, name, manifest, note=note or f"proposed from swarm {sw.name}", saved_by=saved_by
        )


def swarm_of_manifest(manifest: Any) -> tuple[str, dict[str, Any]]:
    method = manifest.phases[0].groups[0].method
    if method.name != "swarm" or "swarm" not in method.params:
        raise MixtureError(
            "this mixture was not proposed from a proxy swarm (its method is "
            f"{method.name!r}); validate-proxy needs one made by `mixscope mix swarm`"
        )
    return str(method.params["swarm"]), dict(method.params)


@dataclass(frozen=True)
class FitOptions:
    """How a swarm's proposal is chosen (``mix swarm``, ``mix swarm-fit``, the Mixtures page)."""

    regressor: str = option(
        "auto",
        "Minimise: auto (regressors with held-out R² > 0, else the best "
        "Spearman), mean (all), lightgbm, mixing_law or loglinear.",
    )
    max_epochs: float | None = option(None, "Max epochs per group in the proposal.")
    kl_max: float | None = option(None, "KL bound of the proposal to natural (nats).")


@dataclass(frozen=True)
class ValidateOptions:
    """The settings of ``mixscope mix validate-proxy``, written once."""

    seeds: tuple[int, ...] | None = option(
        None, "Proxy seeds, comma-separated (default: the swarm's seed)."
    )
    baselines: tuple[str, ...] = option(("natural", "uniform"), "Baselines, comma-separated.")
    workers: int = option(1, "Local processes (--engine local).")
    engine: str = option("local", "local or ray (one Ray task per proxy).")
    ray_address: str | None = option(
        None, "--engine ray: auto or HOST:PORT (default: a local Ray)."
    )


def validate_proxy(
    ws: Any,
    manifest: Any,
    *,
    ref: str,
    seeds: Sequence[int] | None = None,
    baselines: Sequence[str] = ("natural", "uniform"),
    workers: int = 1,
    engine: str = "local",
    ray_address: str | None = None,
    progress: Progress | None = None,
    options: ValidateOptions | None = None,
) -> pd.DataFrame:
    """Train proxies on the proposal and ``baselines`` for each seed (the swarm's settings,
    data and held-out sets) and return measured vs predicted objective per (mixture, seed);
    the runs are stored as kind ``validate`` of the swarm. ``engine``: local processes or
    one Ray task per proxy (:func:`analytics.mixture.swarm.run_tasks`). ``options``
    (:class:`ValidateOptions`), when given, replaces the keyword settings."""
    from .proxy import ProxyConfig, load_tokenizer
    from .swarm import check_engine, shared_payload

    if options is not None:
        seeds, baselines = options.seeds, options.baselines
        workers, engine, ray_address = options.workers, options.engine, options.ray_address
    check_engine(engine, ray_address)  # a Ray cluster that does not answer: before any work

    swarm_name, mparams = swarm_of_manifest(manifest)
    cur = ws.cursor()
    sw = load_swarm(cur, swarm_name)
    d = _trained_dir(ws, sw)
    obj = list(mparams.get("objective") or sw.objective)
    fit = _refit(sw, obj, mparams)
    mixes = _validation_mixes(sw, manifest, baselines)
    seeds = list(seeds) if seeds else [int(sw.params.get("seed", 0))]
    cfg = ProxyConfig.from_dict(sw.params["config"])
    tag = ref.replace("@", "-v").replace("/", "_")
    vdir = d / f"validate-{tag}"
    tok = load_tokenizer(d / "tokenizer")
    evals = json.loads((d / "eval.json").read_text(encoding="utf-8"))
    shared = shared_payload(tok, evals, cfg)
    jobs, meta = _validation_jobs(
        ws, cur, sw, mixes, seeds=seeds, tok=tok, cfg=cfg, vdir=vdir, progress=progress
    )
    results = run_tasks(
        shared, jobs, workers=workers, engine=engine, ray_address=ray_address, progress=progress
    )
    rows, runs = [], []
    for (label, s, w), res in zip(meta, results):
        rows.append(_validation_row(sw, fit, obj, label, s, w, res))
        runs.append(
            {
                "run_id": f"{sw.name}-validate-{tag}-{label}-s{s}",
                "kind": "validate",
                "label": label,
                "seed": s,
                "weights": w,
                "metrics": res["metrics"],
                "final_loss": res["final_loss"],
                "train_tokens": res["train_tokens"],
                "seconds": res["seconds"],
                "device": res["device"],
                "mixture": ref,
            }
        )
    import shutil

    for label in mixes:
        shutil.rmtree(vdir / label / "data", ignore_errors=True)
    add_runs(ws, sw.name, runs, job=f"mix validate-proxy {ref}")
    return pd.DataFrame(rows)


def _trained_dir(ws: Any, sw: Swarm) -> Path:
    """The directory of a swarm trained here (its tokenizer and evaluation sets)."""
    d = Path(sw.directory or swarm_dir(ws, sw.name))
    if sw.source != "trained" or not (d / "tokenizer").is_dir() or not (d / "eval.json").is_file():
        raise MixtureError(
            f"swarm {sw.name!r}: its proxies were not trained here (imported runs) or its "
            f"directory {d} is gone; validate-proxy needs a swarm made by `mixscope mix swarm`"
        )
    return d


def _refit(sw: Swarm, obj: list[str], mparams: Mapping[str, Any]) -> SwarmFit:
    """The fit the proposal came from (its method block's regressor and constraints)."""
    cons = mparams.get("constraints") or {}
    return fit_swarm(
        sw,
        objective=obj,
        use=str(mparams.get("regressor", "auto")),
        max_epochs=cons.get("max_epochs"),
        fixed=cons.get("fixed") or None,
        kl_max=cons.get("kl_max"),
        seed=int(sw.params.get("seed", 0)),
    )


def _validation_mixes(
    sw: Swarm, manifest: Any, baselines: Sequence[str]
) -> dict[str, dict[str, float]]:
    """The proposal (the manifest's first phase) and the named baselines, by label."""
    proposal = {g.id: float(g.weight) for g in manifest.phases[0].groups}
    mixes = {"proposal": {g: proposal.get(g, 0.0) for g in sw.groups}}
    base = baseline_weights(sw)
    for b in baselines:
        if b not in base:
            raise StrategyInputError(f"baselines: {b!r} is not one of {sorted(base)}")
        mixes[b] = base[b]
    return mixes


def _validation_jobs(
    ws: Any,
    cur: Any,
    sw: Swarm,
    mixes: Mapping[str, Mapping[str, float]],
    *,
    seeds: Sequence[int],
    tok: Any,
    cfg: Any,
    vdir: Path,
    progress: Progress | None,
) -> tuple[list[dict], list[tuple[str, int, Mapping[str, float]]]]:
    """Materialise every mixture over the swarm's training documents; one proxy job per
    (mixture, seed). Returns (jobs, their (label, seed, weights))."""
    from .swarm import _materialize_one, proxy_job, read_texts

    flt = training_filter(sw.params.get("heldout_ids") or [])
    jobs, meta = [], []
    report = progress or (lambda s, dn, t: None)
    total = len(mixes)
    for k, (label, w) in enumerate(mixes.items()):
        report("materialising", k, total)
        data = vdir / label / "data"
        _materialize_one(
            ws,
            cur,
            w,
            group_by=sw.group_by,
            flt=flt,
            budget=sw.budget,
            seed=int(sw.params.get("seed", 0)),
            out_dir=data,
            method={"name": "validate-proxy", "params": {"swarm": sw.name}},
        )
        texts = read_texts(data)
        for s in seeds:
            jobs.append(proxy_job(texts, tok, cfg, int(s)))
            meta.append((label, int(s), w))
    report("materialising", total, total)
    return jobs, meta


def _validation_row(
    sw: Swarm,
    fit: SwarmFit,
    obj: Sequence[str],
    label: str,
    seed: int,
    w: Mapping[str, float],
    res: Mapping[str, Any],
) -> dict[str, Any]:
    """Measured vs predicted objective of one validation proxy."""
    measured = float(np.mean([res["metrics"][m] for m in obj]))
    vec = np.array([w[g] for g in sw.groups])
    p = predict_all(fit.regressors, vec)
    return {
        "mixture": label,
        "seed": seed,
        "measured": measured,
        "predicted_mean": float(np.mean(list(p.values()))),
        "predicted_chosen": float(np.mean([p[n] for n in fit.used])),
        **{f"predicted_{n}": v for n, v in p.items()},
        "final_train_loss": res["final_loss"],
        "seconds": res["seconds"],
    }


def validation_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per mixture: mean measured objective over seeds, its margin to the proposal."""
    g = (
        table.groupby("mixture", sort=False)
        .agg(
            measured=("measured", "mean"),
            seeds=("seed", lambda s: ",".join(map(str, s))),
            predicted=("predicted_chosen", "mean"),
        )
        .reset_index()
    )
    prop = float(g.loc[g["mixture"] == "proposal", "measured"].iloc[0])
    g["proposal_margin"] = g["measured"] - prop  # > 0: the proposal is better (lower bpb)
    return g

"""Proxy swarm commands: mix swarm | swarm-fit | swarm-import | swarm-export | swarm-list |
validate-proxy."""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from analytics.errors import MixscopeError
from analytics.mixture.swarm import SwarmOptions
from analytics.mixture.swarm_fit import FitOptions, ValidateOptions
from analytics.params import default_of, describe, help_for
from analytics.paths import check_output_dir
from analytics.workspace import Workspace
from dashboard.cli.core import WorkspaceOpt
from dashboard.cli.mix import load_ref, mix_app, parse_params, user_errors
from dashboard.cli.progress import console, progress_callback


def _quiet_transformers() -> None:
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


def parse_eval(value: str | None) -> tuple[list[str], list[str], str | None]:
    """``--eval``: a file of target texts, or comma-separated group names.
    Returns (groups, target texts, target name)."""
    from analytics.mixture.builder import split_target_texts

    if not value:
        return [], [], None
    p = Path(value)
    if p.is_file():
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MixscopeError(f"--eval {p}: cannot read the target texts ({exc})") from None
        texts = split_target_texts(text, name=p.name)
        if not texts:
            raise MixscopeError(f"--eval {p}: no target texts in the file")
        return [], texts, p.name
    if any(c in value for c in "/\\") or value.endswith((".txt", ".jsonl", ".md")):
        raise MixscopeError(
            f"--eval {value}: no such file (give a file of target texts or "
            "comma-separated group names)"
        )
    return [g.strip() for g in value.split(",") if g.strip()], [], None


def parse_fixed(items: list[str] | None) -> dict[str, float] | None:
    raw = parse_params(items)
    out = {}
    for k, v in raw.items():
        if not isinstance(v, (int, float)):
            raise MixscopeError(f"--fix {k}={v!r}: expected GROUP=WEIGHT with a number")
        out[k] = float(v)
    return out or None


def _print_fit(fit) -> None:
    t = Table("regressor", "held-out Spearman", "held-out R²", title="fit (5-fold CV)")
    for r in fit.scores().itertuples(index=False):
        t.add_row(r.model, f"{r.spearman:.3f}", f"{r.r2:.3f}")
    console.print(t)
    cols = [c for c in fit.comparison.columns if c in fit.regressors]
    t = Table(
        "mixture",
        *cols,
        "minimised",
        "spread",
        "KL to natural",
        title=f"predicted objective ({' + '.join(fit.objective)}; lower is better)",
    )
    for r in fit.comparison.to_dict(orient="records"):
        t.add_row(
            r["mixture"],
            *(f"{r[c]:.4f}" for c in cols),
            f"{r['chosen']:.4f}",
            f"{r['max'] - r['min']:.4f}",
            f"{r['kl_to_natural']:.3f}",
        )
    console.print(t)
    console.print(
        f"minimised: the mean of {', '.join(fit.used)} (--regressor {fit.use}); "
        "spread = max - min over all regressors",
        markup=False,
    )
    top = sorted(fit.proposal.items(), key=lambda kv: -kv[1])[:8]
    console.print("proposal: " + ", ".join(f"{g} {w:.3f}" for g, w in top), markup=False)


def _fit_and_save(ws, sw, *, objective, regressor, max_epochs, fixed, kl_max, mixture, save):
    from analytics.jobs import acting_user
    from analytics.mixture.swarm_fit import fit_swarm, save_proposal

    fit = fit_swarm(
        sw,
        objective=objective,
        use=regressor,
        max_epochs=max_epochs,
        fixed=fixed,
        kl_max=kl_max,
        seed=int(sw.params.get("seed", 0)),
    )
    _print_fit(fit)
    if save:
        v = save_proposal(ws, fit, mixture, saved_by=acting_user())
        console.print(
            f"[green]saved[/green] the proposal as mixture {mixture}@{v} "
            f"(check it with `mixscope mix validate-proxy {mixture}@{v}`)"
        )
    return fit


def _so(name: str) -> str:
    return help_for(SwarmOptions, name)


def _fo(name: str) -> str:
    return help_for(FitOptions, name)


def _vo(name: str) -> str:
    return help_for(ValidateOptions, name)


_S = partial(default_of, SwarmOptions)
_F = partial(default_of, FitOptions)
_V = partial(default_of, ValidateOptions)


@mix_app.command("swarm")
def swarm_cmd(
    name: Annotated[str, typer.Argument(help="Name of the swarm (and of the proposed mixture).")],
    group_by: Annotated[str, typer.Option("--group-by", help=_so("group_by"))] = _S("group_by"),
    proxies: Annotated[int, typer.Option(help=_so("proxies"))] = _S("proxies"),
    steps: Annotated[int, typer.Option(help=_so("steps"))] = _S("steps"),
    budget: Annotated[int | None, typer.Option(help=_so("budget"))] = _S("budget"),
    eval_: Annotated[
        str | None,
        typer.Option(
            "--eval",
            help="Target: a file of texts (blank-line separated or .jsonl) "
            "or comma-separated group names; default: mean over all groups.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help=_so("seed"))] = _S("seed"),
    prior: Annotated[str, typer.Option(help=_so("prior"))] = _S("prior"),
    concentration: Annotated[float | None, typer.Option(help=_so("concentration"))] = _S(
        "concentration"
    ),
    heldout_per_group: Annotated[int, typer.Option(help=_so("heldout_per_group"))] = _S(
        "heldout_per_group"
    ),
    eval_chars: Annotated[int, typer.Option(help=_so("eval_chars"))] = _S("eval_chars"),
    workers: Annotated[int, typer.Option(help=_so("workers"))] = _S("workers"),
    engine: Annotated[str, typer.Option("--engine", help=_so("engine"))] = _S("engine"),
    ray_address: Annotated[str | None, typer.Option("--ray-address", help=_so("ray_address"))] = _S(
        "ray_address"
    ),
    threads: Annotated[int, typer.Option(help=_so("threads"))] = _S("threads"),
    device: Annotated[str, typer.Option(help=_so("device"))] = _S("device"),
    n_layer: Annotated[int, typer.Option(help=_so("n_layer"))] = _S("n_layer"),
    n_embd: Annotated[int, typer.Option(help=_so("n_embd"))] = _S("n_embd"),
    n_head: Annotated[int, typer.Option(help=_so("n_head"))] = _S("n_head"),
    vocab_size: Annotated[int, typer.Option(help=_so("vocab_size"))] = _S("vocab_size"),
    block_size: Annotated[int, typer.Option(help=_so("block_size"))] = _S("block_size"),
    batch_size: Annotated[int, typer.Option(help=_so("batch_size"))] = _S("batch_size"),
    lr: Annotated[float, typer.Option(help=_so("lr"))] = _S("lr"),
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write Olmix ratios.csv + metrics.csv here.")
    ] = None,
    propose_: Annotated[
        bool, typer.Option("--propose/--no-propose", help="Fit, propose and save the mixture.")
    ] = True,
    regressor: Annotated[str, typer.Option(help=_fo("regressor"))] = _F("regressor"),
    max_epochs: Annotated[float | None, typer.Option(help=_fo("max_epochs"))] = _F("max_epochs"),
    kl_max: Annotated[float | None, typer.Option(help=_fo("kl_max"))] = _F("kl_max"),
    fix: Annotated[
        list[str] | None, typer.Option(help="Proposal: GROUP=WEIGHT (repeatable).")
    ] = None,
    replace: Annotated[bool, typer.Option(help="Replace a swarm of the same name.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Draw mixtures, train a small proxy on each, measure bits per byte, store the runs,
    then fit RegMix / Data Mixing Law / log-linear and save the proposed mixture."""
    from analytics.mixture.swarm import check_engine

    _quiet_transformers()
    ws = Workspace.open(workspace)
    if out is not None:
        out = check_output_dir(out, workspaces=[ws.path], overwrite=True)
    with user_errors():
        check_engine(engine, ray_address)  # a Ray cluster that does not answer: one line
        groups, texts, tname = parse_eval(eval_)
        fixed = parse_fixed(fix)
        opts = SwarmOptions(
            group_by=group_by, proxies=proxies, steps=steps, budget=budget, seed=seed,
            prior=prior, concentration=concentration, heldout_per_group=heldout_per_group,
            eval_chars=eval_chars, workers=workers, engine=engine, ray_address=ray_address,
            threads=threads, device=device, n_layer=n_layer, n_embd=n_embd, n_head=n_head,
            vocab_size=vocab_size, block_size=block_size, batch_size=batch_size, lr=lr,
        )  # fmt: skip
        spec = opts.spec(name, eval_groups=groups, target_texts=texts, target_name=tname)
        _run_and_report(ws, spec, opts, replace=replace)
        _export_and_propose(
            ws, name, out=out, propose=propose_, regressor=regressor, max_epochs=max_epochs,
            fixed=fixed, kl_max=kl_max,
        )  # fmt: skip


def _export_and_propose(ws, name: str, *, out, propose: bool, **fit) -> None:
    """After a swarm: write its Olmix CSVs (``out``) and fit, propose and save a mixture."""
    from analytics.mixture.swarm import load_swarm, write_olmix_csv

    sw = load_swarm(ws.cursor(), name)
    if out is not None:
        rp, mp = write_olmix_csv(sw, out)
        console.print(f"wrote {rp} and {mp}")
    if propose:
        _fit_and_save(ws, sw, objective=None, mixture=name, save=True, **fit)


def _run_and_report(ws, spec, opts: SwarmOptions, *, replace: bool) -> None:
    """Run the swarm with a progress bar; print its draws, options and timings."""
    from analytics.mixture.swarm import run_swarm, sampler_description

    console.print(
        f"mixtures ~ {sampler_description(opts.prior, opts.concentration, 0)}", markup=False
    )
    console.print(f"options: {describe(opts)}", markup=False)
    t0 = time.perf_counter()
    with progress_callback() as cb:
        rep = run_swarm(ws, spec, replace=replace, progress=cb, log=console.print)
    console.print(
        f"[green]swarm {spec.name}[/green]: {len(rep.runs)} proxies in "
        f"{time.perf_counter() - t0:.1f} s on engine {opts.engine} ("
        + ", ".join(f"{k} {v:.1f} s" for k, v in rep.seconds.items())
        + ")"
    )


@mix_app.command("swarm-fit")
def swarm_fit_cmd(
    name: Annotated[str, typer.Argument(help="A stored swarm.")],
    objective: Annotated[
        str | None, typer.Option(help="Comma-separated metrics averaged (default: the swarm's).")
    ] = None,
    regressor: Annotated[str, typer.Option(help=_fo("regressor"))] = _F("regressor"),
    max_epochs: Annotated[float | None, typer.Option(help=_fo("max_epochs"))] = _F("max_epochs"),
    kl_max: Annotated[float | None, typer.Option(help=_fo("kl_max"))] = _F("kl_max"),
    fix: Annotated[list[str] | None, typer.Option(help="GROUP=WEIGHT (repeatable).")] = None,
    mixture: Annotated[
        str | None, typer.Option(help="Save as this mixture (default: NAME).")
    ] = None,
    save: Annotated[bool, typer.Option("--save/--no-save", help="Save the proposal.")] = True,
    workspace: WorkspaceOpt = None,
) -> None:
    """Fit the regressors on a stored swarm and propose a mixture under constraints."""
    from analytics.mixture.swarm import load_swarm

    ws = Workspace.open(workspace)
    with user_errors():
        sw = load_swarm(ws.cursor(), name)
        obj = [c.strip() for c in objective.split(",") if c.strip()] if objective else None
        _fit_and_save(
            ws,
            sw,
            objective=obj,
            regressor=regressor,
            max_epochs=max_epochs,
            fixed=parse_fixed(fix),
            kl_max=kl_max,
            mixture=mixture or name,
            save=save,
        )


@mix_app.command("swarm-import")
def swarm_import_cmd(
    csv_dir: Annotated[Path, typer.Argument(help="A directory with ratios.csv and metrics.csv.")],
    name: Annotated[str, typer.Option("--name", help="Name of the swarm to create.")],
    group_by: Annotated[str, typer.Option("--group-by", help="The groups the ratios name.")],
    budget: Annotated[int, typer.Option(help="Token budget the runs' mixtures stand for.")],
    objective: Annotated[
        str | None, typer.Option(help="Comma-separated metric columns (default: all, averaged).")
    ] = None,
    replace: Annotated[bool, typer.Option(help="Replace a swarm of the same name.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Import proxy runs done elsewhere (Olmix's ratios.csv + metrics.csv) as a swarm."""
    from analytics.mixture.swarm import import_swarm

    ws = Workspace.open(workspace)
    with user_errors():
        obj = [c.strip() for c in objective.split(",") if c.strip()] if objective else None
        sw = import_swarm(
            ws, name, csv_dir, group_by=group_by, budget=budget, objective=obj, replace=replace
        )
    console.print(
        f"[green]imported[/green] swarm {name}: {len(sw.runs)} runs over {len(sw.groups)} groups, "
        f"objective {' + '.join(sw.objective)} (fit it with `mixscope mix swarm-fit {name}`)"
    )


@mix_app.command("swarm-export")
def swarm_export_cmd(
    name: Annotated[str, typer.Argument(help="A stored swarm.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for ratios.csv and metrics.csv.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Write a swarm's runs as Olmix-compatible ratios.csv and metrics.csv."""
    from analytics.mixture.swarm import load_swarm, write_olmix_csv

    ws = Workspace.open(workspace)
    out = check_output_dir(out, workspaces=[ws.path], overwrite=True)
    with user_errors():
        rp, mp = write_olmix_csv(load_swarm(ws.cursor(), name), out)
    console.print(f"wrote {rp} and {mp}")


@mix_app.command("swarm-list")
def swarm_list_cmd(
    workspace: WorkspaceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Stored proxy swarms."""
    from analytics.mixture.swarm import list_swarms

    df = list_swarms(Workspace.open(workspace).cursor())
    if as_json:
        typer.echo(json.dumps(df.to_dict(orient="records"), default=str, indent=2))
        return
    if df.empty:
        console.print("no proxy swarms (run `mixscope mix swarm NAME` or import one)")
        return
    t = Table("name", "source", "group by", "groups", "runs", "budget", "objective")
    for r in df.itertuples(index=False):
        t.add_row(
            r.name, r.source, r.group_by, str(r.groups), str(r.runs), f"{r.budget:,}", r.objective
        )
    console.print(t)


@mix_app.command("validate-proxy")
def validate_proxy_cmd(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION of a mixture proposed from a swarm.")],
    seeds: Annotated[str | None, typer.Option(help=_vo("seeds"))] = None,
    baselines: Annotated[str, typer.Option(help=_vo("baselines"))] = ",".join(_V("baselines")),
    workers: Annotated[int, typer.Option(help=_vo("workers"))] = _V("workers"),
    engine: Annotated[str, typer.Option("--engine", help=_vo("engine"))] = _V("engine"),
    ray_address: Annotated[str | None, typer.Option("--ray-address", help=_vo("ray_address"))] = _V(
        "ray_address"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Train proxies on the proposal and the baselines; measured vs predicted objective."""
    from analytics.mixture.swarm import check_engine
    from analytics.mixture.swarm_fit import validate_proxy, validation_summary

    _quiet_transformers()
    ws = Workspace.open(workspace)
    with user_errors():
        check_engine(engine, ray_address)  # a Ray cluster that does not answer: one line
        try:
            seed_list = tuple(int(s) for s in seeds.split(",")) if seeds else None
        except ValueError:
            raise MixscopeError(
                f"--seeds: expected comma-separated integers, got {seeds!r}"
            ) from None
        opts = ValidateOptions(
            seeds=seed_list,
            baselines=tuple(b.strip() for b in baselines.split(",") if b.strip()),
            workers=workers,
            engine=engine,
            ray_address=ray_address,
        )
        manifest = load_ref(ref, workspace)
        with progress_callback() as cb:
            table = validate_proxy(ws, manifest, ref=ref, options=opts, progress=cb)
    summ = validation_summary(table)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "runs": table.to_dict(orient="records"),
                    "summary": summ.to_dict(orient="records"),
                },
                indent=2,
            )
        )
        return
    _print_validation(ref, table, summ)


def _print_validation(ref: str, table, summ) -> None:
    """Measured vs predicted per (mixture, seed), then whether the proposal beats each
    baseline."""
    t = Table(
        "mixture",
        "seed",
        "measured",
        "predicted",
        "predicted (all regressors)",
        title=f"validate-proxy {ref}",
    )
    for r in table.itertuples(index=False):
        t.add_row(
            r.mixture,
            str(r.seed),
            f"{r.measured:.4f}",
            f"{r.predicted_chosen:.4f}",
            f"{r.predicted_mean:.4f}",
        )
    console.print(t)
    for r in summ.itertuples(index=False):
        if r.mixture != "proposal":
            verdict = "beats" if r.proposal_margin > 0 else "does not beat"
            console.print(
                f"proposal {verdict} {r.mixture}: {r.proposal_margin:+.4f} bits per byte "
                f"(measured, mean over seeds {r.seeds})",
                markup=False,
            )

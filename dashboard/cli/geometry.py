"""Checkpoint geometry commands: checkpoints add|list|remove, geometry, demo-series."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from analytics.errors import MixscopeError
from analytics.geometry.run import GeometryOptions as Geo
from analytics.geometry.store import ProbeOptions as Probe
from analytics.params import default_of, help_for
from analytics.workspace import Workspace
from dashboard.cli import app
from dashboard.cli.core import WorkspaceOpt
from dashboard.cli.progress import console, progress_callback

checkpoints_app = typer.Typer(
    help="Register model checkpoints (runs) for the geometry views.", no_args_is_help=True
)
app.add_typer(checkpoints_app, name="checkpoints")


def _text(v) -> str:
    """A table cell: '' for missing values, integers without a decimal point."""
    if v is None or pd.isna(v):
        return ""
    return str(int(v)) if isinstance(v, (int, float)) and float(v).is_integer() else str(v)


_LIMITS: list = []  # keeps the BLAS thread limit in force for the command's lifetime


def _prepare(threads: int | None) -> None:
    """torch thread count, and no per-model progress bars / warnings from transformers
    (one progress bar per command is ours; job logs stay readable)."""
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # the geometry commands report the missing dependency themselves
        pass
    if threads:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(int(threads))
        # numpy's BLAS too: an oversubscribed OpenBLAS pool makes a 128x128 SVD 100x slower
        _LIMITS.append(threadpool_limits(limits=int(threads)))


@checkpoints_app.command("add")
def checkpoints_add(
    run: Annotated[str, typer.Argument(help="Run name, e.g. my-1b.")],
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Run directories of checkpoint-{step}/ (or step{N}/, stage1-step{N}-tokens{T}B/) "
            "sub-directories, single model directories, or hub ids org/name@rev1,rev2."
        ),
    ],
    tokenizer: Annotated[
        Path | None,
        typer.Option(help="Read the tokenizer from here (when checkpoints don't hold one)."),
    ] = None,
    mixture: Annotated[
        str | None,
        typer.Option(
            "--mixture",
            help="The saved mixture the run was trained on, NAME@VERSION (lineage: `mix show` "
            "and the Mixtures page list the run).",
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Register checkpoints under RUN (adding to an existing run merges; idempotent)."""
    from analytics.geometry.store import add_run

    ws = Workspace.open(workspace)
    if mixture is not None:
        _check_mixture(ws, mixture)  # before any checkpoint is read
    with ws.write(job=f"checkpoints add {run}") as con:
        df = add_run(con, run, paths, tokenizer=tokenizer)
        linked = _link(con, mixture, run, paths) if mixture is not None else None
    table = Table("checkpoint", "step", "tokens (B)", "model", "hidden", "layers", "path")
    for r in df.to_dict(orient="records"):
        table.add_row(
            r["checkpoint"],
            _text(r["step"]),
            "" if pd.isna(r["tokens_b"]) else f"{r['tokens_b']:g}",
            _text(r["model_type"]),
            _text(r["hidden_size"]),
            _text(r["num_layers"]),
            f"{r['path']}@{r['revision']}" if r["revision"] else str(r["path"]),
        )
    console.print(table)
    sizes = sorted({int(h) for h in df["hidden_size"].dropna()})
    if len(sizes) > 1:
        console.print(
            f"[yellow]note[/yellow]: hidden sizes differ across checkpoints {sizes}; CKA still "
            "compares them, spectra are per checkpoint"
        )
    console.print(
        f"[green]run {run}[/green]: {len(df)} checkpoint(s) registered. Next: "
        f"`mixscope geometry {run}`"
    )
    if linked:
        console.print(f"linked run {run} to mixture {linked} (trained on it)")


def _check_mixture(ws: Workspace, ref: str) -> str:
    """``NAME@VERSION`` of a saved mixture version, or one-line error (exit 2)."""
    from analytics.mixture import MixtureError
    from analytics.mixture.lineage import parse_ref, resolve

    try:
        name, version = parse_ref(ref)
        return f"{name}@{resolve(ws.cursor(), name, version)}"
    except MixtureError as exc:
        raise MixscopeError(f"--mixture: {exc}") from None


def _link(con, ref: str, run: str, paths: list[str], *, kind: str = "trained") -> str:
    from analytics.mixture import MixtureError
    from analytics.mixture.lineage import link_run, parse_ref

    try:
        name, version = parse_ref(ref)
        v = link_run(
            con, name, version, run, kind=kind, checkpoint_path=", ".join(map(str, paths)) or None
        )
    except MixtureError as exc:
        raise MixscopeError(f"--mixture: {exc}") from None
    return f"{name}@{v}"


@checkpoints_app.command("link")
def checkpoints_link(
    run: Annotated[str, typer.Argument(help="Run name (registered or not, e.g. a proxy run).")],
    mixture: Annotated[
        str, typer.Option("--mixture", help="The saved mixture it was trained on: NAME@VERSION.")
    ],
    kind: Annotated[str, typer.Option(help="trained or proxy.")] = "trained",
    unlink: Annotated[bool, typer.Option(help="Remove the link instead.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Record (or with --unlink remove) that RUN was trained on mixture NAME@VERSION."""
    from analytics.mixture.lineage import parse_ref, unlink_run

    ws = Workspace.open(workspace)
    ref = _check_mixture(ws, mixture)
    if unlink:
        name, version = parse_ref(ref)
        with ws.write(job=f"checkpoints link {run} --unlink") as con:
            n = unlink_run(con, name, int(version), run)
        if not n:
            raise MixscopeError(f"run {run} is not linked to mixture {ref}")
        console.print(f"unlinked run {run} from mixture {ref}")
        return
    if kind not in ("trained", "proxy"):
        raise MixscopeError(f"--kind: expected trained or proxy, got {kind!r}")
    with ws.write(job=f"checkpoints link {run}") as con:
        _link(con, ref, run, [], kind=kind)
    console.print(f"linked run {run} to mixture {ref} ({kind})")


@checkpoints_app.command("list")
def checkpoints_list(
    workspace: WorkspaceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Registered runs: checkpoints, steps, model, stored geometry results."""
    from analytics.geometry import views

    ws = Workspace.open(workspace)
    cur = ws.cursor()
    df = views.runs(cur)
    if as_json:
        out = []
        for r in df.to_dict(orient="records"):
            r["checkpoints"] = views.run_checkpoints(cur, run=r["run"]).to_dict(orient="records")
            out.append(r)
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    if df.empty:
        console.print("no checkpoint runs yet: `mixscope checkpoints add RUN PATH...`")
        return
    table = Table("run", "checkpoints", "steps", "model", "hidden", "layers", "results")
    for r in df.to_dict(orient="records"):
        table.add_row(
            r["run"],
            str(r["n_checkpoints"]),
            "-" if pd.isna(r["first_step"]) else f"{int(r['first_step'])}..{int(r['last_step'])}",
            _text(r["model_type"]),
            _text(r["hidden_size"]),
            _text(r["num_layers"]),
            str(r["n_results"]),
        )
    console.print(table)


@checkpoints_app.command("remove")
def checkpoints_remove(
    run: Annotated[str, typer.Argument(help="Run name.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Forget a run and its stored geometry (the checkpoint files are not touched)."""
    from analytics.geometry import views
    from analytics.geometry.store import remove_run

    ws = Workspace.open(workspace)
    if run not in set(views.runs(ws.cursor())["run"]):
        raise MixscopeError(f"no checkpoint run named {run!r} in this workspace")
    with ws.write(job=f"checkpoints remove {run}") as con:
        remove_run(con, run)
    console.print(f"removed run {run}")


def parse_layers(value: str) -> str | list[int]:
    """'all', 'last', or comma-separated layer indices ('0,3,-1')."""
    v = value.strip().lower()
    if v in ("all", "last"):
        return v
    try:
        return [int(x) for x in v.split(",") if x.strip()]
    except ValueError:
        raise MixscopeError(
            f"--layers {value!r}: expected all, last or comma-separated integers like 0,3,-1"
        ) from None


def parse_fit_range(value: str) -> tuple[int, int]:
    """'11:100' (0-based, half-open) or a preset name: tracing (11:100), reptrix (10:100)."""
    from analytics.geometry import ALPHA_FIT_RANGES

    if value in ALPHA_FIT_RANGES:
        return ALPHA_FIT_RANGES[value]
    lo, sep, hi = value.partition(":")
    try:
        if not sep:
            raise ValueError
        a, b = int(lo), int(hi)
    except ValueError:
        raise MixscopeError(
            f"--alpha-fit-range {value!r}: expected START:END (0-based, half-open, e.g. 11:100) "
            f"or one of {', '.join(sorted(ALPHA_FIT_RANGES))}"
        ) from None
    if not 0 <= a < b:
        raise MixscopeError(f"--alpha-fit-range {value!r}: expected 0 <= START < END")
    return a, b


def print_report(rep) -> None:
    for note in rep.notes:
        console.print(f"[yellow]note[/yellow]: {note}")
    for name in rep.computed:
        console.print(f"  {name}: computed in {rep.seconds.get(name, float('nan')):.1f} s")
    for name in rep.reextracted:
        console.print(
            f"  {name}: already stored; extracted again for CKA with its new neighbour "
            f"({rep.seconds.get(name, float('nan')):.1f} s)"
        )
    if rep.cached:
        console.print(f"  {len(rep.cached)} checkpoint(s) already stored with these settings")
    what = (
        f"{rep.added} new result(s) stored"
        if rep.added
        else "nothing new: every result was already stored"
    )
    console.print(
        f"[green]geometry {rep.run}[/green]: {rep.n_checkpoints} checkpoint(s), {what} "
        f"(config {rep.config}, probe {rep.probe_hash[:19]}) in {rep.total_seconds:.1f} s"
    )


@app.command()
def geometry(
    run: Annotated[str, typer.Argument(help="A run registered with `mixscope checkpoints add`.")],
    probe_size: Annotated[int, typer.Option(help=help_for(Probe, "probe_size"))] = default_of(
        Probe, "probe_size"
    ),
    stratify_by: Annotated[str, typer.Option(help=help_for(Probe, "stratify_by"))] = default_of(
        Probe, "stratify_by"
    ),
    seed: Annotated[int, typer.Option(help=help_for(Probe, "seed"))] = default_of(Probe, "seed"),
    max_tokens: Annotated[int, typer.Option(help=help_for(Geo, "max_tokens"))] = default_of(
        Geo, "max_tokens"
    ),
    pooling: Annotated[str, typer.Option(help=help_for(Geo, "pooling"))] = default_of(
        Geo, "pooling"
    ),
    layers: Annotated[str, typer.Option(help=help_for(Geo, "layers"))] = default_of(Geo, "layers"),
    rankme_eps: Annotated[float, typer.Option(help=help_for(Geo, "rankme_eps"))] = default_of(
        Geo, "rankme_eps"
    ),
    alpha_fit_range: Annotated[
        str, typer.Option(help=help_for(Geo, "alpha_fit_range"))
    ] = "{}:{}".format(*default_of(Geo, "alpha_fit_range")),
    per_source: Annotated[bool, typer.Option(help=help_for(Geo, "per_group"))] = default_of(
        Geo, "per_group"
    ),
    weights: Annotated[
        bool, typer.Option(help=f"{help_for(Geo, 'weights')} {help_for(Geo, 'intruders')}")
    ] = default_of(Geo, "weights"),
    device: Annotated[str, typer.Option(help=help_for(Geo, "device"))] = default_of(Geo, "device"),
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 8,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for torch and BLAS (default: all cores).")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Probe every checkpoint of RUN: RankMe, alpha-ReQ, spectra, CKA, loss, weight spectra.

    Results are stored per (checkpoint, probe set, parameters).

    A re-run adds only what is new; a killed run keeps the checkpoints it finished.
    """
    from analytics.geometry.store import compute_run

    _prepare(threads)
    ws = Workspace.open(workspace)
    opts = {
        "pooling": pooling,
        "max_tokens": max_tokens,
        "layers": parse_layers(layers),
        "rankme_eps": rankme_eps,
        "alpha_fit_range": parse_fit_range(alpha_fit_range),
        "per_group": per_source,
        "weights": weights,
        "intruders": weights,
        "device": device,
        "batch_size": batch_size,
    }
    strat = None if stratify_by.lower() == "none" else stratify_by
    with progress_callback() as cb:
        rep = compute_run(
            ws,
            run,
            probe_size=probe_size,
            stratify_by=strat,
            seed=seed,
            progress=lambda d, t, m: cb(f"geometry {run}", d, t),
            **opts,
        )
    print_report(rep)


@app.command("demo-series")
def demo_series(
    steps: Annotated[int, typer.Option(help="Training steps of the demo LM.")] = 400,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the checkpoints (default <workspace>/checkpoints/demo-lm)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of training and of the probe sample.")] = 0,
    probe_size: Annotated[int, typer.Option(help="Documents in the probe set.")] = 256,
    max_tokens: Annotated[int, typer.Option(help="Truncate probe texts to T tokens.")] = 128,
    threads: Annotated[
        int | None,
        typer.Option(help="CPU threads for torch and BLAS (default 1: a core stays free)."),
    ] = 1,
    workspace: WorkspaceOpt = None,
) -> None:
    """Train a tiny causal LM on the corpus (checkpoints at log-spaced steps), register it as
    run demo-lm and the packaged all-MiniLM-L6-v2 as run minilm, compute geometry for both."""
    import time

    from analytics.geometry.demo import build_demo_series

    _prepare(threads)
    t0 = time.perf_counter()
    ws = Workspace.open(workspace)
    with progress_callback() as cb:
        rep = build_demo_series(
            ws,
            steps=steps,
            seed=seed,
            out=out,
            probe_size=probe_size,
            max_tokens=max_tokens,
            progress=cb,
            log=console.print,
        )
    for r in rep.geometry.values():
        print_report(r)
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in rep.seconds.items())
    console.print(
        f"[green]demo series ready[/green] in {time.perf_counter() - t0:.1f} s ({stages}); "
        "open the Geometry page"
    )


def queue_demo_series_job(ws: Workspace) -> str | None:
    """For `mixscope demo`: queue `mixscope demo-series` once (unless done or queued) and
    say so; never stops the demo from serving."""
    from analytics.geometry.demo import queue_demo_series

    try:
        job_id = queue_demo_series(ws)
    except Exception as exc:  # noqa: BLE001 - the dashboard must open regardless
        console.print(f"[yellow]could not queue the demo checkpoint series[/yellow]: {exc}")
        return None
    if job_id:
        console.print(
            f"queued the demo checkpoint series (job {job_id}): a small LM trains on the "
            "corpus in the background; the Geometry page shows its progress"
        )
    return job_id

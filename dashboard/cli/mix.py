"""Mixture commands: mix list|show|create|export|materialize|validate|reproduce."""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl

import typer
from rich.markup import escape
from rich.table import Table

from analytics.db import table_exists
from analytics.errors import MixscopeError
from analytics.jobs import acting_user
from analytics.mixture.errors import MixtureError
from analytics.paths import check_output_dir, check_output_path, is_empty_dir
from analytics.workspace import Workspace
from dashboard.cli import app
from dashboard.cli.core import RayAddressOpt, WorkersOpt, WorkspaceOpt
from dashboard.cli.progress import console, progress_callback

mix_app = typer.Typer(
    help="Compose, save, export, materialise and reproduce mixtures.", no_args_is_help=True
)
app.add_typer(mix_app, name="mix")

MANIFEST_FORMATS = ("yaml", "json")


# ----------------------------------------------------------------------------- helpers


def _one_line(exc: Exception) -> str:
    """A mixture error as one line (a manifest's problem list joined with '; ')."""
    problems = getattr(exc, "problems", None)
    if problems:
        head = str(exc).split("\n", 1)[0].rstrip(":")
        return f"{head}: " + "; ".join(problems)
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip())


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the mixture library's input errors into one-line CLI errors (exit 2)."""
    from analytics.mixture import MixtureError, ReproductionError

    try:
        yield
    except MixscopeError:
        raise
    except ReproductionError as exc:  # keep the per-group listing, one group per line
        raise MixscopeError(str(exc)) from None
    except MixtureError as exc:
        raise MixscopeError(_one_line(exc)) from None
    except ImportError as exc:
        raise MixscopeError(str(exc)) from None
    except ValueError as exc:  # e.g. a DocFilter/plan error raised as a plain ValueError
        raise MixscopeError(_one_line(exc)) from None


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME@VERSION`` (analytics.mixture.store.parse_ref, as a CLI error)."""
    from analytics.mixture.store import parse_ref as parse

    try:
        return parse(ref)
    except MixtureError as exc:
        raise MixscopeError(str(exc)) from None


def _is_file_ref(ref: str) -> bool:
    p = Path(ref)
    return p.suffix.lower() in (".yaml", ".yml", ".json") or p.is_file()


def load_ref(ref: str, workspace: Path | None):
    """A manifest from a file path (.yaml/.yml/.json) or a saved ``NAME[@VERSION]``."""
    from analytics.mixture import load_mixture, read_manifest

    if _is_file_ref(ref):
        return read_manifest(ref)
    name, version = parse_ref(ref)
    ws = Workspace.open(workspace)
    cur = ws.cursor()
    if not _has_mixtures_table(cur):
        raise MixscopeError(f"no saved mixture {name!r}: this workspace has no saved mixtures")
    return load_mixture(cur, name, version)


def _has_mixtures_table(cur) -> bool:
    return table_exists(cur, "mixtures")


def parse_value(text: str) -> Any:
    """A ``--param`` value: number (``inf`` allowed), true/false, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("inf", "infinity"):
        return math.inf
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_params(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MixscopeError(f"--param: expected KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def filter_from_url(query: str | None):
    """A DocFilter from the query string of an Explore link (``src=a,b&lang=en``)."""
    from analytics.filters import DocFilter

    if not query:
        return DocFilter()
    q = query.split("?", 1)[1] if "?" in query else query
    return DocFilter.from_params(dict(parse_qsl(q, keep_blank_values=False)))


# ----------------------------------------------------------------------------- list / show


@mix_app.command("list")
def list_cmd(
    workspace: WorkspaceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Saved mixtures: one row per version."""
    import pandas as pd

    from analytics.mixture import list_mixtures

    cur = Workspace.open(workspace).cursor()
    df = list_mixtures(cur) if _has_mixtures_table(cur) else None
    if as_json:
        rows = [] if df is None else df.to_dict(orient="records")
        typer.echo(json.dumps(rows, default=str, indent=2))
        return
    if df is None or df.empty:
        console.print("no saved mixtures (create one with `mixscope mix create` or the page)")
        return
    table = Table("name", "version", "created", "saved by", "phases", "total tokens", "note")
    for r in df.itertuples(index=False):
        table.add_row(
            r.name,
            str(r.version),
            str(r.created_at)[:19],
            escape(r.saved_by) if isinstance(r.saved_by, str) else "",
            "" if pd.isna(r.phases) else str(r.phases),
            "" if pd.isna(r.total_tokens) else f"{int(r.total_tokens):,}",
            escape(r.note) if isinstance(r.note, str) else "",
        )
    console.print(table)


@mix_app.command("show")
def show_cmd(
    ref: Annotated[str, typer.Argument(help="NAME[@VERSION] or a manifest file.")],
    workspace: WorkspaceOpt = None,
    fmt: Annotated[
        str, typer.Option("--format", help="table (default), yaml or json (the manifest).")
    ] = "table",
) -> None:
    """One mixture: its phases, groups, weights, target tokens and epochs."""
    from analytics.mixture import dumps_manifest

    with user_errors():
        m = load_ref(ref, workspace)
        if fmt in MANIFEST_FORMATS:
            typer.echo(dumps_manifest(m, fmt=fmt), nl=False)
            return
        if fmt != "table":
            raise MixscopeError(f"--format: expected table, yaml or json, got {fmt!r}")
    if not _is_file_ref(ref):
        from analytics.mixture import version_info

        name, version = parse_ref(ref)
        info = version_info(Workspace.open(workspace).cursor(), name, version)
        console.print(
            f"saved as {name}@{info['version']} on {str(info['created_at'])[:19]} by "
            f"{info['saved_by'] or 'unknown'}" + (f": {info['note']}" if info["note"] else ""),
            markup=False,
        )
    console.print(
        f"[bold]{ref}[/bold]: {m.total_tokens:,} tokens ({m.weight_basis} basis), seed {m.seed}, "
        f"tokenizer {m.tokenizer.name}, snapshot {m.corpus_snapshot_hash[:19]}"
    )
    for ph in m.phases:
        method = ph.groups[0].method
        console.print(
            f"phase [bold]{ph.name}[/bold]: {ph.budget_tokens:,} tokens, order {ph.order}, "
            f"method {method.name} {json.dumps(method.params, default=str)[:120]}"
        )
        table = Table("group", "weight", "target tokens", "available tokens", "documents", "epochs")
        for g in ph.groups:
            warn = " [yellow](> 4)[/yellow]" if g.epochs > 4 else ""
            table.add_row(
                g.id,
                f"{g.weight:.4f}",
                f"{g.target_tokens:,}",
                f"{g.tokens:,}",
                f"{g.documents:,}",
                f"{g.epochs:.3f}{warn}",
            )
        console.print(table)
    _show_runs(ref, workspace)


def _show_runs(ref: str, workspace: Path | None) -> None:
    """The runs linked to a saved mixture version (lineage), under `mix show`."""
    from analytics.mixture.lineage import resolve, runs_of

    if _is_file_ref(ref):
        return
    name, version = parse_ref(ref)
    cur = Workspace.open(workspace).cursor()
    with user_errors():
        v = resolve(cur, name, version)
    runs = runs_of(cur, name, v)
    if runs.empty:
        console.print(
            f"runs trained on {name}@{v}: none linked (`mixscope checkpoints add RUN PATH "
            f"--mixture {name}@{v}`)"
        )
        return
    table = Table("run", "kind", "checkpoints", "path", "linked", title=f"runs on {name}@{v}")
    for r in runs.itertuples(index=False):
        table.add_row(
            r.run,
            r.kind,
            str(int(r.checkpoints)),
            r.checkpoint_path or "",
            str(r.linked_at)[:19],
        )
    console.print(table)


# ----------------------------------------------------------------------------- strategies


@mix_app.command("strategies")
def strategies_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The weighting strategies of `mix create --strategy`: what each needs and its --param."""
    from analytics.mixture import resolve

    rows = resolve.describe()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("strategy", "what it does", "needs", "--param")
    for r in rows:
        needs = ", ".join(n for n in r["needs"] if n != "tokens") or "token counts"
        params = ", ".join(f"{k} ({v})" for k, v in r["params"].items()) or "-"
        table.add_row(escape(r["name"]), escape(r["summary"]), escape(needs), escape(params))
    console.print(table)
    console.print(
        "dsir: selects documents (not group weights): `mix create NAME --strategy dsir "
        "--target FILE --budget TOKENS`",
        markup=False,
    )


# ----------------------------------------------------------------------------- create


def _check_dsir_args(
    *,
    target: Path | None,
    group_by: str | None,
    append_to: str | None,
    into_phase: str | None,
    dsir_weight: float | None,
) -> None:
    """Options --strategy dsir cannot take, or needs together: one line each."""
    if target is None:
        raise MixscopeError("--target: --strategy dsir needs a file of target texts")
    if group_by is not None:
        raise MixscopeError(
            "--group-by: --strategy dsir selects documents, not groups; leave --group-by out"
        )
    if (into_phase is None) != (dsir_weight is None):
        raise MixscopeError("--into-phase and --dsir-weight: give both (or neither)")
    if into_phase is not None and append_to is None:
        raise MixscopeError("--into-phase: needs --append-to NAME@VERSION (the base mixture)")


def dsir_create(
    ws: Workspace,
    name: str,
    *,
    budget: int,
    target: Path | None,
    where_from_url: str | None,
    seed: int,
    min_words: int,
    buckets: int,
    append_to: str | None,
    into_phase: str | None,
    dsir_weight: float | None,
    phase_name: str,
    locator_template: str,
    note: str | None,
    out: Path | None,
    workspace: Path | None,
    group_by: str | None,
) -> None:
    """``mix create NAME --strategy dsir --target FILE --budget TOKENS``: a DSIR selection
    saved as a mixture (one phase, one group) or appended as a phase to ``--append-to``."""
    from analytics.mixture import dsir_workspace as dw
    from analytics.mixture import save_mixture, write_manifest

    _check_dsir_args(
        target=target,
        group_by=group_by,
        append_to=append_to,
        into_phase=into_phase,
        dsir_weight=dsir_weight,
    )
    cur = ws.cursor()
    with user_errors():
        flt = filter_from_url(where_from_url)
        tgt = dw.read_target(target)
        base = load_ref(append_to, workspace) if append_to else None
        phase = phase_name if append_to or phase_name != "main" else "dsir"
        with progress_callback() as cb:
            res = dw.dsir_from_workspace(
                cur, flt, target=tgt, budget=budget, seed=seed, buckets=buckets,
                min_words=min_words, group=f"dsir:{Path(tgt.path).stem}"[:128], progress=cb,
            )  # fmt: skip
        if into_phase is not None:
            manifest = dw.add_dsir_group(
                cur, base, res, phase=into_phase, weight=float(dsir_weight), flt=flt,
                locator_template=locator_template,
            )  # fmt: skip
        else:
            manifest = dw.create_dsir_manifest(
                cur, res, flt=flt, seed=seed, phase_name=phase,
                locator_template=locator_template, base=base,
            )  # fmt: skip
        if out is not None:
            out = check_output_path(out, workspaces=[ws.path], kind="file")
            write_manifest(manifest, out)
        with ws.write(job=f"mix create {name}") as con:
            version = save_mixture(con, name, manifest, note=note, saved_by=acting_user())
    where = (
        f", as a group of phase {into_phase!r} of {append_to} (weight {dsir_weight:g})"
        if into_phase
        else f", phase {phase!r} after {append_to}"
        if append_to
        else ""
    )
    _print_dsir(f"{name}@{version}", res.diagnostics, tgt, budget=budget, seed=seed,
                buckets=buckets, where=where, out=out)  # fmt: skip


def _print_dsir(ref: str, d: dict, tgt, *, budget, seed, buckets, where, out) -> None:
    """What a DSIR selection saved: its documents and tokens, and where they come from."""
    console.print(
        f"[green]saved[/green] mixture {ref}: DSIR selected "
        f"{d['selected_documents']:,} of {d['eligible']:,} documents "
        f"({d['selected_tokens']:,} tokens for a {budget:,}-token budget) like "
        f"{tgt.path} (sha256 {tgt.sha256[:12]}), seed {seed}, {buckets} buckets" + where
    )
    top = sorted(d["selected_tokens_by_source"].items(), key=lambda kv: -kv[1])[:5]
    console.print(
        "selected tokens by source: "
        + ", ".join(f"{k} {v / max(1, d['selected_tokens']):.0%}" for k, v in top)
    )
    if out is not None:
        console.print(f"manifest written to {out}")


GroupByOpt = Annotated[
    str | None,
    typer.Option(
        "--group-by",
        help="source, domain, lang, year(date), cluster, a signal column, bin(col, width), "
        "json(metadata, key) ... (required, except with --strategy dsir)",
    ),
]
StrategyOpt = Annotated[
    str,
    typer.Option(
        "--strategy",
        help="natural, uniform, temperature, unimax, manual, target_matching, "
        "quality_diversity, regmix, mixing_law, or dsir (select documents like --target); "
        "`mixscope mix strategies` lists what each needs.",
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        help="Strategy parameter KEY=VALUE (repeatable): temperature=2, max_epochs=4, "
        "GROUP=weight (manual), target=FILE, runs=CSV, quality=COL, threshold=0.2 ...",
    ),
]
WhereOpt = Annotated[
    str | None,
    typer.Option(
        "--where-from-url", help="The Explore filter, as its URL query ('src=a,b&lang=en')."
    ),
]
TargetOpt = Annotated[
    Path | None,
    typer.Option(
        "--target",
        help="dsir: the target texts (JSONL with a 'text' field, or plain text with "
        "blank lines between texts).",
    ),
]
MinWordsOpt = Annotated[
    int, typer.Option(help="dsir: never select documents with fewer words (reference: 100).")
]
BucketsOpt = Annotated[int, typer.Option(help="dsir: hashed n-gram buckets (reference: 10000).")]
AppendToOpt = Annotated[
    str | None,
    typer.Option(
        "--append-to",
        help="dsir: save the selection as a phase appended to this mixture's phases "
        "(NAME@VERSION) instead of as a mixture of its own.",
    ),
]
IntoPhaseOpt = Annotated[
    str | None,
    typer.Option(
        "--into-phase",
        help="dsir with --append-to: add the selection as one more group of this phase "
        "of the base mixture (with --dsir-weight) instead of as a new phase.",
    ),
]
DsirWeightOpt = Annotated[
    float | None,
    typer.Option(
        "--dsir-weight",
        help="dsir with --into-phase: the DSIR group's share of the phase budget (0-1); "
        "the other groups keep their relative weights.",
    ),
]
TokenizerOpt = Annotated[
    str | None,
    typer.Option(
        "--tokenizer",
        help="Count the budget in this tokenizer (a name from `mixscope tokenize`; "
        "default: the ingest tokenizer). The manifest records it.",
    ),
]


@mix_app.command("create")
def create_cmd(
    name: Annotated[str, typer.Argument(help="Name to save the mixture under (a new version).")],
    budget: Annotated[int, typer.Option("--budget", help="Token budget of the phase.")],
    group_by: GroupByOpt = None,
    strategy: StrategyOpt = "natural",
    param: ParamOpt = None,
    where_from_url: WhereOpt = None,
    max_epochs: Annotated[
        float | None, typer.Option(help="Cap on epochs per group (recorded in the manifest).")
    ] = None,
    order: Annotated[
        str, typer.Option(help="Document order: shuffled, ascending-quality, as-is ...")
    ] = "shuffled",
    order_column: Annotated[
        str | None, typer.Option(help="Quality column for ascending/descending-quality.")
    ] = None,
    phase_name: Annotated[str, typer.Option(help="Name of the phase.")] = "main",
    seed: Annotated[int, typer.Option(help="Seed recorded in the manifest.")] = 0,
    locator_template: Annotated[
        str,
        typer.Option(help="Trainer-side path of each group's data; {group} = the group id."),
    ] = "{group}",
    note: Annotated[str | None, typer.Option(help="A note saved with this version.")] = None,
    target: TargetOpt = None,
    min_words: MinWordsOpt = 100,
    buckets: BucketsOpt = 10_000,
    append_to: AppendToOpt = None,
    into_phase: IntoPhaseOpt = None,
    dsir_weight: DsirWeightOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the manifest to this .yaml/.json.")
    ] = None,
    tokenizer: TokenizerOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Build a manifest from the workspace (as the Mixtures page does) and save it."""
    ws = Workspace.open(workspace)
    if strategy == "dsir":
        dsir_create(
            ws, name, budget=budget, target=target, where_from_url=where_from_url, seed=seed,
            min_words=min_words, buckets=buckets, append_to=append_to, into_phase=into_phase,
            dsir_weight=dsir_weight, phase_name=phase_name,
            locator_template=locator_template, note=note, out=out, workspace=workspace,
            group_by=group_by,
        )  # fmt: skip
        return
    if any(x is not None for x in (target, append_to, into_phase, dsir_weight)):
        raise MixscopeError(
            "--target/--append-to/--into-phase/--dsir-weight: only with --strategy dsir"
        )
    if group_by is None:
        raise MixscopeError("--group-by: required (what to mix over: source, domain, ...)")
    _create_grouped(
        ws, name, budget=budget, group_by=group_by, strategy=strategy, param=param,
        where_from_url=where_from_url, max_epochs=max_epochs, order=order,
        order_column=order_column, phase_name=phase_name, seed=seed,
        locator_template=locator_template, note=note, out=out, tokenizer=tokenizer,
    )  # fmt: skip


def _create_grouped(
    ws: Workspace,
    name: str,
    *,
    budget: int,
    group_by: str,
    strategy: str,
    param: list[str] | None,
    where_from_url: str | None,
    max_epochs: float | None,
    order: str,
    order_column: str | None,
    phase_name: str,
    seed: int,
    locator_template: str,
    note: str | None,
    out: Path | None,
    tokenizer: str | None,
) -> None:
    """``mix create`` with a weighting strategy over groups: build, save, report."""
    from analytics.mixture import builder as b
    from analytics.mixture import resolve, save_mixture, write_manifest
    from analytics.tokenize import documents_table, manifest_tokenizer

    cur = ws.cursor()
    with user_errors():
        table = documents_table(cur, tokenizer)
        flt = filter_from_url(where_from_url)
        b.check_group_by(cur, group_by)
        counts = b.group_table(cur, flt, group_by=group_by, table=table)
        if counts.empty:
            raise MixscopeError(f"the filter ({flt.describe()}) selects no documents")
        weights = resolve.strategy_weights(
            strategy,
            parse_params(param),
            cur=cur,
            flt=flt,
            group_by=group_by,
            counts=counts,
            budget=budget,
            seed=seed,
        )
        spec = b.PhaseSpec(
            phase_name,
            budget,
            weights,
            order=order,  # type: ignore[arg-type]
            order_column=order_column,
            max_epochs=max_epochs,
        )
        manifest = b.create_manifest(
            cur,
            flt,
            group_by=group_by,
            phases=[spec],
            seed=seed,
            locator_template=locator_template,
            table=table,
            tokenizer=manifest_tokenizer(cur, tokenizer),
        )
        if out is not None:
            out = check_output_path(out, workspaces=[ws.path], kind="file")
            write_manifest(manifest, out)
        with ws.write(job=f"mix create {name}") as con:
            version = save_mixture(con, name, manifest, note=note, saved_by=acting_user())
    plan = b.plan_for(counts, spec)
    warn = plan[plan["warning"] != ""]
    console.print(
        f"[green]saved[/green] mixture {name}@{version}: {len(counts)} groups by {group_by}, "
        f"{budget:,} tokens, strategy {weights.method}"
        + (f", filter: {flt.describe()}" if not flt.is_empty() else "")
    )
    if weights.params.get("sampler") == "dirichlet":  # RegMix: which Dirichlet was used
        console.print(f"candidates ~ {weights.params['description']}", markup=False)
    for r in warn.itertuples(index=False):
        console.print(f"[yellow]warning[/yellow] {r.group}: {r.warning}")
    if out is not None:
        console.print(f"manifest written to {out}")


# ----------------------------------------------------------------------------- export


@mix_app.command("export")
def export_cmd(
    ref: Annotated[str, typer.Argument(help="NAME[@VERSION] or a manifest file.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="yaml, json (the manifest), megatron, gpt-neox, olmo-core, mosaic-streaming, "
            "hf-datasets, litdata, nanotron, or all.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory to create (atomically).")],
    locator_template: Annotated[
        str | None,
        typer.Option(help="Override each group's data path; {group} = the group id."),
    ] = None,
    phase: Annotated[str | None, typer.Option(help="Only this phase.")] = None,
    seq_length: Annotated[
        int | None, typer.Option(help="Megatron: sequence length, adds --train-samples.")
    ] = None,
    tokens_per_step: Annotated[
        int | None,
        typer.Option(help="nanotron: tokens per optimizer step (needed with several phases)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Write the manifest or a training framework's config for a mixture."""
    from analytics.mixture import Export, write_export
    from analytics.mixture import builder as b

    valid = [*b.export_formats(), "all"]
    if fmt not in valid:
        raise MixscopeError(f"--format: expected one of {', '.join(valid)}; got {fmt!r}")
    out = check_output_dir(out, workspaces=[Workspace(workspace).path], overwrite=overwrite)
    with user_errors():
        manifest = load_ref(ref, workspace)
        t0 = time.perf_counter()
        bundle, notes = b.export_bundle(
            manifest,
            None if fmt == "all" else [fmt],
            locator_template=locator_template,
            phase=phase,
            seq_length=seq_length,
            tokens_per_step=tokens_per_step,
        )
        if fmt == "all":  # the manifest at the top, each framework in its own folder
            files = {n: t for f in b.MANIFEST_FORMATS for n, t in bundle[f].items()}
            for f, fs in bundle.items():
                if f not in b.MANIFEST_FORMATS:
                    files.update({f"{f}/{n}": t for n, t in fs.items()})
        else:
            files = bundle[fmt]
        written = write_export(
            Export(format=fmt, files=files, data={}, basis="", notes=notes),
            out,
            overwrite=overwrite or is_empty_dir(out),
        )
    for n in notes:
        console.print(f"[dim]{n}[/dim]")
    console.print(
        f"[green]exported[/green] {ref} as {fmt}: {len(written)} file(s) in {out} "
        f"({time.perf_counter() - t0:.2f} s)"
    )


# ----------------------------------------------------------------------------- materialize


@mix_app.command("materialize")
def materialize_cmd(
    ref: Annotated[str, typer.Argument(help="NAME[@VERSION] or a manifest file.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to create (atomically).")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or parquet.")] = "jsonl",
    shard_rows: Annotated[int | None, typer.Option(help="Rows per shard.")] = 100_000,
    shard_tokens: Annotated[
        int | None, typer.Option(help="Tokens per shard (instead of --shard-rows).")
    ] = None,
    columns: Annotated[
        str, typer.Option(help="Comma-separated document columns to write besides the ids.")
    ] = "text",
    phase: Annotated[list[str] | None, typer.Option(help="Only these phases.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the manifest's seed.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="Where the shards are written: local (a process pool, every core; default), "
            "in-process (one after the other in this process: no worker start-up, about 1.5 s "
            "per worker, so faster on small corpora or a busy machine) or ray (Ray tasks; the "
            "workspace and --out must be reachable from every node). Same bytes on each.",
        ),
    ] = "local",
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Write the mixture's documents (repeated for epochs > 1) as shards, deterministically.
    A killed run resumes at the next unfinished shard when run again."""
    from analytics.engine import UNIT_ENGINES, check_engine, ray_connect
    from analytics.mixture import builder as b
    from analytics.mixture import materialize, open_for_materialize, reproduce

    check_engine(engine, UNIT_ENGINES)
    if workers is not None and workers < 1:
        raise MixscopeError(f"--workers {workers}: expected at least 1")
    ws = Workspace.open(workspace)
    out = check_output_dir(out, workspaces=[ws.path], overwrite=overwrite)
    if engine == "ray":
        ray_connect(ray_address)  # a cluster that does not answer: one line, exit 2
    with user_errors():
        manifest = load_ref(ref, workspace)
        # Check the selections on the locked read-only snapshot first: a manifest's SQL that
        # would read files (or anything but the workspace) fails there, before the
        # file-writing connection below ever runs it.
        reproduce(ws.user_cursor(at=manifest.corpus_snapshot_id), manifest, strict=True)
        cols = tuple(c.strip() for c in columns.split(",") if c.strip())
        t0 = time.perf_counter()
        con = open_for_materialize(ws, snapshot=manifest.corpus_snapshot_id)
        try:
            derived = b.derived_columns(con)
        finally:
            con.close()
        with progress_callback() as cb:
            res = materialize(
                ws,
                manifest,
                out,
                fmt=fmt,  # type: ignore[arg-type]
                shard_rows=shard_rows,
                shard_tokens=shard_tokens,
                columns=cols,
                phases=phase,
                seed=seed,
                overwrite=overwrite or is_empty_dir(out),
                derived=derived,
                progress=cb,
                engine=engine,
                workers=workers,
                ray_address=ray_address,
            )
    g = res.groups
    rows = int(g["rows"].sum()) if not g.empty else 0
    toks = int(g["realised_tokens"].sum()) if not g.empty else 0
    console.print(
        f"[green]materialised[/green] {ref}: {rows:,} rows, {toks:,} tokens in "
        f"{len(res.files)} file(s) under {out} ({time.perf_counter() - t0:.2f} s)"
    )


# ----------------------------------------------------------------------------- validate / reproduce


@mix_app.command("validate")
def validate_cmd(
    manifest_path: Annotated[Path, typer.Argument(help="A manifest file (.yaml/.yml/.json).")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Check a manifest: schema, weights summing to 1, sane values, and (when the workspace
    exists) that every weighted group still selects documents."""
    from analytics.mixture import builder as b
    from analytics.mixture import read_manifest

    with user_errors():
        m = read_manifest(manifest_path)
    checked = "schema"
    try:
        ws = Workspace.open(workspace)
    except MixscopeError:
        ws = None
    if ws is not None:
        with user_errors():
            missing = b.check_groups_exist(ws.cursor(), m)
        if missing:
            raise MixscopeError(
                f"{manifest_path}: unknown group(s) in workspace {ws.path}: " + "; ".join(missing)
            )
        checked = f"schema and groups in {ws.path}"
    n_groups = sum(len(p.groups) for p in m.phases)
    console.print(
        f"[green]valid[/green] {manifest_path}: {len(m.phases)} phase(s), {n_groups} group(s), "
        f"{m.total_tokens:,} tokens (checked {checked})"
    )


@mix_app.command("reproduce")
def reproduce_cmd(
    ref: Annotated[str, typer.Argument(help="A manifest file, or a saved NAME[@VERSION].")],
    workspace: WorkspaceOpt = None,
    allow_snapshot_change: Annotated[
        bool,
        typer.Option(help="Accept a changed corpus when every group selects the same documents."),
    ] = False,
    against_latest: Annotated[
        bool,
        typer.Option(
            "--against-latest",
            help="Compare with the current corpus instead of the manifest's snapshot and "
            "report, per group, what would change.",
        ),
    ] = False,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            help="DSIR phases: PHASE=FILE (or FILE for every DSIR phase) when the target file "
            "is no longer at the path the manifest records.",
        ),
    ] = None,
) -> None:
    """Recompute every group's selection on the manifest's snapshot (time travel) and check
    it matches the manifest's hashes."""
    from analytics.mixture import reproduce
    from analytics.mixture.errors import ReproductionError

    ws = Workspace.open(workspace)
    with user_errors():
        m = load_ref(ref, workspace)
        at = None if against_latest else m.corpus_snapshot_id
        if against_latest:
            try:
                report = reproduce(ws.user_cursor(), m, strict=True)
            except ReproductionError as exc:
                console.print(
                    f"the current corpus (snapshot {ws.snapshot_id()}) differs from {ref}'s "
                    f"(snapshot {m.corpus_snapshot_id}):",
                    markup=False,
                )
                for line in exc.differences or [str(exc)]:
                    console.print(f"  {line}", markup=False)
                return
            console.print(f"the current corpus selects exactly what {ref} recorded.", markup=False)
            return
        try:
            report = reproduce(ws.user_cursor(at=at), m, strict=not allow_snapshot_change)
        except ReproductionError as exc:
            # the library names its keyword argument; a CLI user needs the flag
            msg = str(exc).replace("pass strict=False", "pass --allow-snapshot-change")
            raise ReproductionError(msg, exc.differences) from None
    n = len(report.groups)
    console.print(
        f"[green]reproduced[/green] {ref}: {n} group selection(s) match "
        f"(documents, tokens, doc-id hashes); corpus snapshot "
        + ("unchanged" if report.snapshot_matches else "changed (accepted)")
    )
    for u in report.unverified:
        console.print(f"[yellow]unverified[/yellow] {u}: no selection recorded")
    _reproduce_dsir(ws, m, target)


def _reproduce_dsir(ws: Workspace, m, target: list[str] | None) -> None:
    """Re-run the DSIR phases of ``m`` from their target files on the manifest's snapshot."""
    from analytics.mixture import dsir_workspace as dw

    groups = dw.dsir_groups(m)
    if not groups:
        if target:
            raise MixscopeError("--target: the mixture has no DSIR phase")
        return
    overrides: dict[str, str] = {}
    for item in target or []:
        phase, sep, path = item.partition("=")
        if sep:
            overrides[phase] = path
        else:
            overrides.update({p: item for p, _ in groups})
    missing = [
        (p, g)
        for p, g in groups
        if p not in overrides
        and not Path(str(g.method.params.get("target", {}).get("path"))).is_file()
    ]
    if missing:
        for p, g in missing:
            console.print(
                f"[yellow]not re-run[/yellow] DSIR of phase {p!r}: target file "
                f"{g.method.params.get('target', {}).get('path')} not found (pass --target "
                f"{p}=FILE); its documents were checked by their hash above"
            )
        return
    with user_errors():
        con = ws.snapshot(at=m.corpus_snapshot_id).cursor()
        with progress_callback() as cb:
            rows = dw.reproduce_dsir(con, m, targets=overrides, progress=cb)
    for r in rows.itertuples(index=False):
        console.print(
            f"[green]re-selected[/green] DSIR group {r.group!r} of phase {r.phase!r}: the same "
            f"{r.documents:,} "
            f"documents from {r.target} (seed and target hash as recorded)"
        )

"""Signal commands: `signals run|list|describe`, `contamination`, `concepts`."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from analytics.errors import MixscopeError
from analytics.params import default_of, help_for
from analytics.signals.runner import SignalRunOptions as Run
from analytics.workspace import Workspace
from dashboard.cli import app
from dashboard.cli.core import RayAddressOpt, WorkersOpt, WorkspaceOpt
from dashboard.cli.progress import console, progress_callback

signals_app = typer.Typer(
    help="Compute and list per-document signals (quality, language, toxicity, duplicates...).",
    no_args_is_help=True,
)
app.add_typer(signals_app, name="signals")

DEFAULT_CHUNK = default_of(Run, "checkpoint_every")
stdout = Console()  # results go to stdout; progress and notes to stderr (`console`)


def parse_params(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """`NAME.KEY=VALUE` items -> {name: {key: value}}; VALUE is JSON when it parses, else text."""
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        head, eq, raw = item.partition("=")
        name, dot, key = head.partition(".")
        if not eq or not dot or not name.strip() or not key.strip():
            raise MixscopeError(
                f"--param {item!r}: expected NAME.KEY=VALUE, e.g. near_dup.threshold=0.7"
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(name.strip(), {})[key.strip()] = value
    return out


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _check_out(path: Path | None, option: str) -> None:
    if path is not None and not path.expanduser().resolve().parent.is_dir():
        raise MixscopeError(f"{option} {path}: the folder {path.parent} does not exist")


@signals_app.command("run")
def run(
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Compute only this signal (repeatable). Default: all."),
    ] = None,
    batch_size: Annotated[int, typer.Option(help=help_for(Run, "batch_size"))] = default_of(
        Run, "batch_size"
    ),
    jobs: Annotated[int, typer.Option("--jobs", help=help_for(Run, "jobs"))] = default_of(
        Run, "jobs"
    ),
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="NAME.KEY=VALUE signal parameter (repeatable); a new parameter set is a new "
            "version stored beside the old one.",
        ),
    ] = None,
    checkpoint_every: Annotated[
        int, typer.Option(help=help_for(Run, "checkpoint_every"))
    ] = default_of(Run, "checkpoint_every"),
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="local (default: shard by shard on a process pool of every core), ray (a Ray "
            "cluster) or in-process (the single runner: --jobs, --batch-size, "
            "--checkpoint-every).",
        ),
    ] = "local",
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    shard_size: Annotated[
        int, typer.Option("--shard-size", help=help_for(Run, "shard_size"))
    ] = default_of(Run, "shard_size"),
    workspace: WorkspaceOpt = None,
) -> None:
    """Compute signals for every document not yet scored; resumable after interruption."""
    from analytics.signals import resolve_signals

    if batch_size < 1 or jobs < 1 or checkpoint_every < 1:
        raise MixscopeError("--batch-size, --jobs and --checkpoint-every must be at least 1")
    signals = resolve_signals(only or None, parse_params(param))  # bad names: exit 2, no write
    from analytics.engine import UNIT_ENGINES, check_engine

    check_engine(engine, UNIT_ENGINES)
    ws = Workspace.open(workspace)
    if engine != "in-process":
        _run_on_engine(ws, signals, engine, workers, ray_address, shard_size)
        return
    _run_in_process(ws, signals, batch_size=batch_size, jobs=jobs, every=checkpoint_every)


@dataclass
class _Tally:
    """What an in-process run has done so far (kept when it is interrupted)."""

    computed: dict[str, int]
    seconds: dict[str, float]
    done: int = 0


def _score_in_chunks(
    ws, con, signals, cb, tally: _Tally, *, pending: int, batch_size: int, jobs: int, every: int
) -> None:
    """run_signals over ``every`` documents at a time, publishing after each chunk (a kill
    keeps what was published), until no document is left."""
    from analytics.signals import run_signals

    while True:
        scanned = [0]

        def chunk_progress(stage: str, d: int, t: int, _s=scanned, _done=tally.done) -> None:
            if stage == "scan":
                _s[0] = d
                if t:
                    cb("scoring documents", _done + d, max(pending, _done + t))
            else:
                cb(stage, d, t)

        res = run_signals(
            con,
            signals,
            batch_size=batch_size,
            max_docs=every,
            n_jobs=jobs,
            progress=chunk_progress,
            finalize=False,
        )
        for rec in res.itertuples(index=False):
            tally.computed[rec.name] += int(rec.computed)
            tally.seconds[rec.name] += float(rec.seconds)
        if scanned[0] == 0:
            break
        tally.done += scanned[0]
        ws.checkpoint(con)  # a kill from here on keeps these documents
        if scanned[0] < every:
            break


def _run_in_process(ws, signals, *, batch_size: int, jobs: int, every: int) -> None:
    """The single runner in this process, in chunks of ``every`` documents; then the global
    passes once, and a table of what was scored."""
    from analytics.signals import count_pending, run_signals
    from analytics.signals.external import record_run

    pending = count_pending(ws.cursor(), signals)
    names = ", ".join(s.name for s in signals)
    console.print(f"{pending:,} documents to score for {names}")
    tally = _Tally({s.name: 0 for s in signals}, {s.name: 0.0 for s in signals})
    t0 = time.perf_counter()
    try:
        with progress_callback() as cb, ws.write(job="signals run") as con:
            _score_in_chunks(
                ws, con, signals, cb, tally,
                pending=pending, batch_size=batch_size, jobs=jobs, every=every,
            )  # fmt: skip
            final = run_signals(
                con,
                signals,
                max_docs=0,
                progress=lambda stage, d, t: None if stage == "scan" else cb(stage, d, t),
                finalize=True,
            )
            spent = {r.name: tally.seconds[r.name] + float(r.seconds) for r in final.itertuples()}
            versions = {s.name: s.version for s in signals}
            record_run(con, versions, tally.computed, spent, n_jobs=jobs)
    except KeyboardInterrupt:
        console.print(
            f"[red]interrupted[/red]: {tally.done:,} documents scored before the last checkpoint "
            "are kept; run the same command again to continue."
        )
        raise typer.Exit(130) from None
    _print_scored(ws, final, tally, time.perf_counter() - t0)


def _print_scored(ws, final, tally: _Tally, elapsed: float) -> None:
    n_docs = _count_documents(ws)
    table = Table("signal", "version", "newly scored", "scored", "coverage", "compute s")
    for rec in final.itertuples(index=False):
        table.add_row(
            rec.name,
            rec.version,
            f"{tally.computed[rec.name]:,}",
            f"{int(rec.n_docs):,}",
            f"{int(rec.n_docs) / n_docs:.1%}" if n_docs else "-",
            f"{tally.seconds[rec.name] + float(rec.seconds):.1f}",
        )
    stdout.print(table)
    done = tally.done
    rate = f" ({done / elapsed:,.1f} docs/s)" if done and elapsed > 0 else ""
    console.print(f"[green]scored[/green] {done:,} documents in {elapsed:.1f} s{rate}")


def _run_on_engine(ws, signals, engine, workers, ray_address, shard_size) -> None:
    from analytics.engine import ray_connect
    from analytics.signals.engine_run import run_signals_engine
    from dashboard.cli.tokenize import line_printer

    if engine == "ray":
        ray_connect(ray_address)  # a cluster that does not answer: one line, exit 2
    on_line = line_printer()
    res, rep = run_signals_engine(
        ws, signals, engine=engine, workers=workers, ray_address=ray_address,
        shard_size=shard_size, on_line=on_line,
    )  # fmt: skip
    on_line.flush()
    n_docs = _count_documents(ws)
    table = Table("signal", "version", "scored", "coverage")
    for rec in res.itertuples(index=False):
        cov = f"{int(rec.n_docs) / n_docs:.1%}" if n_docs else "-"
        table.add_row(rec.name, rec.version, f"{int(rec.n_docs):,}", cov)
    stdout.print(table)
    console.print(
        f"scored {rep.docs:,} documents in {rep.shards:,} shards ({rep.skipped_docs:,} already "
        f"scored), {rep.docs_per_s:,.1f} docs/s on {rep.engine} x{rep.workers}",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip


def _count_documents(ws: Workspace) -> int:
    from analytics.db import scalar

    return int(scalar(ws.cursor(), "SELECT count(*) FROM documents") or 0)


@signals_app.command("list")
def list_cmd(
    workspace: WorkspaceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every signal and computed version: parameters, version, coverage."""
    from analytics.signals import list_signals

    ws = Workspace.open(workspace)
    df = list_signals(ws.cursor())
    if as_json:
        typer.echo(df.to_json(orient="records", date_format="iso"))
        return
    table = Table("signal", "version", "params", "scored", "coverage", "computed at")
    for r in df.itertuples(index=False):
        version = r.version + ("" if r.is_default else " (custom)")
        when = "" if r.computed_at is None or str(r.computed_at) == "NaT" else str(r.computed_at)
        table.add_row(
            r.name,
            version,
            escape(str(r.params)),
            f"{int(r.n_docs):,}",
            f"{r.coverage:.1%}",
            when[:19],
        )
    stdout.print(table)


@signals_app.command("describe")
def describe(
    name: Annotated[str | None, typer.Argument(help="One signal (default: all).")] = None,
) -> None:
    """Each signal's parameters (with defaults) and output columns."""
    from analytics.signals import signal_info

    for info in signal_info(name):
        stdout.print(f"[bold]{info['name']}[/bold] ({info['kind']}, version {info['version']})")
        stdout.print(f"  {info['description']}")
        for p in info["params"]:
            flag = f"--param {info['name']}.{p['name']}={json.dumps(p['default'])}"
            stdout.print(f"  {flag}  {p['description']}")
        for c in info["columns"]:
            stdout.print(f"  column {c['name']} {c['type']}: {c['description']}")


@app.command()
def contamination(
    eval_file: Annotated[Path, typer.Argument(help="Evaluation set: JSONL or CSV of texts.")],
    text_field: Annotated[str, typer.Option(help="Field/column holding each text.")] = "text",
    n: Annotated[int, typer.Option("--n", help="Words per n-gram.")] = 13,
    out: Annotated[
        Path | None, typer.Option(help="Write the flagged document ids here, one per line.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write the whole result (spans included) as JSON here.")
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="local (shard by shard on a process pool of every core; default), ray (a Ray "
            "cluster) or in-process (one scan in this process). Same result on each.",
        ),
    ] = "local",
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    shard_size: Annotated[
        int, typer.Option("--shard-size", help="Engine: documents per shard.")
    ] = 2_000,
    workspace: WorkspaceOpt = None,
) -> None:
    """Evaluation-set contamination: documents sharing a word n-gram with the eval texts."""
    from analytics.engine import UNIT_ENGINES, check_engine
    from analytics.signals.contamination import read_eval_texts, result_to_dict

    if n < 1:
        raise MixscopeError("--n must be at least 1")
    check_engine(engine, UNIT_ENGINES)
    if shard_size < 1 or (workers is not None and workers < 1):
        raise MixscopeError("--shard-size and --workers must be at least 1")
    _check_out(out, "--out")
    _check_out(report, "--report")
    texts = read_eval_texts(eval_file, field=text_field)
    ws = Workspace.open(workspace)
    res = _scan_contamination(ws, texts, n, engine, workers, ray_address, shard_size)
    _print_contamination(ws, res, n)
    if out is not None:
        _write_text_atomic(out, "".join(f"{i}\n" for i in res.flagged["doc_id"]))
        console.print(f"flagged ids written to {out}")
    if report is not None:
        _write_text_atomic(report, json.dumps(result_to_dict(res)))
        console.print(f"report written to {report}")


def _scan_contamination(ws, texts, n, engine, workers, ray_address, shard_size):
    """The scan: in this process with a bar, or on the engine with its progress lines
    (shards, documents, docs/s, ETA; the same on the Jobs page when run as a job)."""
    from analytics.engine import ray_connect
    from analytics.signals.contamination import find_contamination, find_contamination_on_engine
    from dashboard.cli.tokenize import line_printer

    if engine == "in-process":
        with progress_callback() as cb:
            return find_contamination(
                ws.cursor(), texts, n=n, progress=lambda d, t: cb("scanning documents", d, t)
            )
    if engine == "ray":
        ray_connect(ray_address)  # a cluster that does not answer: one line, exit 2
    on_line = line_printer()
    res = find_contamination_on_engine(
        ws, texts, n=n, engine=engine, workers=workers, ray_address=ray_address,
        shard_size=shard_size, on_line=on_line,
    )  # fmt: skip
    on_line.flush()
    return res


def _print_contamination(ws, res, n: int) -> None:
    """Flagged documents per source, the totals, and the first five matches in context."""
    from analytics.signals.contamination import span_parts
    from analytics.text import fetch_texts

    table = Table("source", "documents", "flagged", "flagged %")
    per_source = res.per_source.sort_values(["flagged_docs", "source"], ascending=[False, True])
    for r in per_source.itertuples(index=False):
        frac = f"{r.flagged_frac:.2%}" if r.docs else "-"
        table.add_row(escape(str(r.source)), f"{int(r.docs):,}", f"{int(r.flagged_docs):,}", frac)
    stdout.print(table)
    stdout.print(
        f"{len(res.flagged):,} documents share a {n}-gram with {len(res.eval_matched):,} of "
        f"{res.eval_texts:,} evaluation texts ({res.eval_too_short:,} shorter than {n} words "
        "can never match)"
    )
    cur = ws.cursor()
    for r in res.flagged.head(5).itertuples(index=False):
        text = fetch_texts(cur, [r.doc_id])[r.doc_id]
        parts = span_parts(text, r.spans[0], context=40)
        before, match, after = (re.sub(r"\s+", " ", p) for p in parts)
        stdout.print(f"  {r.doc_id} ({r.source}): ", end="", markup=False)
        stdout.print(before, style="dim", end="", markup=False)
        stdout.print(match, style="bold red", end="", markup=False)
        stdout.print(after, style="dim", markup=False)


@app.command()
def concepts(
    concept_file: Annotated[Path, typer.Argument(help="Text file, one concept per line.")],
    accuracy: Annotated[
        Path | None, typer.Option(help="CSV of per-concept accuracy (columns concept, accuracy).")
    ] = None,
    concept_col: Annotated[str, typer.Option(help="Concept column of the CSV.")] = "concept",
    accuracy_col: Annotated[str, typer.Option(help="Accuracy column of the CSV.")] = "accuracy",
    frequency: Annotated[
        str,
        typer.Option(
            help="What the fit's frequency counts: documents (containing the concept; as in "
            "Udandarao et al.) or occurrences."
        ),
    ] = "documents",
    out: Annotated[
        Path | None, typer.Option(help="Write counts per (concept, source) as CSV here.")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Whole-word, case-insensitive concept counts per source; log-linear accuracy fit."""
    from analytics.signals.concepts import (
        FREQUENCY_BASES,
        ConceptError,
        concept_counts,
        fit_concept_accuracy,
        rank_frequency,
        rare_concepts,
        read_accuracy_csv,
        read_concepts,
    )

    if frequency not in FREQUENCY_BASES:
        raise ConceptError(
            f"--frequency must be one of {', '.join(FREQUENCY_BASES)}; got {frequency!r}"
        )
    items = read_concepts(concept_file)
    acc = None
    if accuracy is not None:
        acc = read_accuracy_csv(accuracy, concept_col=concept_col, accuracy_col=accuracy_col)
    _check_out(out, "--out")
    ws = Workspace.open(workspace)
    counts = concept_counts(ws.cursor(), items)
    ranked = rank_frequency(counts)
    docs = counts.groupby("concept")["n_docs"].sum()
    top: dict[str, list[str]] = {}
    for r in counts[counts["count"] > 0].sort_values("count", ascending=False).itertuples():
        if len(top.setdefault(r.concept, [])) < 3:
            top[r.concept].append(f"{r.source} {int(r.count):,}")
    table = Table("rank", "concept", "count", "documents", "share", "top sources")
    for r in ranked.itertuples(index=False):
        table.add_row(
            str(r.rank),
            escape(r.concept),
            f"{int(r.count):,}",
            f"{int(docs.get(r.concept, 0)):,}",
            f"{r.share:.2%}",
            escape(", ".join(top.get(r.concept, []))),
        )
    stdout.print(table)
    rare = rare_concepts(counts)
    never = "concept never occurs" if len(ranked) == 1 else "concepts never occur"
    stdout.print(
        f"{len(rare):,} of {len(ranked):,} {never}"
        + (f": {', '.join(rare[:20])}{' ...' if len(rare) > 20 else ''}" if rare else ""),
        markup=False,
    )
    if acc is not None:
        fit = fit_concept_accuracy(
            counts, acc, concept_col=concept_col, accuracy_col=accuracy_col, frequency=frequency
        )
        stdout.print(
            f"[bold]fit[/bold] accuracy = {fit.slope:.4f} * log10(frequency) + {fit.intercept:.4f}"
            f"  (frequency = {fit.basis})"
            f"  (R^2 = {fit.r2:.3f}, n = {fit.n}; {len(fit.excluded_zero)} with frequency 0 "
            f"excluded, {len(fit.unmatched)} not in the concept list)"
        )
    if out is not None:
        counts.to_csv(out, index=False)
        console.print(f"counts written to {out}")


from dashboard.cli import signals_external  # noqa: E402,F401  (signals import/classify/throughput)

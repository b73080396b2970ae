"""`signals import`, `signals classify` and `signals throughput`: signals computed elsewhere,
model-based classifier signals, and what each signal costs."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from analytics.errors import MixscopeError
from analytics.workspace import Workspace
from dashboard.cli.core import WorkspaceOpt
from dashboard.cli.progress import console, progress_callback
from dashboard.cli.signals import DEFAULT_CHUNK, signals_app, stdout


@signals_app.command("import")
def import_cmd(
    path: Annotated[
        str, typer.Argument(help="File or glob (local, s3://, gs://, hf://, https://).")
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="dolma-attributes | rpv2 (RedPajama-V2 quality signals) | datatrove "
            "(documents with metadata) | parquet (any table; CSV/JSONL by extension).",
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Signal name; its columns are NAME_<field>. Default: the file's base name.",
        ),  # fmt: skip
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="Field holding the document id (default: id; doc_id for parquet), or FILE,ROW: "
            "a corpus file and a 0-based row in it.",
        ),
    ] = None,
    reduce: Annotated[
        str,
        typer.Option(
            help="Spans -> one value per document: weighted (by span length), mean, "
            "max, min, sum, first, count."
        ),  # fmt: skip
    ] = "weighted",
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Refuse the import when any key matches no document "
            "(default: import the matching rows and say how many did not match).",
        ),  # fmt: skip
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Store a new version of an imported signal NAME.")
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Import per-document scores/tags computed elsewhere (Dolma, datatrove, RedPajama-V2,
    Parquet) as a signal; nothing is committed when anything is wrong."""
    import re

    from analytics.signals.importer import import_signal

    if name is None:
        base = re.split(r"[\\/]", path.rstrip("/"))[-1].split(".")[0]
        name = re.sub(r"[^a-z0-9]+", "_", base.lower()).strip("_") or "imported"
        if not name[0].isalpha():
            name = "s_" + name
    ws = Workspace.open(workspace)
    from analytics.lake import is_remote

    remote = is_remote(path)
    with progress_callback() as cb, ws.write(job=f"signals import {name}", remote=remote) as con:
        res = import_signal(con, path, format=fmt, name=name, key=key, reduce=reduce,
                            strict=strict, replace=replace, progress=cb)  # fmt: skip
    table = Table("signal", "version", "columns", "rows", "matched", "unmatched")
    table.add_row(res.name, res.version, escape(", ".join(res.columns)), f"{res.rows:,}",
                  f"{res.matched:,}", f"{res.unmatched:,}")  # fmt: skip
    stdout.print(table)
    if res.unmatched:
        console.print(
            f"[yellow]{res.unmatched:,} of {res.rows:,} keys match no document[/yellow] and "
            "were skipped (--strict refuses such an import)"
        )
    console.print(
        f"[green]imported[/green] {res.matched:,} documents' values "
        f"({res.matched / max(res.n_docs, 1):.1%} of the workspace) in {res.seconds:.1f} s"
    )


@signals_app.command("classify")
def classify_cmd(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="Hugging Face sequence classifier (local directory or hub "
            "id) or fastText .bin/.ftz file.",
        ),  # fmt: skip
    ],
    name: Annotated[
        str,
        typer.Option("--name", help="Signal name (columns NAME_score, or NAME_label + NAME_prob)."),
    ],  # fmt: skip
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N, mps or auto.")] = "cpu",
    dtype: Annotated[str, typer.Option(help="float32, float16 or bfloat16 (GPU).")] = "float32",
    max_length: Annotated[
        int | None,
        typer.Option(
            help="Truncate texts to this many tokens (default: the model's limit, at most 512)."
        ),  # fmt: skip
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Texts per model call.")] = 32,
    replace: Annotated[
        bool, typer.Option("--replace", help="Give an existing classifier signal NAME a new model.")
    ] = False,
    checkpoint_every: Annotated[
        int, typer.Option(help="Publish finished work every this many documents.")
    ] = DEFAULT_CHUNK,
    workspace: WorkspaceOpt = None,
) -> None:
    """Score every document with a classifier model (FineWeb-Edu style); resumable."""
    from analytics.signals import count_pending, run_signals
    from analytics.signals.classifier import cached_classifier, define_classifier, resolve_device
    from analytics.signals.external import in_own_transaction, record_throughput

    if checkpoint_every < 1:
        raise MixscopeError("--checkpoint-every must be at least 1")
    ws = Workspace.open(workspace)
    # load (and check) the model before taking the workspace's write lock
    cached_classifier(model, resolve_device(device), dtype, max_length)
    with ws.write(job=f"signals classify {name}: define") as con:
        sig = define_classifier(
            con, name=name, model=model, device=device, dtype=dtype,
            max_length=max_length, batch_size=batch_size, replace=replace,
        )  # fmt: skip
    pending = count_pending(ws.cursor(), [sig])
    console.print(f"{pending:,} documents to score with {model} on {type(sig).run_device}")
    done, secs = 0, 0.0
    t0 = time.perf_counter()
    try:
        with progress_callback() as cb, ws.write(job=f"signals classify {name}") as con:
            while True:
                res = run_signals(
                    con, [sig], batch_size=max(batch_size, 256), max_docs=checkpoint_every,
                    progress=lambda st, d, t, _o=done: cb("scoring documents", _o + d, pending),
                )  # fmt: skip
                n = int(res["computed"].iloc[0])
                secs += float(res["seconds"].iloc[0])
                done += n
                if n:
                    in_own_transaction(con, record_throughput, sig.name, sig.version, docs=n,
                                      seconds=float(res["seconds"].iloc[0]),
                                      device=type(sig).run_device)  # fmt: skip
                ws.checkpoint(con)
                if n < checkpoint_every:
                    break
    except KeyboardInterrupt:
        console.print(f"[red]interrupted[/red]: {done:,} documents scored are kept; run the "
                      "same command again to continue.")  # fmt: skip
        raise typer.Exit(130) from None
    elapsed = time.perf_counter() - t0
    rate = f" ({done / secs:,.1f} docs/s of model time)" if done and secs > 0 else ""
    console.print(f"[green]scored[/green] {done:,} documents in {elapsed:.1f} s{rate}")
    stdout.print(f"signal {sig.name} version {sig.version}: columns "
                 f"{', '.join(c.name for c in sig.columns)}")  # fmt: skip


@signals_app.command("throughput")
def throughput_cmd(
    workspace: WorkspaceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per-signal throughput of the last run and the projected compute for this workspace
    and for 100M documents."""
    from analytics.signals.external import throughput

    ws = Workspace.open(workspace)
    df = throughput(ws.cursor())
    if as_json:
        typer.echo(df.to_json(orient="records", date_format="iso"))
        return
    table = Table("signal", "device", "docs/s", "docs/s per process", "hours (workspace)",
                  "hours (100M docs)", "measured")  # fmt: skip
    for r in df.itertuples(index=False):
        table.add_row(r.signal, r.device, f"{r.docs_per_s:,.1f}", f"{r.docs_per_cpu_s:,.1f}",
                      f"{r.hours_workspace:,.3f}", f"{r.hours_100m:,.0f}",
                      str(r.measured_at)[:19])  # fmt: skip
    stdout.print(table)

"""`mixscope embed` (local or Ray) and `mixscope search`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from analytics.errors import MixscopeError
from analytics.jobs import JobReporter
from analytics.workspace import Workspace
from dashboard.cli import app
from dashboard.cli.core import WorkspaceOpt
from dashboard.cli.progress import LineProgress, console, make_progress

stdout = Console()  # results on stdout; progress and notes on stderr (`console`)
MODEL_ENV = "MIXSCOPE_EMBED_MODEL"
ENGINES = ("local", "ray")


class RateColumn(ProgressColumn):
    """Documents per second since the bar started (not a moving average: embedding batches
    arrive every few seconds, which makes rich's windowed speed jumpy)."""

    def render(self, task) -> Text:
        elapsed = task.elapsed or 0.0
        if not task.completed or elapsed <= 0:
            return Text("- docs/s", style="progress.data.speed")
        return Text(f"{task.completed / elapsed:,.1f} docs/s", style="progress.data.speed")


def _bar() -> Progress | LineProgress:
    return make_progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        out=console,
        rate_unit="docs",
    )


class EmbedProgress:
    """Progress callback for `embed_corpus`: one rich bar with documents/second, and the
    queued job's progress.json (its stage carries the rate, so the dashboard shows it)."""

    def __init__(self, bar: Progress | LineProgress):
        self.bar = bar
        self.job = JobReporter()
        self.task: Any = None
        self.started = 0.0
        self.shards = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage == "write":
            self.shards = done
            if self.task is not None:
                self.bar.update(self.task, description=f"embedding ({self.shards} shards saved)")
            return
        if stage != "embed":
            self.job(stage, done, total)
            return
        if self.task is None:
            self.started = time.monotonic()
            self.task = self.bar.add_task("embedding", total=total or None)
        elapsed = time.monotonic() - self.started
        rate = f" {done / elapsed:,.1f} docs/s" if done and elapsed > 0 else ""
        self.job(f"embed{rate}", done, total)
        self.bar.update(self.task, completed=done, total=total or None)


def _check_options(
    *,
    engine: str,
    device: str,
    batch_size: int,
    sample: int | None,
    stratify_by: str | None,
    max_seq_length: int | None,
    shard_rows: int,
    flush_every: float,
) -> None:
    from analytics.embed.models import DEVICES

    if engine not in ENGINES:
        raise MixscopeError(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if device not in DEVICES:
        raise MixscopeError(f"--device {device!r}: expected one of {', '.join(DEVICES)}")
    if batch_size < 1:
        raise MixscopeError(f"--batch-size must be at least 1, got {batch_size}")
    if sample is not None and sample < 1:
        raise MixscopeError(f"--sample must be at least 1, got {sample}")
    if stratify_by is not None and sample is None:
        raise MixscopeError("--stratify-by needs --sample N (the sample to stratify)")
    if max_seq_length is not None and max_seq_length < 1:
        raise MixscopeError(f"--max-seq-length must be at least 1, got {max_seq_length}")
    if shard_rows < 1 or flush_every <= 0:
        raise MixscopeError("--shard-rows and --flush-every must be positive")


@app.command("embed")
def embed_command(
    model: Annotated[
        str,
        typer.Option(
            envvar=MODEL_ENV,
            help="sentence-transformers model id or local path (loaded offline), or 'fake' "
            f"(deterministic, for tests). Default: ${MODEL_ENV} or all-MiniLM-L6-v2.",
        ),
    ] = "sentence-transformers/all-MiniLM-L6-v2",
    sample: Annotated[
        int | None, typer.Option(help="Embed a seeded sample of this many documents.")
    ] = None,
    stratify_by: Annotated[
        str | None,
        typer.Option(help="Documents column to stratify the sample by (source, lang ...)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Texts per model call.")] = 64,
    max_seq_length: Annotated[
        int | None,
        typer.Option(help="Tokens kept per document (default: the model's own limit)."),
    ] = None,
    engine: Annotated[str, typer.Option(help="local, or ray (Ray Data actors).")] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(help="Address of an existing Ray cluster ('auto' on one of its nodes)."),
    ] = None,
    ray_actors: Annotated[
        int | None,
        typer.Option(help="Model replicas on Ray (default: one per GPU of the cluster, else 1)."),
    ] = None,
    ray_gpus_per_actor: Annotated[
        float | None, typer.Option(help="GPUs per Ray actor (default: 1 if the cluster has GPUs).")
    ] = None,
    ray_cpus_per_actor: Annotated[
        float | None, typer.Option(help="CPUs per Ray actor (default: Ray's, 1).")
    ] = None,
    staging: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the Ray job's input/output Parquet; on a multi-node cluster it "
            "must be mounted at the same path on every node (default: <workspace>/ray-staging)."
        ),
    ] = None,
    shard_rows: Annotated[int, typer.Option(help="Vectors per Parquet shard.")] = 100_000,
    flush_every: Annotated[
        float, typer.Option(help="Save finished vectors at least this often (seconds).")
    ] = 120.0,
    allow_download: Annotated[
        bool, typer.Option(help="Let sentence-transformers download a model from the hub.")
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Embed the documents (or a sample) that are not embedded yet; resumable."""
    _check_options(
        engine=engine, device=device, batch_size=batch_size, sample=sample,
        stratify_by=stratify_by, max_seq_length=max_seq_length, shard_rows=shard_rows,
        flush_every=flush_every,
    )  # fmt: skip
    ws, n_corpus = _open_corpus(workspace, sample, stratify_by, seed)
    emb = _load_model(ws, model, device, max_seq_length, allow_download)
    what = f"a sample of {sample:,}" if sample else f"all {n_corpus:,}"
    strata = f" stratified by {stratify_by}" if stratify_by else ""
    console.print(
        f"embedding {what} documents{strata} with {escape(emb.name)} ({emb.dim} dims, "
        f"max_seq_length {emb.max_seq_length}, {emb.device}, {emb.dtype}) into set {emb.key}"
    )
    if engine == "ray":
        _embed_with_ray(
            ws, emb, model=model, sample=sample, stratify_by=stratify_by, seed=seed,
            batch_size=batch_size, device=device, ray_address=ray_address, actors=ray_actors,
            gpus_per_actor=ray_gpus_per_actor, cpus_per_actor=ray_cpus_per_actor,
            staging=staging, n_corpus=n_corpus,
        )  # fmt: skip
        return
    _embed_locally(
        ws, emb, sample=sample, stratify_by=stratify_by, seed=seed, batch_size=batch_size,
        shard_rows=shard_rows, flush_every=flush_every,
    )  # fmt: skip


def _open_corpus(workspace, sample: int | None, stratify_by: str | None, seed: int):
    """(the workspace, its number of documents): none, or a bad sample/strata, is one line
    before any model is loaded."""
    from analytics.db import scalar
    from analytics.embed import sample_doc_ids

    ws = Workspace.open(workspace)
    cur = ws.cursor()
    n_corpus = int(scalar(cur, "SELECT count(*) FROM documents") or 0)
    if n_corpus == 0:
        raise MixscopeError(f"{ws.path} holds no documents; `mixscope ingest` some first")
    if sample is not None:  # bad sample/strata: one line, before a model is loaded
        sample_doc_ids(cur, sample, stratify_by=stratify_by, seed=seed)
    return ws, n_corpus


def _load_model(ws, model: str, device: str, max_seq_length: int | None, allow_download: bool):
    """The embedder, loaded under a status line; its dimension checked against the set
    already stored under its key."""
    from analytics.embed import EmbeddingSet

    options = {"allow_download": True} if allow_download else {}
    with console.status(f"loading {escape(model)} ..."):
        emb = _load(model, device=device, max_seq_length=max_seq_length, **options)
    EmbeddingSet.for_workspace(ws, emb.key).check_dim(emb.dim)
    return emb


def _load(model: str, **kwargs):
    from analytics.embed import EmbedError, load_embedder

    try:
        return load_embedder(model, **kwargs)
    except EmbedError as exc:  # name the CLI flag, not the Python keyword
        raise MixscopeError(str(exc).replace("allow_download=True", "--allow-download")) from None


def _embed_locally(ws, emb, *, sample, stratify_by, seed, batch_size, shard_rows, flush_every):
    from analytics.embed import EmbeddingSet, embed_corpus

    try:
        with _bar() as bar:
            rep = embed_corpus(
                ws,
                model=emb,
                sample=sample,
                stratify_by=stratify_by,
                seed=seed,
                batch_size=batch_size,
                shard_rows=shard_rows,
                flush_every_s=flush_every,
                read_batch_rows=max(256, batch_size * 16),
                progress=EmbedProgress(bar),
            )
    except KeyboardInterrupt:
        kept = EmbeddingSet.for_workspace(ws, emb.key).count()
        console.print(
            f"[red]interrupted[/red]: the set {emb.key} keeps the {kept:,} vectors saved so far; "
            "run the same command again to continue."
        )
        raise typer.Exit(130) from None
    _summary(rep.n_target, rep.n_already, rep.n_embedded, rep.seconds, rep.n_total, rep.n_corpus,
             emb, rep.path)  # fmt: skip


def _summary(n_target, n_already, n_embedded, seconds, n_total, n_corpus, emb, path) -> None:
    rate = f" ({n_embedded / seconds:,.1f} docs/s)" if n_embedded and seconds > 0 else ""
    stdout.print(
        f"embedded {n_embedded:,} documents in {seconds:.1f} s{rate} on {emb.device} "
        f"({emb.dtype}); {n_already:,} of the {n_target:,} asked for were already embedded",
        markup=False,
    )
    share = f"{n_total / n_corpus:.1%}" if n_corpus else "-"
    stdout.print(
        f"set {emb.key}: {n_total:,} of {n_corpus:,} documents ({share}) in {path}",
        markup=False,
    )


def _embed_with_ray(ws, emb, *, n_corpus, **options) -> None:
    """analytics.embed.ray_engine.embed_workspace_with_ray, with a bar for the export."""
    from analytics.embed.ray_engine import embed_workspace_with_ray

    with _bar() as bar:
        task = bar.add_task("exporting texts", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            if stage == "export":
                bar.update(task, completed=done)

        rep = embed_workspace_with_ray(
            ws, emb, progress=progress, on_line=lambda line: console.print(line), **options
        )
    _summary(rep.n_target, rep.n_already, rep.n_embedded, rep.seconds, rep.n_total,
             rep.n_corpus, emb, rep.path)  # fmt: skip


# ---------------------------------------------------------------------- search
@app.command("search")
def search_command(
    query: Annotated[
        str | None, typer.Argument(help="What to look for (any language the model knows).")
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="How many documents.")] = 10,
    like: Annotated[
        str | None, typer.Option(help="Documents nearest to this doc id (more like this).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Embedding set: model key or model name (default: the map's set)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Semantic search: the documents nearest to a query (or to a document) by cosine."""
    import json

    from analytics.maps import more_like_this, search
    from analytics.maps.views import resolve_model_key

    if (query is None or not query.strip()) == (like is None):
        raise MixscopeError("give a query (\"mixscope search 'words'\") or --like DOC_ID, not both")
    if k < 1:
        raise MixscopeError(f"-k must be at least 1, got {k}")
    ws = Workspace.open(workspace)
    key = resolve_model_key(ws, model)
    if like is not None:
        res = more_like_this(ws, key, like, k)
    else:
        with console.status("embedding the query ..."):
            res = search(ws, key, query, k=k)
    docs = _doc_rows(ws, res["doc_id"].tolist())
    res = res.merge(docs, on="doc_id", how="left")
    if as_json:
        typer.echo(json.dumps(res.to_dict(orient="records"), default=str))
        return
    table = Table("rank", "score", "doc_id", "source", "text")
    for r in res.itertuples(index=False):
        table.add_row(
            str(r.rank), f"{r.score:.3f}", escape(str(r.doc_id)), escape(str(r.source)),
            escape(str(r.snippet)),
        )  # fmt: skip
    stdout.print(table)
    what = f"like {like}" if like is not None else repr(query)
    console.print(f"{len(res)} nearest documents {escape(what)} in set {key}")


def _doc_rows(ws, doc_ids: list[str]):
    import pandas as pd

    from analytics.query import run_query

    if not doc_ids:
        return pd.DataFrame(columns=["doc_id", "source", "snippet"])
    df, _ = run_query(
        ws.cursor(),
        "SELECT doc_id, source, regexp_replace(left(text, 300), '\\s+', ' ', 'g') AS snippet "
        "FROM documents JOIN document_text USING (doc_id) "
        "WHERE doc_id IN (SELECT unnest(?::VARCHAR[]))",
        [doc_ids],
        max_rows=len(doc_ids),
    )
    df["snippet"] = df["snippet"].str.slice(0, 100)
    return df

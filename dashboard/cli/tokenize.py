"""`mixscope tokenize`: token counts in any tokenizer, shard by shard on the local or Ray
engine; and the engine options shared by per-document jobs."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from dashboard.cli import app
from dashboard.cli.core import WorkspaceOpt, open_workspace
from dashboard.cli.progress import console

EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="local: a process pool on this machine; ray: tasks on a Ray cluster.",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", help="Worker processes (default: every core / every Ray CPU)."),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster: `auto` (the one this machine belongs to) or HOST:PORT of its head "
        "(default: a local Ray instance).",
    ),
]
ShardSizeOpt = Annotated[
    int, typer.Option("--shard-size", help="Documents per shard (one commit each).", min=1)
]


def line_printer(every_s: float = 2.0):
    """An on_line callback printing the engine's progress line to stderr, at most every
    `every_s` seconds (and always the last one, when the caller flushes)."""
    state = {"at": 0.0, "last": None}

    def on_line(line: str) -> None:
        state["last"] = line
        now = time.monotonic()
        if now - state["at"] >= every_s:
            state["at"] = now
            state["last"] = None
            console.print(line, markup=False, highlight=False, soft_wrap=True)

    def flush() -> None:
        if state["last"]:
            console.print(state["last"], markup=False, highlight=False, soft_wrap=True)

    on_line.flush = flush  # type: ignore[attr-defined]
    return on_line


@app.command()
def tokenize(
    tokenizer: Annotated[
        str,
        typer.Option(
            "--tokenizer",
            help="A directory with tokenizer.json, a tokenizer.json, a .gguf model file, or a "
            "Hugging Face hub id (when online).",
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option(help="Name of these counts (default: from the tokenizer's file or id)."),
    ] = None,
    engine: EngineOpt = "local",
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    shard_size: ShardSizeOpt = 2_000,
    workspace: WorkspaceOpt = None,
) -> None:
    """Count every document's tokens in another tokenizer (several live side by side);
    resumable: a rerun continues at the next unfinished shard."""
    from analytics.engine import ENGINES, EngineError, ray_connect
    from analytics.tokenize import check_name, default_name, list_tokenizers, load_counter
    from analytics.tokenize import tokenize as run

    if engine not in ENGINES:
        raise EngineError(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    ws = open_workspace(workspace)
    if engine == "ray":
        ray_connect(ray_address)  # a cluster that does not answer: one line, exit 2
    name = check_name(name or default_name(tokenizer))
    counter = load_counter(tokenizer)  # not a tokenizer: one line, exit 2, nothing written
    console.print(
        f"tokenizer {name}: {counter.source} (sha256 {counter.sha256[:12]}, "
        f"{counter.describe_cache()})",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    on_line = line_printer()
    rep = run(
        ws,
        tokenizer,
        name=name,
        counter=counter,
        engine=engine,
        workers=workers,
        ray_address=ray_address,
        shard_size=shard_size,
        on_line=on_line,
    )
    on_line.flush()
    rec = next(t for t in list_tokenizers(ws.cursor()) if t["name"] == name)
    typer.echo(
        f"{name}: {rep.docs:,} documents counted in {rep.shards:,} shards "
        f"({rep.skipped_docs:,} already counted), {rep.docs_per_s:,.0f} docs/s on "
        f"{rep.engine} x{rep.workers}; {rec['tokens']:,} tokens over {rec['documents']:,} "
        "documents"
    )

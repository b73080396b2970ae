"""Foundation commands: ingest, info, sql, serve, demo."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from analytics.errors import MixscopeError
from analytics.workspace import ENV_VAR, Workspace
from dashboard.cli import app
from dashboard.cli.progress import console, progress_callback

ROOT = Path(__file__).resolve().parents[2]
DEMO_CORPUS = ROOT / "data" / "demo_corpus.parquet"
DEMO_WORKSPACE = Path.home() / ".mixscope" / "demo"
STREAMLIT_SECRETS = ROOT / ".streamlit" / "secrets.toml"

#: the engine options every shard-wise job shares
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", help="Engine workers (default: every core/CPU).")
]
RayAddressOpt = Annotated[
    str | None, typer.Option("--ray-address", help="Ray cluster: auto or HOST:PORT.")
]

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help=f"Workspace directory (default: ${ENV_VAR} or ~/.mixscope/workspace).",
    ),
]


def open_workspace(path: Path | None) -> Workspace:
    return Workspace.open(path)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(value: object) -> Text:
    """A corpus value for the terminal: never Rich markup or emoji codes, no control or
    escape sequences (ESC, BEL, CR ... are dropped)."""
    return Text(_CONTROL.sub("", str(value)))


def _limit_opt(help: str):  # noqa: A002 - typer's word
    return Annotated[str | None, typer.Option(help=help)]


#: ingest's input limits (IngestLimits; given values override the environment's)
MaxRecordOpt = _limit_opt(
    "Longest record (JSONL/CSV line, Parquet value), e.g. 16MiB (default; or "
    "$MIXSCOPE_MAX_RECORD_BYTES)."
)
MaxDepthOpt = _limit_opt("Deepest nesting of a record (default 64; $MIXSCOPE_MAX_JSON_DEPTH).")
MaxRatioOpt = _limit_opt(
    "How many times its size a compressed file (gzip, zstd, Parquet dictionary) "
    "may expand (default 1000; $MIXSCOPE_MAX_EXPANSION_RATIO)."
)
MaxExpandedOpt = _limit_opt(
    "Most bytes one compressed file may expand to (default 200GiB; $MIXSCOPE_MAX_EXPANDED_BYTES)."
)
MaxTempOpt = _limit_opt(
    "Spill space of the ingest in the workspace's .tmp/ (default 50GiB; $MIXSCOPE_MAX_TEMP_BYTES)."
)
CatalogOpt = Annotated[
    str | None,
    typer.Option(
        help="For a new workspace: sqlite (default, a file in the workspace) or "
        "postgresql://USER@HOST:PORT/DB (team server / cluster; password via PGPASSWORD)."
    ),
]
DataOpt = Annotated[
    str | None,
    typer.Option(
        help="For a new workspace: where the lake's Parquet files go (default DIR/data/; "
        "or s3://bucket/prefix/)."
    ),
]


@app.command()
def ingest(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Files, globs or HF save_to_disk dirs; local or s3://, gs://, "
            "hf://datasets/org/name@revision/..., https:// URIs."
        ),
    ],
    source: Annotated[str | None, typer.Option(help="Source name for every document.")] = None,
    text_field: Annotated[str, typer.Option(help="Field holding the text.")] = "text",
    id_field: Annotated[str | None, typer.Option(help="Field holding a stable id.")] = None,
    date_field: Annotated[str | None, typer.Option(help="Field holding a date.")] = None,
    url_field: Annotated[str | None, typer.Option(help="Field holding the URL.")] = None,
    domain_field: Annotated[str | None, typer.Option(help="Field holding the domain.")] = None,
    lang_field: Annotated[str | None, typer.Option(help="Field holding the language.")] = None,
    title_field: Annotated[str | None, typer.Option(help="Field holding a title.")] = None,
    source_field: Annotated[
        str | None, typer.Option(help="Field holding a per-document source (instead of --source).")
    ] = None,
    domain: Annotated[str | None, typer.Option(help="Constant domain when no field.")] = None,
    lang: Annotated[str | None, typer.Option(help="Constant language when no field.")] = None,
    copy_text: Annotated[
        bool,
        typer.Option(
            "--copy-text",
            help="Keep a copy of the text in the workspace (small or local corpora); by "
            "default only metadata and a locator of each text are stored.",
        ),
    ] = False,
    max_record_bytes: MaxRecordOpt = None,
    max_json_depth: MaxDepthOpt = None,
    max_expansion_ratio: MaxRatioOpt = None,
    max_expanded_bytes: MaxExpandedOpt = None,
    max_temp_bytes: MaxTempOpt = None,
    catalog: CatalogOpt = None,
    data: DataOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Register JSONL (.gz/.zst), Parquet, CSV, Dolma or HF datasets where they live;
    atomic, idempotent. Credentials for object stores come from the environment only."""
    from analytics.ingest import ingest as run_ingest
    from analytics.ingest.limits import IngestLimits

    limits = IngestLimits.from_env(
        max_record_bytes=max_record_bytes,
        max_json_depth=max_json_depth,
        max_expansion_ratio=max_expansion_ratio,
        max_expanded_bytes=max_expanded_bytes,
        max_temp_bytes=max_temp_bytes,
    )
    ws = _ingest_target(workspace, catalog, data)
    with progress_callback() as cb:
        report = run_ingest(
            ws,
            paths,
            source=source,
            text_field=text_field,
            id_field=id_field,
            date_field=date_field,
            url_field=url_field,
            domain_field=domain_field,
            lang_field=lang_field,
            title_field=title_field,
            source_field=source_field,
            domain=domain,
            lang=lang,
            copy_text=copy_text,
            limits=limits,
            progress=cb,
            on_wait=_say_waiting,
        )
    _print_ingest(report, ws)


def _ingest_target(workspace: Path | None, catalog: str | None, data: str | None) -> Workspace:
    """The workspace to ingest into, created with `catalog`/`data` when new."""
    ws = Workspace(workspace)
    if not ws.exists:
        ws.initialise(catalog=catalog, data=data)
    elif catalog or data:
        raise MixscopeError(
            f"{ws.path}: --catalog/--data only apply when creating a workspace; this one "
            f"already uses {ws.config.get('catalog')} and {ws.data_path}."
        )
    return ws


def _say_waiting(holder: dict) -> None:
    console.print(
        f"waiting for {holder.get('job')} (pid {holder.get('pid', '?')}, since "
        f"{holder.get('since', '?')}) to commit ...",
        markup=False,
    )


def _print_ingest(report, ws: Workspace) -> None:
    console.print(
        f"[green]ingested[/green] {report.n_added:,} new documents "
        f"({report.n_tokens_added:,} tokens, {report.tokenizer}) from {len(report.files)} "
        f"file(s) into {ws.path}; {report.n_skipped_existing:,} already present, "
        f"{report.n_duplicate_in_input:,} duplicates in input, "
        f"{report.n_skipped_empty:,} empty skipped."
    )


@app.command()
def migrate(workspace: WorkspaceOpt = None) -> None:
    """Convert a single-file workspace (mixscope 0.1) into a lakehouse workspace; every
    table's row count is checked equal and the old file is kept in backups/."""
    from analytics.convert import convert_single_file

    ws = Workspace(workspace)
    with progress_callback() as cb:
        rep = convert_single_file(ws.path, progress=cb)
    console.print(
        f"converted {ws.path}: {rep.documents:,} documents, {rep.tokens:,} tokens, "
        f"{len(rep.tables)} tables checked equal; the old file is in {rep.backup}",
        markup=False,
    )


@app.command()
def compact(workspace: WorkspaceOpt = None) -> None:
    """Merge the lake's small data files (after many small writes)."""
    ws = open_workspace(workspace)
    rep = ws.compact()
    console.print(f"compacted {ws.path}: now at snapshot {rep['snapshot']}", markup=False)


@app.command()
def info(
    workspace: WorkspaceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What the workspace holds: documents, tokens, sources, tokenizer, schema version."""
    from analytics.overview import composition, totals
    from analytics.tokenize import list_tokenizers

    ws = open_workspace(workspace)
    cur = ws.cursor()
    tot = totals(cur)
    meta = ws.meta()
    comp = composition(cur, by=("source",))
    toks = list_tokenizers(cur)
    if as_json:
        out = {
            "workspace": str(ws.path),
            "meta": meta,
            "totals": {k: (str(v) if v is not None else None) for k, v in tot.items()},
            "sources": comp.to_dict(orient="records"),
            "tokenizers": toks,
        }
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    console.print(Text("workspace ", style="bold") + plain(ws.path))
    console.print(
        plain(
            f"schema v{meta.get('schema_version')}, tokenizer {meta.get('tokenizer')} "
            f"(sha256 {meta.get('tokenizer_sha256', '?')[:12]})"
        )
    )
    console.print(
        f"{int(tot['documents']):,} documents, {int(tot['tokens']):,} tokens, "
        f"{int(tot['bytes']):,} bytes, {tot['sources']} sources, {tot['languages']} languages, "
        f"dates {tot['date_min']} to {tot['date_max']}"
    )
    table = Table("source", "documents", "tokens", "bytes")
    for row in comp.itertuples():
        table.add_row(
            plain(row.source), f"{row.documents:,}", f"{int(row.tokens):,}", f"{int(row.bytes):,}"
        )
    console.print(table)
    if len(toks) > 1:
        ttable = Table("tokenizer", "source", "sha256", "documents", "tokens")
        for t in toks:
            ttable.add_row(
                plain(t["name"]), plain(t["source"]), plain((t["sha256"] or "?")[:12]),
                f"{t['documents']:,}", f"{t['tokens']:,}",
            )  # fmt: skip
        console.print(ttable)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="One read-only SELECT statement.")],
    workspace: WorkspaceOpt = None,
    max_rows: Annotated[int, typer.Option(help="Row cap.", min=1)] = 1000,
    timeout: Annotated[
        float, typer.Option(help="Seconds before the query is stopped.", min=0.1)
    ] = 30.0,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    max_mb: Annotated[
        float, typer.Option("--max-mb", help="Cap on the result's size in MB.", min=0.001)
    ] = 64.0,
) -> None:
    """Run a query through the same guarded, read-only path as the SQL page."""
    from analytics.query import run_user_query, truncation_note

    if fmt not in ("table", "csv", "json"):
        raise MixscopeError(f"--format {fmt!r}: expected table, csv or json.")
    ws = open_workspace(workspace)
    max_bytes = int(max_mb * 1024**2)
    df, truncated = run_user_query(
        ws.path, query, max_rows=max_rows, timeout_s=timeout, max_bytes=max_bytes
    )
    if fmt == "csv":
        typer.echo(df.to_csv(index=False), nl=False)
    elif fmt == "json":
        typer.echo(df.to_json(orient="records", date_format="iso"))
    else:
        table = Table()
        for c in df.columns:
            table.add_column(plain(c))
        for row in df.itertuples(index=False):
            table.add_row(*[plain(v) for v in row])
        console.print(table)
    if truncated:
        note = truncation_note(df, truncated, max_rows=max_rows, max_bytes=max_bytes)
        console.print(Text(note.replace("raise the row cap", "raise --max-rows"), style="yellow"))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


_OPENER = """
import sys, time, urllib.request, webbrowser
url = sys.argv[1]
for _ in range(240):
    try:
        urllib.request.urlopen(url + "/_stcore/health", timeout=2)
        webbrowser.open(url)
        break
    except OSError:
        time.sleep(0.5)
"""


def _serve(ws_path: Path, host: str, port: int, headless: bool) -> None:
    app_file = ROOT / "dashboard" / "server.py"  # app.py behind mixscope's middleware
    env = dict(os.environ, **{ENV_VAR: str(ws_path)})
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(app_file),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",  # never Streamlit's first-run e-mail prompt
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    console.print(f"[bold green]mixscope[/bold green] serving {ws_path} at http://{host}:{port}")
    sys.stdout.flush()
    sys.stderr.flush()
    if not headless:  # open the browser once the server answers (Streamlit's own opener
        # would come with its first-run prompt on stdin)
        subprocess.Popen(
            [sys.executable, "-c", _OPENER, f"http://{host}:{port}"],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    # Become the server process, so signals (Ctrl-C, SIGTERM from a supervisor) reach it.
    os.chdir(ROOT)
    os.execve(sys.executable, cmd, env)


@app.command()
def serve(
    workspace: WorkspaceOpt = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = a free one).")] = 8501,
    headless: Annotated[bool, typer.Option(help="Don't open a browser.")] = False,
    secrets: Annotated[
        Path | None,
        typer.Option(help="Secrets file with viewer/editor tokens (or $MIXSCOPE_SECRETS_FILE)."),
    ] = None,
) -> None:
    """Serve the dashboard over a workspace (to a team: --host 0.0.0.0 with --secrets)."""
    from analytics.auth import SECRETS_ENV, find_oidc, is_loopback, load_secrets

    ws = open_workspace(workspace)
    loaded = load_secrets(secrets)
    if secrets:
        os.environ[SECRETS_ENV] = str(Path(secrets).expanduser().resolve())
    # Streamlit reads st.login's [auth] from these secrets files (the server runs in ROOT)
    oidc = find_oidc([Path.home() / ".streamlit" / "secrets.toml", STREAMLIT_SECRETS])
    if oidc and not loaded.users:
        raise MixscopeError(
            f"{oidc[0]}: [auth] configures sign-in through an identity provider, but no roles "
            "file with a [users] table is given (--secrets FILE or $MIXSCOPE_SECRETS_FILE); "
            "without it nobody signed in would get a role."
        )
    if oidc:
        console.print(
            f"identity-provider sign-in on ({oidc[0]}): {len(loaded.users)} [users] entries",
            markup=False,
        )
    elif not loaded.enabled:
        if not is_loopback(host):
            raise MixscopeError(
                f"refusing to bind {host} without access control: configure a secret "
                "(--secrets FILE, $MIXSCOPE_SECRETS_FILE or $MIXSCOPE_VIEWER_TOKEN/"
                "$MIXSCOPE_EDITOR_TOKEN), or serve on 127.0.0.1."
            )
        console.print("no secret configured: serving on this machine only, everyone is editor")
    else:
        console.print(f"access control on: roles {', '.join(sorted(loaded.tokens))}")
    _serve(ws.path, host, port or free_port(host), headless)


@app.command()
def demo(
    workspace: Annotated[
        Path | None, typer.Option("--workspace", "-w", help="Where to build the demo workspace.")
    ] = None,
    port: Annotated[int, typer.Option(help="Port (0 = a free one).")] = 8501,
    headless: Annotated[bool, typer.Option(help="Don't open a browser.")] = False,
    build_only: Annotated[bool, typer.Option(help="Build the workspace, don't serve.")] = False,
    series: Annotated[
        bool, typer.Option(help="Queue the demo checkpoint series job (once) before serving.")
    ] = True,
    swarm: Annotated[
        bool, typer.Option(help="Queue the demo proxy swarm job (once) before serving.")
    ] = True,
) -> None:
    """Build the demo workspace from the shipped corpus (once), then serve it."""
    from analytics.ingest import ingest as run_ingest

    ws = Workspace(workspace or DEMO_WORKSPACE)
    if not ws.exists:
        if not DEMO_CORPUS.exists():
            raise MixscopeError(f"{DEMO_CORPUS}: the demo corpus is missing from this checkout.")
        console.print(f"building the demo workspace in {ws.path} from {DEMO_CORPUS.name} ...")
        with progress_callback() as cb:
            report = run_ingest(ws, [str(DEMO_CORPUS)], id_field="id", copy_text=True, progress=cb)
        console.print(
            f"[green]ingested[/green] {report.n_added:,} documents, "
            f"{report.n_tokens_added:,} tokens"
        )
    if build_only:
        console.print(f"demo workspace ready at {ws.path}")
        return
    from analytics.demo import queue_demo_contamination

    if queue_demo_contamination(ws):
        console.print("queued a contamination scan of the demo's evaluation set", markup=False)
    if series:
        from dashboard.cli.geometry import queue_demo_series_job

        queue_demo_series_job(ws)
    if swarm:
        from analytics.mixture.swarm_demo import queue_demo_swarm

        try:
            if queue_demo_swarm(ws):
                console.print("queued the demo proxy swarm (Mixtures page: proxy swarms)")
        except Exception as exc:  # noqa: BLE001 - the dashboard must open regardless
            console.print(f"could not queue the demo proxy swarm: {exc}", markup=False)
    _serve(ws.path, "127.0.0.1", port or free_port(), headless)

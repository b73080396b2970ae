"""The `mixscope` command line. Each area registers its commands in its own module."""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path

import typer

from analytics.errors import MixscopeError

app = typer.Typer(
    name="mixscope",
    help="Look at a pretraining corpus, its checkpoints' geometry, and export mixtures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each area registers its commands in its own module; listed here once it exists.
COMMAND_MODULES = [
    "core",
    "jobs",
    "signals",
    "embed",
    "maps",
    "geometry",
    "mix",
    "swarm",
    "tokenize",
]
for _name in COMMAND_MODULES:
    if (Path(__file__).parent / f"{_name}.py").exists():
        importlib.import_module(f"dashboard.cli.{_name}")

DEBUG_ENV = "MIXSCOPE_DEBUG"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def one_line(text: object) -> str:
    """`text` as one printable line: newlines folded, control characters dropped."""
    s = " ".join(str(text).split())
    return _CONTROL.sub("", s)


def _click_exceptions() -> tuple[type, type, type]:
    """(ClickException, UsageError, NoArgsIsHelpError) of the click that typer runs on
    (typer >= 0.20 vendors its own copy as typer._click, older typer uses click)."""
    try:
        from typer._click import exceptions as exc_mod
    except ImportError:  # pragma: no cover - older typer
        from click import exceptions as exc_mod
    no_args = getattr(exc_mod, "NoArgsIsHelpError", ())
    return exc_mod.ClickException, exc_mod.UsageError, no_args


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {one_line(message)}", fg="red", err=True)
    sys.exit(code)


def _usage_error(exc) -> None:
    """A click/typer usage error as one line: what was wrong, and where to look."""
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "mixscope"
    _fail(f"{exc.format_message()} (expected usage: `{where} --help`)", 2)


#: commands that write the workspace or run long: recorded on the Jobs page when started in
#: a terminal (queued jobs are recorded by the queue itself)
RECORDED = {
    "ingest", "tokenize", "signals", "contamination", "embed", "map", "geometry", "demo-series",
    "compact",
}  # fmt: skip


def _workspace_arg(argv: list[str]) -> Path:
    from analytics.workspace import default_workspace_dir

    for i, a in enumerate(argv):
        if a in ("--workspace", "-w") and i + 1 < len(argv):
            return Path(argv[i + 1]).expanduser()
        if a.startswith("--workspace="):
            return Path(a.split("=", 1)[1]).expanduser()
    return default_workspace_dir()


def main() -> None:
    """Entry point. A workspace-writing or long command started in a terminal is recorded
    as a job of its workspace (the Jobs page lists it with its progress); see `_main`."""
    from analytics.jobs import JOB_ENV, JobStore

    argv = sys.argv[1:]
    words = [a for a in argv if not a.startswith("-")][:2]
    if os.environ.get(JOB_ENV) or not words or not RECORDED.intersection(words):
        return _main()
    if "--help" in argv:
        return _main()
    ws_path = _workspace_arg(argv)
    if not (ws_path / "workspace.json").exists() and words[0] != "ingest":
        return _main()
    try:
        store = JobStore(ws_path)
        job = store.record_cli(argv)
    except OSError:
        return _main()
    os.environ[JOB_ENV] = str(store.root / job.id)
    rc, error = 1, None
    try:
        _main()
        rc = 0
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        error = None if rc == 0 else "see the terminal that ran it"
        raise
    finally:
        os.environ.pop(JOB_ENV, None)  # (main may run in-process, as in tests)
        store.finish_cli(job.id, rc, error)


def _main() -> None:
    """User errors print one clear line and exit 2, never a traceback.

    Usage errors (unknown option, missing argument, bad value) come from typer's click as
    its own exception classes; they are caught here too. A DuckDB error that reaches this
    point is a problem with the user's SQL or database file (one line, exit 2); anything
    else is a bug: one line, exit 1, and the traceback with MIXSCOPE_DEBUG=1.
    """
    click_exc, usage_exc, no_args_exc = _click_exceptions()
    try:
        rv = app(prog_name="mixscope", standalone_mode=False)
        if isinstance(rv, int) and rv:  # typer.Exit(code) in non-standalone mode
            sys.exit(rv)
    except MixscopeError as exc:
        _fail(str(exc), 2)
    except KeyboardInterrupt:
        typer.secho("interrupted: nothing was written", fg="red", err=True)
        sys.exit(130)
    except typer.Abort:
        typer.secho("aborted", fg="red", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        if no_args_exc and isinstance(exc, no_args_exc):  # `mixscope mix`: show its help
            ctx = getattr(exc, "ctx", None)
            typer.echo(ctx.get_help() if ctx is not None else exc.format_message())
            sys.exit(2)
        if isinstance(exc, usage_exc):
            _usage_error(exc)
        if isinstance(exc, click_exc):
            _fail(exc.format_message(), exc.exit_code or 2)
        if os.environ.get(DEBUG_ENV):
            raise
        import duckdb

        if isinstance(exc, duckdb.Error):
            _fail(f"{type(exc).__name__}: {exc}", 2)
        _fail(
            f"internal error ({type(exc).__name__}: {exc}); this is a bug in mixscope, "
            f"rerun with {DEBUG_ENV}=1 for the traceback",
            1,
        )

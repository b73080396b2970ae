"""The `mixscope` command line. Each area registers its commands in its own module."""

from __future__ import annotations

import importlib
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
COMMAND_MODULES = ["core", "jobs", "signals", "embed", "maps", "geometry", "mix"]
for _name in COMMAND_MODULES:
    if (Path(__file__).parent / f"{_name}.py").exists():
        importlib.import_module(f"dashboard.cli.{_name}")


def main() -> None:
    """Entry point: user errors print one clear line and exit 2, never a traceback."""
    try:
        app(standalone_mode=False)
    except MixscopeError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted: nothing was written", fg="red", err=True)
        sys.exit(130)
    except typer.Abort:
        typer.secho("aborted", fg="red", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
